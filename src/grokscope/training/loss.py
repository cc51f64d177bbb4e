"""Cross-entropy with ``log_softmax`` in a chosen dtype, and accuracy.

Nanda et al. (2023) traced the "slingshot" loss spikes to ``log_softmax`` in float32: once
the correct-class probability rounds to 1 its loss and gradient are exactly zero. Computing
it in float64 (the default) removes them; ``loss_dtype="float32"`` reproduces them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from grokscope.tasks.base import IGNORE
from grokscope.training.subnormals import GRADIENT_FLOOR, TINY, cast_flushing_grad, magnitude_below

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def log_probs_of_labels(logits: torch.Tensor, labels: torch.Tensor, loss_dtype: str = "float64",
                        normaliser: str = "softmax") -> torch.Tensor:
    """``log p(label)`` for every (example, target), computed in ``loss_dtype``; 0 where the label is IGNORE.

    ``p`` is ``softmax(logits)``, or with ``normaliser="stablemax"`` Prieto et al. (2025)'s
    StableMax: ``s(x) / sum s(x)`` with ``s(x) = x + 1`` for x >= 0 and ``1 / (1 - x)`` below,
    which cannot saturate to exactly 1 the way softmax does in floating point.
    The gradient that flows back into ``logits`` is set to zero below 2^-100, so that no
    float32 subnormal arises in it or in the backward's matmuls (training/subnormals.py says why).
    logits [batch, target, d_vocab_out], labels [batch, target] -> [batch, target].
    """
    dtype = DTYPES[loss_dtype]
    scored, index = labels != IGNORE, labels.clamp(min=0)
    if normaliser == "softmax" and logits.requires_grad and logits.dtype in TINY and dtype != logits.dtype:
        picked = _WiderLogSoftmaxPicked.apply(logits, index, dtype)
    else:
        x = cast_flushing_grad(logits, dtype)
        if normaliser == "stablemax":
            s = torch.where(x >= 0, x + 1, 1 / (1 - x.clamp(max=0)))
            log_probs = s.log() - s.sum(-1, keepdim=True).log()
        else:
            log_probs = x.log_softmax(dim=-1)
        picked = log_probs.gather(-1, index[..., None])[..., 0]
    return picked if bool(scored.all()) else picked * scored


class _WiderLogSoftmaxPicked(torch.autograd.Function):
    """``log_softmax(logits.to(dtype))`` at the labels, for a ``dtype`` wider than the logits'
    (float64 for a float32 model), with the backward written out: the gradient into the logits is
    ``g (onehot - p)``, set to zero where it is below the logits' dtype's ``GRADIENT_FLOOR`` and
    then cast. It agrees with ``cast_flushing_grad`` followed by ``log_softmax`` and ``gather``
    to the last bit but in about one entry in 10^9 (tests/test_loss.py): over 7,500 canonical
    steps one gradient entry of ~3e9 differed by one ulp, presumably where log_softmax's own
    backward rounds an exp differently. It takes four passes over [batch, target, vocab]
    instead of seven (the gather's zero fill, log_softmax's backward, two comparisons, their
    and, a masked fill, the cast): ~1 ms less of a canonical step (AMD EPYC, 1 and 2 threads).

    logits [batch, target, vocab], labels [batch, target] (no IGNORE) -> [batch, target].
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        log_probs = logits.to(dtype).log_softmax(dim=-1)  # [batch, target, vocab]
        ctx.save_for_backward(log_probs, labels)
        ctx.source_dtype = logits.dtype
        return log_probs.gather(-1, labels[..., None])[..., 0]

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        log_probs, labels = ctx.saved_tensors
        floor, at = GRADIENT_FLOOR[ctx.source_dtype], labels[..., None]
        g = g[..., None]  # [batch, target, 1]
        grad = log_probs.exp()  # p
        p_label = grad.gather(-1, at)
        grad.mul_(-g)  # -g p: the gradient off the label
        if bool((g <= 0).all()):  # every entry >= 0 (a loss is -log p): one pass keeps those >= floor
            F.threshold(grad, math.nextafter(floor, 0.0), 0.0, inplace=True)  # x > the float below floor: x >= floor
        else:
            grad.masked_fill_(magnitude_below(grad, floor), 0.0)
        on_label = torch.addcmul(g, p_label, g, value=-1)  # g - g p(label), fused as in log_softmax's backward
        grad.scatter_(-1, at, on_label.masked_fill_(magnitude_below(on_label, floor), 0.0))
        return grad.to(ctx.source_dtype), None, None


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
