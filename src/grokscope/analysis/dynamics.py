"""The grokking epoch and the three phases of training, located from the curves by fixed rules.

Rules (also written into ``analysis.json``):

- grokking epoch: the first evaluated epoch with test accuracy >= the run's grok threshold (99 %).
- memorisation ends at the first checkpoint where log(train loss) has covered 90 % of its fall
  from epoch 0 to its minimum before the grokking epoch (the train loss has levelled out).
- circuit formation ends at the first checkpoint after memorisation's end where the restricted
  (trig) test loss is <= 0.1 nats: the key frequencies' directions alone now predict the
  held-out pairs (the verdict's threshold for "the key directions suffice").
- clean-up ends at the first checkpoint, after the fastest fall of the total sum of squared
  weights since circuit formation, where the weights fall more slowly than 20 % of that
  fastest rate (per epoch): weight decay has finished removing the memorising circuit.

A phase boundary that the run did not reach is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from grokscope.analysis.modular_records import Phases
from grokscope.training.loop import grokking_epoch

FORMED_LOSS = 0.1  # nats: restricted test loss at which the generalising circuit counts as formed

RULES = {
    "grokking_epoch": "first evaluated epoch with test accuracy >= grok threshold",
    "memorisation_end": "first checkpoint where log(train loss) has covered 90% of its fall from epoch 0 to its minimum before grokking",
    "circuit_formation_end": "first checkpoint after memorisation where the restricted test loss is <= 0.1",
    "cleanup_end": "first checkpoint after the fastest fall of the sum of squared weights since circuit formation where it falls slower than 20% of that rate",
}


@dataclass(frozen=True)
class Dynamics:
    grokking_epoch: int | None
    phases: Phases
    rules: dict[str, str]


def memorisation_end(progress: pd.DataFrame, grok: int | None) -> int | None:
    before = progress if grok is None else progress[progress["epoch"] <= grok]
    logs = before["train_loss"].clip(lower=1e-300).map(math.log)
    start, low = logs.iloc[0], logs.min()
    if start - low < 1e-9:
        return None
    reached = before[logs <= start - 0.9 * (start - low)]
    return int(reached["epoch"].iloc[0]) if len(reached) else None


def circuit_formation_end(progress: pd.DataFrame, after: int | None) -> int | None:
    if after is None:
        return None
    later = progress[progress["epoch"] > after]
    reached = later[later["restricted_loss_test"] <= FORMED_LOSS]
    return int(reached["epoch"].iloc[0]) if len(reached) else None


def cleanup_end(progress: pd.DataFrame, formed: int | None) -> int | None:
    if formed is None:
        return None
    later = progress[progress["epoch"] >= formed]
    epochs, ssw = later["epoch"].to_numpy(), later["ssw_total"].to_numpy()
    fall = [(ssw[i] - ssw[i + 1]) / (epochs[i + 1] - epochs[i]) for i in range(len(epochs) - 1)]  # per epoch
    if not fall or max(fall) <= 0:
        return None
    fastest = max(range(len(fall)), key=fall.__getitem__)
    for i in range(fastest, len(fall)):
        if fall[i] < 0.2 * fall[fastest]:
            return int(epochs[i])
    return None


def locate_phases(metrics: pd.DataFrame, progress: pd.DataFrame, threshold: float) -> Dynamics:
    """Grokking epoch (from per-epoch metrics) and phase ends (from the per-checkpoint progress table)."""
    grok = grokking_epoch(metrics.to_dict("records"), threshold)
    memorised = memorisation_end(progress, grok)
    formed = circuit_formation_end(progress, memorised)
    cleaned = cleanup_end(progress, formed)
    return Dynamics(
        grokking_epoch=grok,
        phases=Phases(memorisation_end=memorised, circuit_formation_end=formed, cleanup_end=cleaned),
        rules=dict(RULES),
    )
