"""The memory a run needs, estimated from its config before anything is allocated or written.

The estimate adds the dataset (tokens and labels, int64), the weights with their gradients
and AdamW's two moments (float32), the activations of the largest forward pass (the test set
or twice the training batch, whose activations are kept for the backward pass; every position
through the plain model),
and, for modular tasks, the analysis's float64 grids over all (x, y) pairs (the logits and
the neurons, and their 2-D Fourier transforms). It counts what the plain model would hold
(the folded path needs less): 216 MB of activations for the canonical run, where
benchmarks/bench_memory.py measured a 195 MB step working set for the plain reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokscope.config import RunConfig
from grokscope.errors import GrokscopeError


MAX_DIMENSION = 2**31  # of a vocabulary, a context or a model width


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes by part; ``total`` is their sum."""

    dataset: int
    weights: int  # weights, gradients and AdamW's moments
    activations: int
    analysis: int

    @property
    def total(self) -> int:
        return self.dataset + self.weights + self.activations + self.analysis


def estimate_memory(config: RunConfig) -> MemoryEstimate:
    task = config.task.build()
    n_examples = config.task.n_examples
    sizes = {"task.d_vocab": task.d_vocab, "task.d_vocab_out": task.d_vocab_out, "task.n_ctx": task.n_ctx,
             **{f"model.{k}": v for k, v in config.model.to_dict().items() if isinstance(v, int) and not isinstance(v, bool)}}
    too_large = {k: v for k, v in sizes.items() if v > MAX_DIMENSION}
    if too_large:  # beyond any machine, and beyond what torch can index in a product of two
        raise GrokscopeError(f"{', '.join(f'{k} = {v:,}' for k, v in too_large.items())}: a dimension of at most "
                             f"{MAX_DIMENSION:,} is supported")
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = config.model.build(task.d_vocab, task.d_vocab_out, task.n_ctx)
    n_params = sum(p.numel() for p in model.parameters())
    widths = [getattr(config.model, k, 0) or 0 for k in ("d_model", "d_mlp")]
    n_layers = getattr(config.model, "n_layers", 2)
    per_position = 6 * widths[0] * n_layers + 2 * widths[1] * n_layers + 2 * task.d_vocab_out  # floats kept
    n_train = getattr(config.task, "n_train", None) or int(config.task.frac_train * n_examples)
    batch = getattr(config.train, "batch_size", None) or n_train
    largest = max(2 * batch, n_examples - n_train)  # a training step keeps its activations for the backward
    analysis = 0
    if config.task.kind == "modular":  # grids of logits [p, p, p] and neurons [p, p, d_mlp], float64, x3
        p = config.task.p
        analysis = 3 * 8 * p * p * (p + widths[1])
    return MemoryEstimate(dataset=8 * n_examples * (task.n_ctx + len(task.target_positions)),
                          weights=4 * 4 * n_params, activations=4 * largest * task.n_ctx * per_position,
                          analysis=analysis)


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def parse_size(text: str) -> int:
    """``"8G"``, ``"512M"``, ``"1.5GB"`` or a number of bytes -> bytes."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(float(t))
    except ValueError:
        raise GrokscopeError(f"--max-memory must be a size such as 8G or 512M; got {text!r}") from None


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**28 else f"{n / 2**20:,.0f} MiB"


def check_memory(config: RunConfig, limit: int | None = None) -> MemoryEstimate:
    """Refuse a config whose estimate exceeds ``limit`` (default: the memory available now)."""
    estimate = estimate_memory(config)
    source = "--max-memory" if limit is not None else "the memory available now"
    limit = limit if limit is not None else available_memory()
    if limit is not None and estimate.total > limit:
        e = estimate
        raise GrokscopeError(
            f"this run needs about {gib(e.total)} (dataset {gib(e.dataset)}, weights and optimizer {gib(e.weights)}, "
            f"activations {gib(e.activations)}, analysis {gib(e.analysis)}); the limit is {gib(limit)} "
            f"({source}): make the task or model smaller")
    return estimate
