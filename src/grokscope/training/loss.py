"""Cross-entropy with ``log_softmax`` in a chosen dtype, and accuracy.

Nanda et al. (2023) traced the "slingshot" loss spikes to ``log_softmax`` in float32: once
the correct-class probability rounds to 1 its loss and gradient are exactly zero. Computing
it in float64 (the default) removes them; ``loss_dtype="float32"`` reproduces them.
"""

from __future__ import annotations

import torch

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, loss_dtype: str = "float64") -> torch.Tensor:
    """Mean of ``-log_softmax(logits)[label]`` over every example and target, in ``loss_dtype``.

    logits [batch, target, d_vocab_out], labels [batch, target] -> scalar of dtype loss_dtype.
    """
    log_probs = logits.to(DTYPES[loss_dtype]).log_softmax(dim=-1)
    return -log_probs.gather(-1, labels[..., None]).mean()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of (example, target) pairs whose argmax logit is the label."""
    return (logits.argmax(dim=-1) == labels).float().mean().item()
