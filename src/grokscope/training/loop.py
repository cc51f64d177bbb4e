"""The training loop (full batch, or minibatches with ``train.kind=minibatch``): resumable, evaluating every ``eval_every`` epochs.

Epoch ``e``'s metrics row describes the weights after ``e`` optimizer steps (epoch 0 is the
initialisation); the checkpoint of epoch ``e`` holds those weights. A run killed at any point
and started again continues from its last checkpoint and ends with identical metrics.
"""

from __future__ import annotations

import json
import math
import time
from functools import partial
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from grokscope.config import RunConfig
from grokscope.devices import hardware_name, resolve_device
from grokscope.errors import GrokscopeError
from grokscope.hardware import cpu_model
from grokscope.lock import run_lock
from grokscope.loggers import check_loggers, open_loggers
from grokscope.sizing import check_memory
from grokscope.models.folded import folded_logits, supports_folded
from grokscope.atomic import atomic_write_parquet, atomic_write_text
from grokscope.runs import RunPaths, prepare_run_dir
from grokscope.training import checkpoint
from grokscope.training.grokfast import GradientFilter, orthogonalise_gradients
from grokscope.tasks.base import SampledTask
from grokscope.training.loss import accuracy, log_probs_of_labels, scored_mean_loss, target_losses
from grokscope.training.optim import lr_at, make_optimizer, set_lr
from grokscope.training.subnormals import FLUSH_STATE_EVERY, flush_subnormals_, optimizer_state_tensors


@dataclass(frozen=True)
class Execution:
    """How the session that finished a run executed it (not part of the run's identity)."""

    threads: int  # torch intra-op threads
    folded: bool  # whether the folded per-token-table path computed the forward
    cpu: str  # the processor's model name
    torch: str  # torch's version
    device: str = "cpu"  # the torch device that trained it
    hardware: str = ""  # the device's name (the CPU's model, or the GPU's)


@dataclass(frozen=True)
class Divergence:
    """Where a run stopped because something became NaN or infinite."""

    epoch: int  # the epoch whose loss was not finite, or whose step's gradient or resulting weights were not
    quantity: str  # "train_loss", "gradient of NAME" or "weight NAME"


@dataclass(frozen=True)
class RunSummary:
    """What ``summary.json`` records at the end of a run."""

    final_epoch: int
    grokking_epoch: int | None  # first evaluated epoch with test_acc >= grok_threshold
    stopped: str  # "max_epochs", "grokked" (stop_after_grok epochs after grokking) or "diverged"
    train_loss: float
    test_loss: float
    train_acc: float
    test_acc: float
    wall_seconds: float  # training time summed over every session of this run
    execution: Execution | None = None  # None in runs finished before it was recorded
    diverged: Divergence | None = None  # set when stopped == "diverged"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunSummary":
        execution, diverged = data.get("execution"), data.get("diverged")
        return cls(**{**data, "execution": Execution(**execution) if execution else None,
                      "diverged": Divergence(**diverged) if diverged else None})


def checkpoint_schedule(epochs: int, every: int) -> list[int]:
    """Epochs to checkpoint: 0, log-spaced early ones (1, 2, 3, 5, 7, 10, 15, 22, ...) up to
    ``every``, then every ``every`` epochs, and the last epoch."""
    early = {round(10 ** (i / 6)) for i in range(0, 1 + int(6 * math.log10(max(every, 1))))}
    regular = set(range(0, epochs + 1, every))
    return sorted(e for e in early | regular | {epochs} if e <= epochs)


def grokking_epoch(rows: list[dict], threshold: float) -> int | None:
    """First evaluated epoch whose test accuracy reaches ``threshold``."""
    for row in rows:
        if row["test_acc"] >= threshold:  # NaN (not evaluated) compares False
            return int(row["epoch"])
    return None


EpochCallback = Callable[[dict], None]


def train_run(config: RunConfig, out: str | Path, on_epoch: EpochCallback | None = None,
              max_memory: int | None = None) -> RunSummary:
    """Train ``config`` into run directory ``out`` (new, or resumed if it holds the same run).

    Losses in the metrics are those of the run's objective (``train.normaliser``, ``train.loss_dtype``).

    ``on_epoch(row)`` is called with every metrics row (test columns NaN between evaluations).
    A config whose memory estimate exceeds ``max_memory`` bytes (default: the memory available
    now) is refused before anything is written (grokscope/sizing.py).
    """
    check_compatible(config, max_memory)
    paths = prepare_run_dir(Path(out), config)
    with run_lock(paths.root, "grokscope train"):
        if paths.summary.is_file():
            return RunSummary.from_dict(json.loads(paths.summary.read_text()))
        torch.set_num_threads(config.train.threads)
        deterministic = torch.are_deterministic_algorithms_enabled()
        fill = torch.utils.deterministic.fill_uninitialized_memory
        torch.use_deterministic_algorithms(True)  # bitwise-repeatable on several threads too, at no measured cost
        # Deterministic mode NaN-fills every new tensor; no kernel here reads uninitialised memory, and
        # the fills cost ~5 % of an epoch (measured in benchmarks/bench_epoch.py).
        torch.utils.deterministic.fill_uninitialized_memory = False
        try:
            return _train(config, paths, on_epoch)
        finally:
            torch.use_deterministic_algorithms(deterministic)
            torch.utils.deterministic.fill_uninitialized_memory = fill


def check_compatible(config: RunConfig, max_memory: int | None = None) -> None:
    """Refuse, before anything is written, a model or trainer the task cannot be trained with,
    or a run that would not fit in memory."""
    check_memory(config, max_memory)
    resolve_device(config.train.device)
    check_loggers(config.train.log)
    task = config.task.build()
    if getattr(config.train, "fresh_data", False) and not isinstance(task, SampledTask):
        raise GrokscopeError(f"train.fresh_data needs a task that samples its examples; "
                             f"task {config.task.kind} enumerates them (use train.fresh_data=false)")
    if config.model.kind == "mlp" and list(task.target_positions) != [task.n_ctx - 1]:
        raise GrokscopeError(f"model.kind=mlp predicts one answer at the last position; task {config.task.kind} "
                             f"scores positions {list(task.target_positions)} (use model.kind=transformer)")


def training_forward(model: torch.nn.Module, cfg) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``forward(tokens, query_positions) -> logits``: the folded path where it is exact and
    enabled (``train.folded``), else the model itself."""
    return partial(folded_logits, model) if cfg.folded and supports_folded(model) else model.forward


def batch_source(cfg, task, tokens: torch.Tensor, labels: torch.Tensor) -> Callable[[int], tuple]:
    """The examples of step ``epoch``: the whole training set (full batch), or a minibatch drawn
    from it or freshly from the task, by a generator seeded with (train seed, step) so that a
    resumed run draws the same batches."""
    if cfg.kind != "minibatch":
        return lambda epoch: (tokens, labels)

    def generator(epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)

    if cfg.fresh_data:  # drawn on the CPU (the same examples on every device), then moved
        return lambda epoch: tuple(t.to(tokens.device) for t in task.sample(cfg.batch_size, generator(epoch)))

    def minibatch(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(tokens), (cfg.batch_size,), generator=generator(epoch)).to(tokens.device)
        return tokens[index], labels[index]

    return minibatch


def _losses_by_target(prefix: str, names: list[str] | None, picked, labels) -> dict[str, float]:
    """``{prefix_name: loss}`` for each named target (empty if the task names none), from the
    same ``log p(label)`` as the mean loss."""
    if not names:
        return {}
    return {f"{prefix}_{n}": v for n, v in zip(names, target_losses(picked, labels))}


def _train(config: RunConfig, paths: RunPaths, on_epoch: EpochCallback | None) -> RunSummary:
    cfg = config.train
    device = resolve_device(cfg.device)
    task = config.task.build()
    data = task.dataset()
    split = task.split()
    train_tokens, train_labels = data.tokens[split.train].to(device), data.labels[split.train].to(device)
    test_tokens, test_labels = data.tokens[split.test].to(device), data.labels[split.test].to(device)
    query_positions = torch.tensor(data.target_positions)
    batches = batch_source(cfg, task, train_tokens, train_labels)
    names = task.target_names

    model = config.model.build(task.d_vocab, task.d_vocab_out, task.n_ctx).to(device)
    forward = training_forward(model, cfg)
    optimizer = make_optimizer(model, cfg)
    grad_filter = (None if cfg.grokfast == "none" else
                   GradientFilter(model, cfg.grokfast, cfg.grokfast_alpha, cfg.grokfast_lamb, cfg.grokfast_window))
    log_probs = partial(log_probs_of_labels, loss_dtype=cfg.loss_dtype, normaliser=cfg.normaliser)
    config_dict = config.to_dict()
    schedule = set(checkpoint_schedule(cfg.epochs, cfg.checkpoint_every))

    rows, start, wall_before = _resume(paths, model, optimizer, cfg.seed, grad_filter)
    loggers = open_loggers(cfg.log, paths.root, config_dict)
    if start == 0:
        checkpoint.save_weights(model, paths.checkpoint(0, cfg.epochs), 0, config_dict)
    grok = grokking_epoch(rows, cfg.grok_threshold)
    t0 = time.perf_counter()

    def save(epoch: int) -> None:
        _write_metrics(paths, rows)
        if first_non_finite(model.named_parameters()) is not None:
            return  # a diverged run keeps its last finite checkpoint as its last
        checkpoint.save_weights(model, paths.checkpoint(epoch, cfg.epochs), epoch, config_dict)
        wall = wall_before + time.perf_counter() - t0
        checkpoint.save_resume(model, optimizer, paths.resume, epoch, config_dict, wall_seconds=wall,
                               extra=grad_filter.state_tensors() if grad_filter is not None else None)

    diverged: Divergence | None = None
    model.train()
    for epoch in range(start, cfg.epochs + 1):
        final = epoch == cfg.epochs
        tokens, labels = batches(epoch)
        with torch.set_grad_enabled(not final):
            logits = forward(tokens, query_positions)  # [batch, target, d_vocab_out]
            picked = log_probs(logits, labels)  # [batch, target]
            loss = scored_mean_loss(picked, labels)
        row = {"epoch": epoch, "train_loss": loss.item(), "train_acc": accuracy(logits, labels),
               "test_loss": math.nan, "test_acc": math.nan,
               **_losses_by_target("train_loss", names, picked, labels),
               **{f"test_loss_{n}": math.nan for n in names or []}}
        if final or epoch % cfg.eval_every == 0:
            with torch.no_grad():
                test_logits = forward(test_tokens, query_positions)
                test_picked = log_probs(test_logits, test_labels)
                row["test_loss"] = scored_mean_loss(test_picked, test_labels).item()
                row["test_acc"] = accuracy(test_logits, test_labels)
                row |= _losses_by_target("test_loss", names, test_picked, test_labels)
            if grok is None and row["test_acc"] >= cfg.grok_threshold:
                grok = epoch
        rows.append(row)
        for logger in loggers:
            logger.log_epoch(row)
        if on_epoch is not None:
            on_epoch(row)
        if not math.isfinite(row["train_loss"]):
            diverged = Divergence(epoch, "train_loss")
        stop_early = (grok is not None and cfg.stop_after_grok is not None
                      and not math.isnan(row["test_acc"]) and epoch >= grok + cfg.stop_after_grok)
        if final or stop_early or diverged is not None:
            save(epoch)
            break
        bad = update(loss, model, optimizer, cfg, epoch, grad_filter)
        if bad is not None:
            diverged = Divergence(epoch, bad)
            save(epoch)  # the weights of this epoch if the step was refused, else only the metrics
            break
        if epoch + 1 in schedule:
            save(epoch + 1)

    last = rows[-1]
    cpu = cpu_model()  # lscpu, once
    summary = RunSummary(
        final_epoch=int(last["epoch"]), grokking_epoch=grok,
        stopped="diverged" if diverged else "max_epochs" if last["epoch"] == cfg.epochs else "grokked",
        train_loss=last["train_loss"], test_loss=last["test_loss"],
        train_acc=last["train_acc"], test_acc=last["test_acc"],
        wall_seconds=wall_before + time.perf_counter() - t0,
        execution=Execution(threads=cfg.threads, folded=cfg.folded and supports_folded(model),
                            cpu=cpu, torch=torch.__version__, device=str(device),
                            hardware=hardware_name(device, cpu)),
        diverged=diverged,
    )
    atomic_write_text(paths.summary, json.dumps(summary.to_dict(), indent=2) + "\n")
    for logger in loggers:
        logger.finish(summary.to_dict())
    return summary


def update(loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer, cfg,
           epoch: int, grad_filter: GradientFilter | None) -> str | None:
    """Optimizer step ``epoch`` from ``loss``: backward, Grokfast filter, ⊥Grad, AdamW at the
    step's learning rate. The loss's gradient carries no float32 subnormal into the model
    (training/loss.py), and every ``FLUSH_STATE_EVERY`` steps the state carried from step to
    step (AdamW's moments, the filter's averages) is cleared of them (training/subnormals.py).

    Returns None, or what became non-finite: "gradient of NAME" (the step is then not taken,
    so the weights stay finite) or "weight NAME" (after the step)."""
    loss.backward()
    bad = first_non_finite((n, p.grad) for n, p in model.named_parameters())
    if bad is not None:
        optimizer.zero_grad(set_to_none=True)
        return f"gradient of {bad}"
    if grad_filter is not None:
        grad_filter.apply()
    if cfg.orthograd:
        orthogonalise_gradients(model)
    set_lr(optimizer, lr_at(epoch, cfg))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if (epoch + 1) % FLUSH_STATE_EVERY == 0:
        running = grad_filter.running_tensors() if grad_filter is not None else []
        flush_subnormals_([*optimizer_state_tensors(optimizer), *running])
    bad = first_non_finite(model.named_parameters())
    return None if bad is None else f"weight {bad}"


def first_non_finite(named) -> str | None:
    """The name of the first of these (name, tensor) pairs with a NaN or infinite entry, or None
    (~0.04 ms for the canonical model's weights)."""
    for name, t in named:
        if t is not None and not bool(torch.isfinite(t).all()):
            return name
    return None


def _resume(paths: RunPaths, model, optimizer, seed: int, grad_filter) -> tuple[list[dict], int, float]:
    """Restore the latest resume state, if any: (metrics rows before it, its epoch, wall time).
    Otherwise initialise the weights from ``seed`` and start at epoch 0."""
    if not paths.resume.is_file():
        model.init_weights(seed)
        return [], 0, 0.0
    epoch, metadata, extra = checkpoint.load_resume(model, optimizer, paths.resume)
    if grad_filter is not None:
        grad_filter.load_state_tensors(extra)
    wall = float(metadata.get("wall_seconds", 0.0))
    if not paths.metrics.is_file():
        raise GrokscopeError(f"run {paths.root} has a resume state but no metrics.parquet; delete it and start again")
    metrics = pd.read_parquet(paths.metrics)
    rows = metrics[metrics["epoch"] < epoch].to_dict("records")
    if len(rows) != epoch:
        raise GrokscopeError(f"run {paths.root}: metrics.parquet does not cover epochs 0..{epoch - 1}; delete it and start again")
    return rows, epoch, wall


def _write_metrics(paths: RunPaths, rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    frame["epoch"] = frame["epoch"].astype("int64")
    atomic_write_parquet(paths.metrics, frame)
