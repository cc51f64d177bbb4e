"""Cross-entropy with ``log_softmax`` in a chosen dtype, and accuracy.

Nanda et al. (2023) traced the "slingshot" loss spikes to ``log_softmax`` in float32: once
the correct-class probability rounds to 1 its loss and gradient are exactly zero. Computing
it in float64 (the default) removes them; ``loss_dtype="float32"`` reproduces them.
"""

from __future__ import annotations

import torch

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, loss_dtype: str = "float64",
                  normaliser: str = "softmax") -> torch.Tensor:
    """Mean of ``-log p(label)`` over every example and target, computed in ``loss_dtype``.

    ``p`` is ``softmax(logits)``, or with ``normaliser="stablemax"`` Prieto et al. (2025)'s
    StableMax: ``s(x) / sum s(x)`` with ``s(x) = x + 1`` for x >= 0 and ``1 / (1 - x)`` below,
    which cannot saturate to exactly 1 the way softmax does in floating point.
    logits [batch, target, d_vocab_out], labels [batch, target] -> scalar of dtype loss_dtype.
    """
    x = logits.to(DTYPES[loss_dtype])
    if normaliser == "stablemax":
        s = torch.where(x >= 0, x + 1, 1 / (1 - x.clamp(max=0)))
        log_probs = s.log() - s.sum(-1, keepdim=True).log()
    else:
        log_probs = x.log_softmax(dim=-1)
    return -log_probs.gather(-1, labels[..., None]).mean()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of (example, target) pairs whose argmax logit is the label."""
    return (logits.argmax(dim=-1) == labels).float().mean().item()
