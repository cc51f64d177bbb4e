"""Copy the small results of a sweep (no checkpoints) into a folder meant for the repository.

``DEST/`` gets the sweep's ``sweep.toml``, ``summary.csv``, ``summary.parquet`` and
``failures.json`` (if any), and ``DEST/MEMBER/`` each member's ``config.json``,
``summary.json``, ``analysis.json`` and ``metrics.parquet``: enough to rebuild every table
and curve without retraining. Parquet files are re-encoded losslessly for the repository
(zstd, with the floats' bytes split into streams): a 25K-epoch member's metrics take 295 KB
instead of the 424 KB the training loop writes, so that a whole ``docs/results`` stays small.
``analysis.json`` is written without indentation (the same document; 30 % smaller).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from grokscope.atomic import atomic_copy, atomic_write, atomic_write_text
from grokscope.errors import GrokscopeError
from grokscope.sweeps.summary import summarize

SWEEP_FILES = ("sweep.toml", "summary.csv", "summary.parquet", "failures.json", "bisection.json")
MEMBER_FILES = ("config.json", "summary.json", "analysis.json", "analysis_skipped.txt", "metrics.parquet")


def publish(out: str | Path, dest: str | Path) -> list[Path]:
    """Refresh ``out``'s summary and copy its small files to ``dest``; returns the files written."""
    out, dest = Path(out), Path(dest)
    table = summarize(out)
    written = []
    for name in SWEEP_FILES:
        written += _copy(out / name, dest / name)
    for member in table["member"]:
        for name in MEMBER_FILES:
            written += _copy(out / member / name, dest / member / name)
    if not written:
        raise GrokscopeError(f"{out} has nothing to publish")
    return written


def _copy(source: Path, target: Path) -> list[Path]:
    if not source.is_file():
        return []
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".parquet":
        table = pq.read_table(source)
        floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
        atomic_write(target, lambda tmp: pq.write_table(table, tmp, compression="zstd", compression_level=19,
                                                        use_byte_stream_split=floats or False))
    elif source.name == "analysis.json":
        document = json.loads(source.read_text())
        atomic_write_text(target, json.dumps(document, separators=(",", ":")) + "\n")
    else:
        atomic_copy(source, target)
    return [target]
