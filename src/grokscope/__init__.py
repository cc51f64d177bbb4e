"""grokscope: watch small transformers grok algorithmic tasks, and reverse-engineer what they learned."""

import os
import time


def _other_processes_busy(seconds: float = 0.05) -> bool:
    """Whether other processes keep at least half a core busy right now (Linux /proc/stat;
    elsewhere, assume busy)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return True
    busy_share = 1 - (idle1 - idle0) / max(1, total1 - total0)
    return busy_share * (os.cpu_count() or 1) >= 0.5


def _omp_wait_policy() -> str:
    """How torch's OpenMP threads wait between parallel regions, chosen before torch loads.

    Measured on 2 cores, canonical step on 2 threads: idle machine, spinning (ACTIVE) 24.7 ms
    vs sleeping (PASSIVE) 41.4 ms; with another process busy, ACTIVE 75 ms vs PASSIVE 43 ms.
    So spin when nothing else is running, sleep otherwise. One-thread runs (the default, and
    every sweep member) never wait, so this only matters for threads > 1.
    """
    return "PASSIVE" if _other_processes_busy() else "ACTIVE"


if "OMP_WAIT_POLICY" not in os.environ:  # set it yourself to override (and skip the 50 ms sample)
    os.environ["OMP_WAIT_POLICY"] = _omp_wait_policy()

from grokscope.config import RunConfig, TrainConfig, load_preset, preset_names
from grokscope.errors import GrokscopeError
from grokscope.runs import Run, load_run
from grokscope.training.loop import RunSummary, train_run

__all__ = [
    "GrokscopeError", "Run", "RunConfig", "RunSummary", "TrainConfig",
    "load_preset", "load_run", "preset_names", "train_run",
]
__version__ = "0.1.0"
