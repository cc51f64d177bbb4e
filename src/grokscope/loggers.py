"""Stream a run's metrics to the tools researchers watch: TensorBoard (``train.log =
tensorboard``; the optional extra ``grokscope[tensorboard]``) and Weights & Biases
(``train.log = wandb``; ``grokscope[wandb]``).

Every evaluated epoch writes its train and test loss and accuracy (and each named target's
losses) as scalars; the config goes in as text at the start, and the summary (grokking epoch,
final metrics) at the end as hyper-parameters with their results. Event files go to
``RUN/tensorboard`` (or ``log_dir/RUN_NAME``), so ``tensorboard --logdir`` over a sweep
directory shows every member side by side. The writers are TensorBoard's own
(``torch.utils.tensorboard``); no event file is written by hand.

W&B runs offline (files under ``RUN/wandb``, ``wandb sync`` uploads them) unless ``WANDB_MODE``
says otherwise; the project is ``WANDB_PROJECT`` or "grokscope", a sweep's members share a
group (the sweep folder's name), and the run's id follows from its directory, so a resumed run
and its analysis continue the same W&B run. Which loggers a run uses is how it executes, not
what it is (``config.EXECUTION_KEYS``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from pathlib import Path
from typing import Any

from grokscope.config import flatten
from grokscope.errors import GrokscopeError

LIBRARIES = {"tensorboard": ("tensorboard", "TensorBoard"), "wandb": ("wandb", "Weights & Biases")}


def check_loggers(names: tuple[str, ...]) -> None:
    """Refuse, before anything is written, a logger whose library is not installed."""
    for name in names:
        module, title = LIBRARIES[name]
        try:
            importlib.import_module(module)
        except ImportError:
            raise GrokscopeError(f"train.log={name} needs {title}: pip install 'grokscope[{name}]'") from None


def _scalars(summary: dict[str, Any]) -> dict[str, float]:
    """The summary's numbers (None as NaN), for a logger's results."""
    return {k: (float(v) if v is not None else math.nan) for k, v in summary.items()
            if isinstance(v, (int, float)) or v is None}


class TensorBoardLogger:
    """Scalars per evaluated epoch, the config as text, the summary as hyper-parameters."""

    def __init__(self, run_dir: Path, config: dict[str, Any], log_dir: Path | None = None, first: bool = True):
        from torch.utils.tensorboard import SummaryWriter

        self.path = (Path(log_dir) / run_dir.name) if log_dir else run_dir / "tensorboard"
        self.writer = SummaryWriter(str(self.path))
        self.config = config
        if first:  # not again when the analysis adds its progress measures
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log_epoch(self, row: dict[str, float]) -> None:
        if math.isnan(row.get("test_acc", math.nan)):
            return  # only evaluated epochs: the test metrics are there
        epoch = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and not math.isnan(value):
                split, _, metric = key.partition("_")
                self.writer.add_scalar(f"{split}/{metric}", value, epoch)

    def log_progress(self, progress: list[dict[str, float]], headline: str = "") -> None:
        """The analysis's progress measures, one point per checkpoint, and its headline (the verdict)."""
        if headline:
            self.writer.add_text("verdict", headline, int(progress[-1]["epoch"]) if progress else 0)
        for row in progress:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"progress/{key}", value, int(row["epoch"]))
        self.writer.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        flat = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in flatten(self.config).items()}
        flat = {k: v for k, v in flat.items() if isinstance(v, (int, float, str, bool))}
        results = {f"summary/{k}": v for k, v in _scalars(summary).items()}
        self.writer.add_hparams(flat, results, run_name="hparams")
        self.writer.close()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """The same metrics to a W&B run: per evaluated epoch (step = epoch), the progress measures
    against ``checkpoint_epoch``, the config and hardware as its config, the summary at the end."""

    def __init__(self, run_dir: Path, config: dict[str, Any], log_dir: Path | None = None, first: bool = True):
        import wandb

        from grokscope.hardware import cpu_model

        run_dir = Path(run_dir).resolve()
        sweep = run_dir.parent.name if (run_dir.parent / "sweep.toml").is_file() else None
        root = Path(log_dir) if log_dir else run_dir
        root.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "grokscope"), dir=str(root), name=run_dir.name, group=sweep,
            id=hashlib.sha1(str(run_dir).encode()).hexdigest()[:16], resume="allow",
            mode=os.environ.get("WANDB_MODE", "offline"),
            config={**flatten(config), "hardware": cpu_model()}, settings=wandb.Settings(silent=True))
        self.run.define_metric("checkpoint_epoch")
        self.run.define_metric("progress/*", step_metric="checkpoint_epoch")

    def log_epoch(self, row: dict[str, float]) -> None:
        if math.isnan(row.get("test_acc", math.nan)):
            return
        values = {}
        for key, value in row.items():
            if key != "epoch" and not math.isnan(value):
                split, _, metric = key.partition("_")
                values[f"{split}/{metric}"] = value
        self.run.log(values, step=int(row["epoch"]))

    def log_progress(self, progress: list[dict[str, float]], headline: str = "") -> None:
        if headline:
            self.run.summary["verdict"] = headline
        for row in progress:
            values = {f"progress/{k}": v for k, v in row.items()
                      if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v)}
            self.run.log({**values, "checkpoint_epoch": int(row["epoch"])})

    def finish(self, summary: dict[str, Any]) -> None:
        self.run.summary.update(_scalars(summary) | {"stopped": summary.get("stopped")})
        self.run.finish()

    def close(self) -> None:
        self.run.finish()


LOGGER_CLASSES = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger}


def open_loggers(names: tuple[str, ...], run_dir: Path, config: dict[str, Any], log_dir: Path | None = None,
                 first: bool = True) -> list:
    """The loggers ``names`` for a run; ``first=False`` when the analysis adds to a trained run's."""
    check_loggers(names)
    return [LOGGER_CLASSES[name](run_dir, config, log_dir, first) for name in names]

