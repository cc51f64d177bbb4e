"""Every run under a folder, as tables: ``grokscope runs DIR`` lists them, ``grokscope query DIR SQL``
runs DuckDB SQL over them.

The views are ``summaries`` (one row per run: its config flattened, status, grokking epoch,
final accuracies, key frequencies, verdict; the sweep summary's columns), ``metrics`` (every
run's metrics.parquet) and ``progress`` (every analysed run's progress.parquet); the last two
gain a ``run`` column, the run's path relative to DIR, which ``summaries`` also has.
DuckDB is an optional extra (``pip install 'grokscope[query]'``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from grokscope.errors import GrokscopeError
from grokscope.sweeps.summary import member_row


def run_dirs(root: Path) -> list[Path]:
    """Run directories under ``root``, at any depth, sorted: a config.json beside checkpoints/
    or a summary.json (a published run keeps no checkpoints)."""
    if not root.is_dir():
        raise GrokscopeError(f"no folder at {root}")
    return sorted(p.parent for p in root.rglob("config.json")
                  if (p.parent / "checkpoints").is_dir() or (p.parent / "summary.json").is_file())


def summaries(root: Path) -> pd.DataFrame:
    """One row per run under ``root``; ``run`` is its path relative to ``root``."""
    runs = run_dirs(root)
    if not runs:
        raise GrokscopeError(f"{root} holds no grokscope runs")
    rows = [{"run": str(p.relative_to(root)), **member_row(p, {})} for p in runs]
    frame = pd.DataFrame(rows).drop(columns=["member", "error"])
    return frame.rename(columns={"task.name": "task"})


def stacked(root: Path, runs: list[str], file: str) -> pd.DataFrame:
    """Every run's ``file`` (a Parquet table) stacked, with a ``run`` column first."""
    frames = [pd.read_parquet(root / r / file).assign(run=r) for r in runs if (root / r / file).is_file()]
    if not frames:
        return pd.DataFrame({"run": pd.Series(dtype=str), "epoch": pd.Series(dtype="int64")})
    frame = pd.concat(frames, ignore_index=True)
    return frame[["run", *[c for c in frame.columns if c != "run"]]]


def query(root: Path, sql: str) -> pd.DataFrame:
    """The result of ``sql`` over the views ``summaries``, ``metrics`` and ``progress`` of ``root``."""
    try:
        import duckdb
    except ImportError:
        raise GrokscopeError("DuckDB is not installed: pip install 'grokscope[query]'") from None
    table = summaries(root)
    connection = duckdb.connect()
    views = {"summaries": table, "metrics": stacked(root, table["run"].tolist(), "metrics.parquet"),
             "progress": stacked(root, table["run"].tolist(), "progress.parquet")}
    for name, frame in views.items():
        connection.register(name, frame)
    try:
        return connection.execute(sql).df()
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise GrokscopeError(f"the query failed: {first} (views: summaries, metrics, progress)") from None
