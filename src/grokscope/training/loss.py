"""Cross-entropy with ``log_softmax`` in a chosen dtype, and accuracy.

Nanda et al. (2023) traced the "slingshot" loss spikes to ``log_softmax`` in float32: once
the correct-class probability rounds to 1 its loss and gradient are exactly zero. Computing
it in float64 (the default) removes them; ``loss_dtype="float32"`` reproduces them.
"""

from __future__ import annotations

import torch

from grokscope.tasks.base import IGNORE
from grokscope.training.subnormals import cast_flushing_grad

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def log_probs_of_labels(logits: torch.Tensor, labels: torch.Tensor, loss_dtype: str = "float64",
                        normaliser: str = "softmax") -> torch.Tensor:
    """``log p(label)`` for every (example, target), computed in ``loss_dtype``; 0 where the label is IGNORE.

    ``p`` is ``softmax(logits)``, or with ``normaliser="stablemax"`` Prieto et al. (2025)'s
    StableMax: ``s(x) / sum s(x)`` with ``s(x) = x + 1`` for x >= 0 and ``1 / (1 - x)`` below,
    which cannot saturate to exactly 1 the way softmax does in floating point.
    The gradient that flows back into ``logits`` has its float32 subnormals set to zero
    (training/subnormals.py says why).
    logits [batch, target, d_vocab_out], labels [batch, target] -> [batch, target].
    """
    x = cast_flushing_grad(logits, DTYPES[loss_dtype])
    if normaliser == "stablemax":
        s = torch.where(x >= 0, x + 1, 1 / (1 - x.clamp(max=0)))
        log_probs = s.log() - s.sum(-1, keepdim=True).log()
    else:
        log_probs = x.log_softmax(dim=-1)
    scored = labels != IGNORE
    picked = log_probs.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return picked if bool(scored.all()) else picked * scored


def scored_mean_loss(picked: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log p(label)`` over the scored pairs, from ``log_probs_of_labels``: a scalar."""
    return -picked.sum() / (labels != IGNORE).sum().clamp(min=1)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, loss_dtype: str = "float64",
                  normaliser: str = "softmax") -> torch.Tensor:
    """Mean of ``-log p(label)`` over every scored (example, target) pair: a scalar of ``loss_dtype``."""
    return scored_mean_loss(log_probs_of_labels(logits, labels, loss_dtype, normaliser), labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of scored (example, target) pairs whose argmax logit is the label."""
    scored = labels != IGNORE
    return ((logits.argmax(dim=-1) == labels) & scored).sum().item() / max(int(scored.sum()), 1)
