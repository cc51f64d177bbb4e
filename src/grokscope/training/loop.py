"""The training loop (full batch, or minibatches with ``train.kind=minibatch``): resumable, evaluating every ``eval_every`` epochs.

Epoch ``e``'s metrics row describes the weights after ``e`` optimizer steps (epoch 0 is the
initialisation); the checkpoint of epoch ``e`` holds those weights. A run killed at any point
and started again continues from its last checkpoint and ends with identical metrics.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from functools import partial
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import torch

from grokscope.allocator import keep_freed_memory
from grokscope.config import RunConfig
from grokscope.devices import hardware_name, resolve_device
from grokscope.errors import GrokscopeError
from grokscope.hardware import cpu_model
from grokscope.lock import run_lock
from grokscope.loggers import check_loggers, open_loggers
from grokscope.sizing import check_memory
from grokscope.models.folded import folded_logits, supports_folded
from grokscope.models.stacked import stacked_logits
from grokscope.atomic import atomic_write_parquet, atomic_write_text
from grokscope.runs import RunPaths, prepare_run_dir
from grokscope.training import checkpoint
from grokscope.training.grokfast import GradientFilter, orthogonalise_gradients
from grokscope.tasks.base import IGNORE, SampledTask
from grokscope.training.loss import log_probs_of_labels
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
    ensemble: int = 1  # how many runs trained together as one stacked model (1: alone)


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
        device = resolve_device(config.train.device)
        with training_session(config.train.threads, device):
            return train_together([Trainee(config, paths, device, on_epoch)])[0]


@contextmanager
def training_session(threads: int, device: torch.device | None = None) -> Iterator[None]:
    """torch set up for training: ``threads`` intra-op threads and deterministic algorithms
    (bitwise-repeatable on several threads too, at no measured cost); restored afterwards.

    On a GPU, torch has no deterministic kernel for some operations (its documentation lists
    them); there they warn instead of failing (``warn_only``), and cuBLAS gets the workspace
    setting its deterministic mode needs, unless the user set one. GPU runs are therefore
    repeatable only as far as those kernels allow, and never bit-equal to CPU runs.
    Freed memory stays in the process from here on (grokscope/allocator.py says why)."""
    keep_freed_memory()
    torch.set_num_threads(threads)
    on_gpu = device is not None and device.type != "cpu"
    if on_gpu:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=on_gpu)
    # Deterministic mode NaN-fills every new tensor; no kernel here reads uninitialised memory, and
    # the fills cost ~5 % of an epoch (measured in benchmarks/bench_epoch.py).
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
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


def _losses_by_target(prefix: str, names: list[str] | None, losses: list[float]) -> dict[str, float]:
    """``{prefix_name: loss}`` for each named target (empty if the task names none)."""
    return {f"{prefix}_{n}": v for n, v in zip(names or [], losses)}


class Trainee:
    """One run under training: its data, model, optimizer, gradient filter, metrics rows and
    files. The loop (``train_together``) trains one trainee, or several whose models share
    shapes as one ensemble; either way each writes its own ordinary run directory."""

    def __init__(self, config: RunConfig, paths: RunPaths, device: torch.device,
                 on_epoch: EpochCallback | None = None):
        self.config, self.paths, self.on_epoch = config, paths, on_epoch
        self.cfg = cfg = config.train
        task = config.task.build()
        data, split = task.dataset(), task.split()
        self.train_tokens, self.train_labels = data.tokens[split.train].to(device), data.labels[split.train].to(device)
        self.test_tokens, self.test_labels = data.tokens[split.test].to(device), data.labels[split.test].to(device)
        self.query_positions = torch.tensor(data.target_positions)
        self.batches = batch_source(cfg, task, self.train_tokens, self.train_labels)
        self.names = task.target_names
        self.model = config.model.build(task.d_vocab, task.d_vocab_out, task.n_ctx).to(device)
        self.optimizer = make_optimizer(self.model, cfg)
        self.grad_filter = (None if cfg.grokfast == "none" else
                            GradientFilter(self.model, cfg.grokfast, cfg.grokfast_alpha, cfg.grokfast_lamb,
                                           cfg.grokfast_window))
        self.config_dict = config.to_dict()
        self.schedule = set(checkpoint_schedule(cfg.epochs, cfg.checkpoint_every))
        self.rows, self.start, self.wall_before = _resume(paths, self.model, self.optimizer, cfg.seed, self.grad_filter)
        self.grok = grokking_epoch(self.rows, cfg.grok_threshold)
        self.device = device
        self.loggers: list = []
        self.t0 = 0.0
        self.diverged: Divergence | None = None

    def begin(self) -> None:
        """Open the loggers, write the initial checkpoint of a new run, put the model in training
        mode and start its clock."""
        self.loggers = open_loggers(self.cfg.log, self.paths.root, self.config_dict)
        if self.start == 0:
            checkpoint.save_weights(self.model, self.paths.checkpoint(0, self.cfg.epochs), 0, self.config_dict)
        self.model.train()
        self.t0 = time.perf_counter()

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.t0

    def save(self, epoch: int) -> None:
        """The metrics so far, and (unless a weight is no longer finite) the checkpoint and resume
        state of ``epoch``."""
        _write_metrics(self.paths, self.rows)
        if first_non_finite(self.model.named_parameters()) is not None:
            return  # a diverged run keeps its last finite checkpoint as its last
        checkpoint.save_weights(self.model, self.paths.checkpoint(epoch, self.cfg.epochs), epoch, self.config_dict)
        extra = self.grad_filter.state_tensors() if self.grad_filter is not None else None
        checkpoint.save_resume(self.model, self.optimizer, self.paths.resume, epoch, self.config_dict,
                               wall_seconds=self.wall(), extra=extra)

    def record(self, row: dict) -> bool:
        """Add epoch ``row``; True when the run stops here (its last epoch, grokked plus
        ``stop_after_grok``, or a loss that is not finite)."""
        cfg, epoch = self.cfg, row["epoch"]
        if self.grok is None and row["test_acc"] >= cfg.grok_threshold:
            self.grok = epoch
        self.rows.append(row)
        for logger in self.loggers:
            logger.log_epoch(row)
        if self.on_epoch is not None:
            self.on_epoch(row)
        if not math.isfinite(row["train_loss"]):
            self.diverged = Divergence(epoch, "train_loss")
        stop_early = (self.grok is not None and cfg.stop_after_grok is not None
                      and not math.isnan(row["test_acc"]) and epoch >= self.grok + cfg.stop_after_grok)
        return epoch == cfg.epochs or stop_early or self.diverged is not None

    def finish(self, ensemble: int) -> RunSummary:
        """Write summary.json (the run is complete) and close the loggers."""
        last = self.rows[-1]
        cpu = cpu_model()
        summary = RunSummary(
            final_epoch=int(last["epoch"]), grokking_epoch=self.grok,
            stopped="diverged" if self.diverged else "max_epochs" if last["epoch"] == self.cfg.epochs else "grokked",
            train_loss=last["train_loss"], test_loss=last["test_loss"],
            train_acc=last["train_acc"], test_acc=last["test_acc"], wall_seconds=self.wall(),
            execution=Execution(threads=self.cfg.threads, folded=self.cfg.folded and supports_folded(self.model),
                                cpu=cpu, torch=torch.__version__, device=str(self.device),
                                hardware=hardware_name(self.device), ensemble=ensemble),
            diverged=self.diverged,
        )
        atomic_write_text(self.paths.summary, json.dumps(summary.to_dict(), indent=2) + "\n")
        for logger in self.loggers:
            logger.finish(summary.to_dict())
        return summary


def _stack_batches(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Each member's (tokens [n_e, pos], labels [n_e, target]) as [member, n, pos] and
    [member, n, target], with n the largest n_e: shorter members are padded with copies of
    their first example whose labels are IGNORE, so they count in no loss or accuracy.
    Also returns each member's number of real examples."""
    sizes = [len(tokens) for tokens, _ in batches]
    if len(batches) == 1:
        tokens, labels = batches[0]
        return tokens[None], labels[None], sizes
    n = max(sizes)

    def pad(t: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        return t if len(t) == n else torch.cat([t, fill.expand(n - len(t), *t.shape[1:])])

    return (torch.stack([pad(t, t[:1]) for t, _ in batches]),
            torch.stack([pad(y, torch.full_like(y[:1], IGNORE)) for _, y in batches]), sizes)


def _member_forward(trainees: list[Trainee]) -> Callable[..., torch.Tensor]:
    """``forward(active, tokens [member, n, pos], query_positions, sizes) -> logits [member, n,
    target, d_vocab_out]``: one model's own forward (the folded path where it is exact and
    enabled), or the stacked forward of an ensemble's active members."""
    cfg = trainees[0].cfg
    if len(trainees) > 1:
        return lambda active, tokens, query, sizes: stacked_logits([t.model for t in active], tokens, query,
                                                                   cfg.folded, sizes)
    forward = training_forward(trainees[0].model, cfg)
    return lambda active, tokens, query, sizes: forward(tokens[0], query)[None]


def _member_measures(picked: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> tuple[list, list, list]:
    """Per member: the mean loss (a tensor, for the backward), the accuracy and the per-target
    losses, from ``log p(label)`` picked [member, n, target]: ([member] losses, [member]
    floats, [member][target] floats)."""
    scored = labels != IGNORE  # [member, n, target]
    counts = scored.flatten(1).sum(1)  # [member]
    losses = -picked.flatten(1).sum(1) / counts.clamp(min=1)  # [member]
    correct = ((logits.argmax(dim=-1) == labels) & scored).flatten(1).sum(1).tolist()
    accs = [c / max(n, 1) for c, n in zip(correct, counts.tolist())]
    with torch.no_grad():
        per_target = (-picked.sum(1) / scored.sum(1).clamp(min=1)).tolist()  # [member][target]
    return losses, accs, per_target


def train_together(trainees: list[Trainee]) -> list[RunSummary]:
    """Train the trainees (one run, or an ensemble that starts at the same epoch) to their ends.

    Every epoch the active members' forward passes are one (stacked) forward, their losses
    one backward (the sum of their mean losses: members' gradients never mix), and each takes
    its own AdamW step with its own Grokfast filter. A member that stops (its last epoch,
    grokked plus patience, divergence) is finished there: its summary is written and it
    leaves the stack, so it costs nothing afterwards.
    """
    first = trainees[0].cfg
    log_probs = partial(log_probs_of_labels, loss_dtype=first.loss_dtype, normaliser=first.normaliser)
    forward = _member_forward(trainees)
    summaries: dict[int, RunSummary] = {}
    for t in trainees:
        t.begin()
    active = list(trainees)
    epoch = trainees[0].start
    while active:
        finals = [epoch == t.cfg.epochs for t in active]
        tokens, labels, sizes = _stack_batches([t.batches(epoch) for t in active])
        with torch.set_grad_enabled(not all(finals)):
            logits = forward(active, tokens, query_positions := active[0].query_positions, sizes)  # [member, batch, target, d_vocab_out]
            picked = log_probs(logits, labels)  # [member, batch, target]
            losses, accs, train_targets = _member_measures(picked, logits, labels)
        train_losses = losses.tolist()
        evaluate = [final or epoch % t.cfg.eval_every == 0 for t, final in zip(active, finals)]
        test = None
        if any(evaluate):
            with torch.no_grad():
                test_tokens, test_labels, test_sizes = _stack_batches([(t.test_tokens, t.test_labels) for t in active])
                test_logits = forward(active, test_tokens, query_positions, test_sizes)
                test_picked = log_probs(test_logits, test_labels)
                test_losses, test_accs, test_targets = _member_measures(test_picked, test_logits, test_labels)
                test = test_losses.tolist(), test_accs, test_targets
        stepping, stopped = [], []
        for i, (t, evaluated) in enumerate(zip(active, evaluate)):
            row = {"epoch": epoch, "train_loss": train_losses[i], "train_acc": accs[i],
                   "test_loss": test[0][i] if evaluated else math.nan, "test_acc": test[1][i] if evaluated else math.nan,
                   **_losses_by_target("train_loss", t.names, train_targets[i]),
                   **_losses_by_target("test_loss", t.names, test[2][i] if evaluated else [math.nan] * len(t.names or []))}
            (stopped if t.record(row) else stepping).append((i, t))
        if stepping:
            losses[[i for i, _ in stepping]].sum().backward()
        for i, t in stepping:
            bad = take_step(t.model, t.optimizer, t.cfg, epoch, t.grad_filter)
            if bad is not None:
                t.diverged = Divergence(epoch, bad)
                stopped.append((i, t))  # the weights of this epoch if the step was refused, else only the metrics
            elif epoch + 1 in t.schedule:
                t.save(epoch + 1)
        for _, t in stopped:
            t.save(epoch)
            summaries[id(t)] = t.finish(len(trainees))
        gone = {id(t) for _, t in stopped}
        active = [t for t in active if id(t) not in gone]
        epoch += 1
    return [summaries[id(t)] for t in trainees]


def take_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, cfg, epoch: int,
              grad_filter: GradientFilter | None) -> str | None:
    """Optimizer step ``epoch`` from the gradients ``backward`` left: Grokfast filter, ⊥Grad,
    AdamW at the step's learning rate. The loss's gradient carries no float32 subnormal into
    the model (training/loss.py), and every ``FLUSH_STATE_EVERY`` steps the state carried from
    step to step (AdamW's moments, the filter's averages) is cleared of them (training/subnormals.py).

    Returns None, or what became non-finite: "gradient of NAME" (the step is then not taken,
    so the weights stay finite) or "weight NAME" (after the step)."""
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
    """The name of the first of these (name, tensor) pairs with a NaN or infinite entry, or None.

    A tensor has one exactly when its float64 sum is not finite (NaN and infinities
    propagate; float32 values cannot overflow a float64 sum), so one sum per tensor and one
    check of them all: 0.06 ms for the canonical model on two threads, against 0.42 ms for an
    ``isfinite().all()`` per tensor, twice per step."""
    pairs = [(name, t) for name, t in named if t is not None]
    if not pairs:
        return None
    finite = torch.isfinite(torch.stack([t.sum(dtype=torch.float64) for _, t in pairs])).tolist()
    return next((name for (name, _), ok in zip(pairs, finite) if not ok), None)


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
