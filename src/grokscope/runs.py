"""Run directories: layout, and ``load_run`` to read one back.

A run directory holds::

    config.json                  the full RunConfig (each part with its kind)
    metrics.parquet              one row per epoch: epoch, train_loss, train_acc, test_loss, test_acc
                                 (test columns are NaN between evaluations)
    checkpoints/epoch_*.safetensors   weights with TransformerLens keys, epoch zero-padded
    resume.safetensors           weights + AdamW state of the latest checkpoint
    summary.json                 written last: its presence marks the run complete
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from grokscope.atomic import atomic_write_text
from grokscope.config import EXECUTION_KEYS, RunConfig
from grokscope.errors import GrokscopeError
from grokscope.training import checkpoint

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]


@dataclass(frozen=True)
class RunPaths:
    """Where each file of a run directory lives."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.parquet"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def resume(self) -> Path:
        return self.root / "resume.safetensors"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def checkpoint(self, epoch: int, max_epochs: int) -> Path:
        width = max(6, len(str(max_epochs)))
        return self.checkpoints / f"epoch_{epoch:0{width}d}.safetensors"

    def checkpoint_epochs(self) -> list[int]:
        """Epochs of the saved weight checkpoints, ascending."""
        if not self.checkpoints.is_dir():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in self.checkpoints.glob("epoch_*.safetensors"))


def read_config(path: Path) -> RunConfig:
    """The RunConfig in ``path/config.json``, with a clear error if absent or invalid."""
    paths = RunPaths(Path(path))
    if not paths.root.is_dir():
        raise GrokscopeError(f"no run directory at {paths.root}")
    if not paths.config.is_file():
        raise GrokscopeError(f"{paths.root} is not a grokscope run directory (no config.json)")
    try:
        return RunConfig.from_dict(json.loads(paths.config.read_text()))
    except (json.JSONDecodeError, ValueError) as e:
        raise GrokscopeError(f"{paths.config} is not a valid run config: {e}") from None


def check_run_dir(root: Path, config: RunConfig) -> RunPaths:
    """Check, writing nothing, that ``root`` is free for ``config`` or holds the same run (the
    same config up to ``EXECUTION_KEYS``; config.json keeps the settings it started with).

    Raises GrokscopeError if ``root`` holds a different run or unrelated files.
    """
    paths = RunPaths(Path(root))
    if paths.config.is_file():
        existing = read_config(paths.root)
        changed = existing.diff(config, ignore=EXECUTION_KEYS)
        if changed:
            raise GrokscopeError(
                f"{paths.root} holds a run with a different config (differs in {', '.join(changed)}); "
                "choose another output directory or delete it"
            )
    elif paths.root.exists() and (not paths.root.is_dir() or any(paths.root.iterdir())):
        raise GrokscopeError(f"{paths.root} exists and is not a grokscope run directory")
    return paths


def prepare_run_dir(root: Path, config: RunConfig) -> RunPaths:
    """Create a run directory for ``config``, or check that an existing one holds the same run
    (``check_run_dir``)."""
    paths = check_run_dir(root, config)
    if not paths.config.is_file():
        paths.checkpoints.mkdir(parents=True, exist_ok=True)
        atomic_write_text(paths.config, json.dumps(config.to_dict(), indent=2) + "\n")
    paths.checkpoints.mkdir(exist_ok=True)
    return paths


class Run:
    """A run directory read back: ``config``, ``metrics``, ``summary`` and ``model(epoch)``."""

    def __init__(self, root: Path):
        self.paths = RunPaths(Path(root))
        self.config = read_config(self.paths.root)
        self.task = self.config.task.build()

    @property
    def complete(self) -> bool:
        return self.paths.summary.is_file()

    @property
    def summary(self) -> dict[str, Any]:
        if not self.complete:
            raise GrokscopeError(f"run {self.paths.root} is incomplete (no summary.json); re-run to resume it")
        return json.loads(self.paths.summary.read_text())

    def refuse_if_diverged(self) -> None:
        """GrokscopeError naming the epoch if the run stopped because it diverged (NaN or infinity)."""
        diverged = self.summary.get("diverged")
        if diverged:
            raise GrokscopeError(f"run {self.paths.root} diverged at epoch {diverged['epoch']:,} "
                                 f"({diverged['quantity']} became NaN or infinite): nothing to analyse or draw; "
                                 "its metrics.parquet shows the losses up to then")

    @property
    def metrics(self) -> pd.DataFrame:
        if not self.paths.metrics.is_file():
            return pd.DataFrame({c: pd.Series(dtype="int64" if c == "epoch" else "float64") for c in METRIC_COLUMNS})
        return pd.read_parquet(self.paths.metrics)

    @property
    def checkpoint_epochs(self) -> list[int]:
        return self.paths.checkpoint_epochs()

    def model(self, epoch: int | None = None):
        """The model at a saved epoch (the last saved one if None), in eval mode."""
        epochs = self.checkpoint_epochs
        if not epochs:
            raise GrokscopeError(f"run {self.paths.root} has no checkpoints")
        epoch = epochs[-1] if epoch is None else epoch
        if epoch not in epochs:
            raise GrokscopeError(f"run {self.paths.root} has no checkpoint at epoch {epoch} (saved: {epochs[0]}..{epochs[-1]})")
        model = self.config.model.build(self.task.d_vocab, self.task.d_vocab_out, self.task.n_ctx)
        checkpoint.load_weights(model, self.paths.checkpoint(epoch, self.config.train.epochs))
        return model.eval()

    def __repr__(self) -> str:
        state = "complete" if self.complete else "incomplete"
        return f"Run({str(self.paths.root)!r}, {state}, {len(self.checkpoint_epochs)} checkpoints)"


def load_run(path: str | Path) -> Run:
    """Open a run directory; GrokscopeError if it is missing or not a run."""
    return Run(Path(path))
