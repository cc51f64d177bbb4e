"""How torch's OpenMP worker threads wait between parallel regions: chosen before torch loads.

libgomp reads ``OMP_WAIT_POLICY`` once, when torch is imported, so the choice must come
first. Measured on 2 cores, canonical step on 2 threads: idle machine, spinning (ACTIVE)
24.7 ms vs sleeping (PASSIVE) 41.4 ms; with another process busy, ACTIVE 75 ms vs PASSIVE
43 ms. So spin when nothing else is running, sleep otherwise. One-thread runs (every sweep
member) never wait, so this only matters for threads > 1.

The ``grokscope`` command and ``python -m grokscope`` call ``choose_wait_policy`` before
anything imports torch; ``import grokscope`` does not (no side effects at import). In a
notebook, call it (or set ``OMP_WAIT_POLICY`` yourself) before importing torch.
"""

from __future__ import annotations

import os
import sys
import time


def other_processes_busy(seconds: float = 0.05) -> bool:
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


def choose_wait_policy() -> str | None:
    """Set ``OMP_WAIT_POLICY`` (ACTIVE on an idle machine, else PASSIVE) unless it is set, and
    return it; None if torch is already loaded, when it is too late to matter."""
    if "OMP_WAIT_POLICY" in os.environ:
        return os.environ["OMP_WAIT_POLICY"]
    if "torch" in sys.modules:
        return None
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE" if other_processes_busy() else "ACTIVE"
    return os.environ["OMP_WAIT_POLICY"]
