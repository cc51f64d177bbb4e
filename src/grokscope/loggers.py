"""Stream a run's metrics to the tools researchers watch: TensorBoard (``train.log =
tensorboard``; the optional extra ``grokscope[tensorboard]``).

Every evaluated epoch writes its train and test loss and accuracy (and each named target's
losses) as scalars; the config goes in as text at the start, and the summary (grokking epoch,
final metrics) at the end as hyper-parameters with their results. Event files go to
``RUN/tensorboard`` (or ``log_dir/RUN_NAME``), so ``tensorboard --logdir`` over a sweep
directory shows every member side by side. The writers are TensorBoard's own
(``torch.utils.tensorboard``); no event file is written by hand. Which loggers a run uses is
how it executes, not what it is (``config.EXECUTION_KEYS``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from grokscope.config import flatten
from grokscope.errors import GrokscopeError

def check_loggers(names: tuple[str, ...]) -> None:
    """Refuse, before anything is written, a logger whose library is not installed."""
    for name in names:
        if name == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise GrokscopeError("train.log=tensorboard needs TensorBoard: pip install 'grokscope[tensorboard]'") from None


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

    def log_progress(self, progress: list[dict[str, float]]) -> None:
        """The analysis's progress measures, one point per checkpoint."""
        for row in progress:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"progress/{key}", value, int(row["epoch"]))
        self.writer.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        flat = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in flatten(self.config).items()}
        flat = {k: v for k, v in flat.items() if isinstance(v, (int, float, str, bool))}
        results = {f"summary/{k}": (float(v) if v is not None else math.nan)
                   for k, v in summary.items() if isinstance(v, (int, float)) or v is None}
        self.writer.add_hparams(flat, results, run_name="hparams")
        self.writer.close()


def open_loggers(names: tuple[str, ...], run_dir: Path, config: dict[str, Any], log_dir: Path | None = None,
                 first: bool = True) -> list:
    check_loggers(names)
    return [TensorBoardLogger(run_dir, config, log_dir, first) for name in names if name == "tensorboard"]

