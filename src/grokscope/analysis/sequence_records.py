"""The sequence families' results as named records (``grokscope.sequence-analysis/1``).

Field names are the document's keys, as for the modular family. Epochs are optimizer steps;
losses are cross-entropies in nats; head scores lie in [0, 1]; heads are named ``L{layer}H{head}``.
Torch-free: the report reads these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FinalMetrics:
    """The run's last metrics row (from summary.json)."""

    train_loss: float
    test_loss: float
    train_acc: float
    test_acc: float


@dataclass(frozen=True)
class HeadScores:
    """One head's scores at the last checkpoint."""

    prev: float  # attention to the previous position, on test examples
    induction: float  # attention to the token after the current token's earlier occurrence, on repeated random tokens
    copying: float  # share of the OV circuit's eigenvalues (by magnitude) that are positive


@dataclass(frozen=True)
class Rise:
    """When a rising score first reached 10 % and 90 % of its final value (checkpoint epochs)."""

    epoch_10: int | None
    epoch_90: int | None


@dataclass(frozen=True)
class SequenceAnalysis:
    """Phase changes in each target's loss, and what the attention heads do (``analysis.json``)."""

    format: str
    task: str  # the task's kind
    n_layers: int  # 0 for models without attention
    epoch: int  # the final checkpoint analysed
    grokking_epoch: int | None
    final: FinalMetrics
    phase_change_rule: str
    train_loss_phase_change: int | None
    target_phase_changes: dict[str, int | None]  # target name -> epoch of its phase change
    heads: dict[str, HeadScores]  # head label -> its final scores (empty without attention)
    induction_head: str | None  # the head with the highest final induction score
    induction_rise: Rise | None
    headline: str
    findings: list[str]
    seconds: float = math.nan


@dataclass(frozen=True)
class OVCircuit:
    """The most copying head's OV circuit ``W_E W_V W_O W_U`` (final weights)."""

    head: str
    layer: int
    head_index: int
    ov: list[list[float]]  # [token attended to, output logit]


@dataclass(frozen=True)
class SkipTrigramEvidence:
    """Max element: END's attention to the list's maximum, and the OV circuit's self-copying."""

    end_attends_to_max: float  # share of test lists where END attends most (summed over heads) to the maximum
    ov_copying_accuracy: float  # share of values v whose OV circuit's largest output is v
    attention_by_value: dict[int, float]  # an entry's value -> END's mean attention to it
    attention_by_rank: dict[int, float]  # an entry's rank in its list (0 = the maximum) -> END's mean attention
