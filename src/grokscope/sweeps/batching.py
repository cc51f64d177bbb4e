"""Which sweep members train together as ensembles (training/ensemble.py).

Members whose configs agree on everything but the per-member keys (the seed, the optimizer's
settings, the budget, the data split) form a group; each group is cut into ensembles. On a
GPU one canonical model uses a small part of the device, so batching is the default there.
On a CPU it pays only where a step is dominated by per-operation overhead rather than
arithmetic: small models (benchmarks/bench_ensemble.py measures it, see the README).
"""

from __future__ import annotations

import math

from grokscope.config import RunConfig
from grokscope.devices import resolve_device
from grokscope.sweeps.spec import Member
from grokscope.training.ensemble import shared_settings

CPU_BATCH_MAX_VOCAB = 32  # on a CPU, batch by default up to this output vocabulary (p); measured in the README


def batch_by_default(config: RunConfig) -> bool:
    """Whether members like this one train faster batched than one at a time, one per core."""
    if resolve_device(config.train.device).type != "cpu":
        return True
    return config.task.build().d_vocab_out <= CPU_BATCH_MAX_VOCAB


def ensemble_batches(members: list[Member], size: int | None, workers: int) -> list[list[Member]]:
    """The members cut into ensembles, in order: members that can train together (equal
    ``shared_settings``), at most ``size`` per ensemble; ``size`` None: each group shared out
    evenly between ``workers`` processes. Size 1: every member alone."""
    groups: dict[str, list[Member]] = {}
    for m in members:
        groups.setdefault(shared_settings(m.config), []).append(m)
    out = []
    for group in groups.values():
        n = size or math.ceil(len(group) / max(workers, 1))
        out += [group[i:i + n] for i in range(0, len(group), n)]
    return out
