import math

import pytest
import torch

from grokscope.analysis.frequencies import logit_waves
from grokscope.analysis.progress import (
    excluded_loss, gini, grid_loss, restricted_loss, softmax_collapse_fraction, xy_waves,
)


def labels_grid(p, sign=1):
    r = torch.arange(p)
    return (r[:, None] + sign * r[None, :]) % p


def generalising_logits(p, freqs, scale=8.0, sign=1):
    """The Fourier-multiplication algorithm's logits: sum_k cos(w_k(x + s*y - z))."""
    return scale * sum(logit_waves(p, k, sign) for k in freqs)


def memorising_logits(p, mask, labels, scale=12.0, seed=0):
    """A lookup table: a high logit on the right answer for training pairs only, noise elsewhere."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(p, p, p, generator=g, dtype=torch.float64)
    table[mask] += scale * torch.nn.functional.one_hot(labels[mask], p).double()
    return table


@pytest.mark.parametrize("sign", [1, -1])
def test_xy_waves_are_orthonormal(sign):
    W = xy_waves(31, [1, 4, 15], sign).reshape(6, -1)
    torch.testing.assert_close(W @ W.T, torch.eye(6, dtype=torch.float64), atol=1e-12, rtol=0)
    assert xy_waves(16, [8]).shape[0] == 1  # sin(pi(x+y)) vanishes for even p


@pytest.mark.parametrize("sign", [1, -1])
def test_planted_generalising_circuit(sign):
    """Removing a planted frequency raises the excluded loss; restricting keeps the full loss."""
    p, freqs = 31, [3, 8, 11]
    g = torch.Generator().manual_seed(0)
    labels = labels_grid(p, sign)
    mask = torch.rand(p, p, generator=g) < 0.3
    logits = generalising_logits(p, freqs, sign=sign)
    full = grid_loss(logits, labels, mask)
    assert full < 0.01
    assert restricted_loss(logits, labels, mask, freqs, sign) == pytest.approx(full, rel=1e-9)
    assert restricted_loss(logits, labels, ~mask, freqs, sign) == pytest.approx(grid_loss(logits, labels, ~mask), rel=1e-9)
    one_removed = excluded_loss(logits, labels, mask, [8], sign)
    all_removed = excluded_loss(logits, labels, mask, freqs, sign)
    assert full < one_removed < all_removed
    assert all_removed == pytest.approx(math.log(p), rel=1e-6)  # nothing left: uniform
    assert excluded_loss(logits, labels, mask, [5], sign) == pytest.approx(full, rel=1e-9)  # not planted


def test_planted_memorisation_is_not_fourier():
    """A lookup table's train loss survives exclusion; restricting it to three frequencies
    keeps only their share of the table's spikes, so its restricted loss is far above its loss."""
    p = 31
    g = torch.Generator().manual_seed(1)
    labels = labels_grid(p)
    mask = torch.rand(p, p, generator=g) < 0.3
    logits = memorising_logits(p, mask, labels)
    full = grid_loss(logits, labels, mask)
    assert excluded_loss(logits, labels, mask, [3, 8, 11]) < full + 0.5
    assert restricted_loss(logits, labels, mask, [3, 8, 11]) > max(0.5 * math.log(p), 10 * full)


def test_softmax_collapse_and_gini():
    logits = torch.tensor([[30.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    assert softmax_collapse_fraction(logits, torch.tensor([0, 0])) == 0.5
    assert gini(torch.ones(10)) == pytest.approx(0.0)
    assert gini(torch.tensor([0.0] * 9 + [1.0])) == pytest.approx(0.9)


def test_restrict_neurons_matches_the_full_2d_projection():
    from grokscope.analysis.circuits import frequency_terms_mask, restrict_neurons
    from grokscope.analysis.fourier import FourierBasis, fourier_2d

    basis = FourierBasis(23)
    neurons = torch.randn(23, 23, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    coefficients = fourier_2d(basis, neurons) * frequency_terms_mask(basis, [2, 9])[..., None]
    full = basis.inverse(basis.inverse(coefficients, dim=0), dim=1)
    torch.testing.assert_close(restrict_neurons(basis, neurons, [2, 9]), full)
