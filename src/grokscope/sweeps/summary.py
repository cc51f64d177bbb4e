"""One table over a sweep's members: config, grokking epoch, final accuracies, key frequencies, verdict.

Also, per member: the epoch its test loss first fell below 0.1 (the paper's measure of when a
run generalises), its count of train-loss spikes (``analysis.curves.loss_spikes``; both empty
for a member whose metrics.parquet was not kept), and for
modular tasks the label statistics of the task and how many values each input contributes
(``ModularTask.label_statistics``, ``ModularTask.input_statistics``).

Written as ``DIR/summary.parquet`` and ``DIR/summary.csv``. Every member directory is an
ordinary run, so DuckDB can also query the members' own files directly, e.g.
``SELECT * FROM read_parquet('DIR/*/metrics.parquet', filename=true)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from grokscope.analysis import registry
from grokscope.analysis.curves import first_below, loss_spikes
from grokscope.atomic import atomic_write_parquet, atomic_write_text
from grokscope.config import RunConfig, flatten
from grokscope.errors import GrokscopeError
from grokscope.training.loop import RunSummary


def member_row(path: Path, failures: dict[str, str]) -> dict:
    """The summary row of one member directory."""
    row: dict = {"member": path.name}
    config = json.loads((path / "config.json").read_text())
    row |= {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in flatten(config).items() if k != "format"}
    summary_path, analysis_path = path / "summary.json", path / "analysis.json"
    row["status"] = "failed" if path.name in failures else "done" if summary_path.is_file() else "incomplete"
    if row["status"] == "done" and json.loads(summary_path.read_text()).get("diverged"):
        row["status"] = "diverged"
    row["error"] = failures.get(path.name, "").split("\n")[0]
    task = RunConfig.from_dict(config).task.build()
    if hasattr(task, "label_statistics"):
        row |= task.label_statistics() | task.input_statistics()
    if summary_path.is_file():
        s = RunSummary.from_dict(json.loads(summary_path.read_text()))
        row |= {"grokking_epoch": s.grokking_epoch, "final_epoch": s.final_epoch, "train_acc": s.train_acc,
                "test_acc": s.test_acc, "test_loss": s.test_loss, "wall_seconds": s.wall_seconds,
                "cpu": s.execution.cpu if s.execution else None}
        if (path / "metrics.parquet").is_file():  # a published member may keep only its summary
            metrics = pd.read_parquet(path / "metrics.parquet")
            row["test_loss_below_0.1_epoch"] = first_below(metrics["epoch"], metrics["test_loss"], 0.1)
            row["train_loss_spikes"] = len(loss_spikes(metrics["train_loss"].to_numpy()))
    if analysis_path.is_file():
        try:
            stored = registry.read_analysis(json.loads(analysis_path.read_text()))
        except (GrokscopeError, ValueError) as e:  # another grokscope version's, or unreadable: the member still counts
            row["headline"] = f"analysis not read: {e}"
        else:
            row["headline"] = stored.headline
            for family in stored.families:
                row |= family.summary_row(stored)
    return row


def summary_table(out: str | Path) -> pd.DataFrame:
    """The summary table of the sweep directory ``out``, one row per member (nothing written)."""
    out = Path(out)
    if not out.is_dir():
        raise GrokscopeError(f"no sweep directory at {out}")
    failures = json.loads((out / "failures.json").read_text()) if (out / "failures.json").is_file() else {}
    members = sorted(p for p in out.iterdir() if (p / "config.json").is_file())
    if not members:
        raise GrokscopeError(f"{out} holds no sweep members")
    return pd.DataFrame([member_row(p, failures) for p in members])


def summarize(out: str | Path) -> pd.DataFrame:
    """Build, write (summary.parquet, summary.csv) and return the summary table of ``out``."""
    out = Path(out)
    table = summary_table(out)
    atomic_write_parquet(out / "summary.parquet", table)
    atomic_write_text(out / "summary.csv", table.to_csv(index=False))
    return table
