"""The loss's written-out float64 backward against the composition it replaces.

``log_probs_of_labels`` with a float64 loss on float32 logits runs ``_WiderLogSoftmaxPicked``;
the reference is what it replaced: ``cast_flushing_grad`` (the cast, with its flushed
gradient), then ``log_softmax`` and ``gather``, each with PyTorch's own backward.
"""

import math

import pytest
import torch

from grokscope.tasks.base import IGNORE
from grokscope.training.loop import training_forward
from grokscope.training.loss import log_probs_of_labels, scored_mean_loss
from grokscope.training.subnormals import GRADIENT_FLOOR, cast_flushing_grad
from test_subnormals import late_state, n_subnormal

TINY = torch.finfo(torch.float32).tiny


def reference_log_probs(logits, labels):
    picked = cast_flushing_grad(logits, torch.float64).log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return picked * (labels != IGNORE)


def logits_grad(log_probs, logits, labels, weight=None):
    """The gradient into ``logits`` of the mean loss (or of sum(weight * log p), if given)."""
    x = logits.detach().requires_grad_()
    picked = log_probs(x, labels)
    (scored_mean_loss(picked, labels) if weight is None else (weight * picked).sum()).backward()
    return picked.detach(), x.grad


def assert_same_gradient(new, ref):
    """Within one float32 rounding everywhere, and the same bits but in a handful of entries
    (PyTorch's own backward may round an exp differently: one entry in ~3e9 over a canonical run
    on an AMD EPYC, 2 of the 17,856 entries here on an Intel Xeon, whose vectorised exp differs)."""
    torch.testing.assert_close(new, ref, rtol=2 ** -23, atol=0)
    assert (new != ref).sum() <= max(1, new.numel() // 1_000)


@pytest.mark.parametrize("scale", [0.3, 1.0, 3.0])
def test_real_late_logits_get_the_reference_gradient(grokked, scale):
    """A grokked run's logits (scaled up: margins where p falls far below float32's tiny)."""
    run, _ = grokked
    model, _, cfg, _, (tokens, labels, query) = late_state(run)
    with torch.no_grad():
        logits = training_forward(model, cfg)(tokens, query) * scale  # [batch, 1, vocab]
    picked, grad = logits_grad(log_probs_of_labels, logits, labels)
    ref_picked, ref_grad = logits_grad(reference_log_probs, logits, labels)
    assert torch.equal(picked, ref_picked)
    assert_same_gradient(grad, ref_grad)
    assert n_subnormal(grad) == 0
    if scale == 3.0:  # the hard case is present: the plain cast of the float64 gradient makes subnormals
        x = logits.detach().double().requires_grad_()
        scored_mean_loss(x.log_softmax(-1).gather(-1, labels[..., None])[..., 0], labels).backward()
        assert n_subnormal(x.grad.float()) > 0


def test_ignored_targets_multiple_targets_and_a_gradient_of_either_sign():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 3, 17, generator=gen) * torch.tensor([1.0, 40.0, 120.0])[:, None]  # [batch, target, vocab]
    labels = torch.randint(17, (64, 3), generator=gen)
    labels[::5, 1] = IGNORE
    for weight in (None, torch.randn(64, 3, generator=gen)):  # the mean loss (g <= 0), then mixed signs
        picked, grad = logits_grad(log_probs_of_labels, logits, labels, weight)
        ref_picked, ref_grad = logits_grad(reference_log_probs, logits, labels, weight)
        assert torch.equal(picked, ref_picked)
        assert_same_gradient(grad, ref_grad)
        assert n_subnormal(grad) == 0
        assert (grad[labels == IGNORE] == 0).all()


def test_the_gradient_is_the_softmax_minus_the_label_in_float64():
    """Known answer: d(mean -log p(label)) / d logits = (p - onehot) / n, zero below the floor (2^-100)."""
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(50, 1, 11, generator=gen) * 30
    labels = torch.randint(11, (50, 1), generator=gen)
    _, grad = logits_grad(log_probs_of_labels, logits, labels)
    p = logits.double().softmax(-1)
    expected = (p - torch.nn.functional.one_hot(labels, 11).double()) / len(logits)
    assert ((expected.abs() < TINY) & (expected != 0)).any() and ((expected.abs() < 2.0 ** -100) & (expected.abs() > TINY)).any()
    expected[expected.abs() < GRADIENT_FLOOR[torch.float32]] = 0.0
    torch.testing.assert_close(grad, expected.float(), rtol=1e-6, atol=0)
    assert math.isclose(float(-log_probs_of_labels(logits, labels).mean()),
                        float(-p.log().gather(-1, labels[..., None]).mean()), rel_tol=1e-12)
