"""The group family's results as named records (``grokscope.group-analysis/1``).

Shares are fractions of energy (W_E, W_U) or of variance (neurons, logits) in [0, 1];
losses are cross-entropies in nats; irreps are named as in analysis/representations.py.
Torch-free: the report reads these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IrrepMeasures:
    """One real irreducible representation, at the last checkpoint."""

    name: str
    dim: int  # real dimension
    embed_share: float  # of W_E's non-trivial energy (rows: the group's elements)
    unembed_share: float  # of W_U's non-trivial energy (columns: the group's elements)
    logit_share: float  # of the centred logits' variance explained by alpha * chi(a·b·c^-1)
    alpha: float  # the fitted coefficient of chi(a·b·c^-1)
    neurons: int  # neurons whose best irrep this is, with FVE >= the cluster threshold
    restricted_loss_test: float  # test loss of the logits kept to this irrep's a·b terms (and the constant)
    excluded_loss_train: float  # train loss with this irrep's a·b terms removed from the logits


@dataclass(frozen=True)
class GroupFinal:
    """The last checkpoint's measures with the key representations."""

    train_loss: float
    test_loss: float
    train_acc: float
    test_acc: float
    character_fve: float  # sum over key irreps of logit_share
    restricted_loss_test: float  # logits kept to the key irreps' a·b terms
    excluded_loss_train: float  # logits without them
    frac_neurons_in_key_clusters: float | None  # None without an MLP


@dataclass(frozen=True)
class GroupVerdict:
    implements_composition: bool
    key_representations: list[str]
    reasons: list[str]


@dataclass(frozen=True)
class GroupAnalysis:
    """Everything the group family computes for a run."""

    format: str
    group: str  # e.g. "symmetric:4"
    order: int
    epoch: int  # the last checkpoint's
    irreps: list[IrrepMeasures]
    key_representations: list[str]
    key_representations_by_method: dict[str, list[str]]
    key_representation_rules: dict[str, str]
    key_representation_disagreements: list[str]
    final: GroupFinal
    grokking_epoch: int | None
    verdict: GroupVerdict
    headline: str
    findings: list[str]
    seconds: float
