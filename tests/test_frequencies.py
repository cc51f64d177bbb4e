import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grokscope.analysis.fourier import FourierBasis
from grokscope.analysis.frequencies import (
    embedding_frequency_norms, logit_frequency_fit, logit_waves, neuron_clusters,
)


def planted_logits(p, amplitudes, sign=1, noise=0.0, seed=0):
    logits = sum(a * logit_waves(p, k, sign) for k, a in amplitudes.items())
    g = torch.Generator().manual_seed(seed)
    logits = logits + 5.0 * torch.randn(p, p, 1, generator=g, dtype=torch.float64)  # per-(x, y) offsets
    return logits + noise * torch.randn(p, p, p, generator=g, dtype=torch.float64)


@settings(max_examples=15, deadline=None)
@given(p=st.sampled_from([23, 31, 59, 113]), data=st.data())
def test_logit_fit_recovers_planted_frequencies(p, data):
    ks = data.draw(st.lists(st.integers(1, (p - 1) // 2), min_size=1, max_size=5, unique=True))
    amps = {k: data.draw(st.floats(0.5, 10)) for k in ks}
    sign = data.draw(st.sampled_from([1, -1]))
    fit = logit_frequency_fit(planted_logits(p, amps, sign), sign=sign)
    found = {k for k in range(1, p // 2 + 1) if fit.share[k - 1] > 1e-9}
    assert found == set(ks)
    for k, a in amps.items():
        assert fit.alpha[k - 1].item() == pytest.approx(a, rel=1e-9)
    assert fit.fve(ks) == pytest.approx(1.0, abs=1e-9)
    centred = planted_logits(p, amps, sign)
    centred = centred - centred.mean(-1, keepdim=True)
    torch.testing.assert_close(fit.approximation(ks), centred)


def test_logit_fit_sign_distinguishes_addition_from_subtraction():
    p = 31
    logits = planted_logits(p, {3: 2.0, 11: 1.0}, sign=-1)
    assert logit_frequency_fit(logits, sign=-1).fve([3, 11]) == pytest.approx(1.0)
    assert logit_frequency_fit(logits, sign=1).fve(list(range(1, 16))) < 0.05


def test_logit_fit_with_noise_explains_the_planted_share():
    p = 59
    clean = planted_logits(p, {7: 3.0, 20: 2.0}, noise=0.0)
    noisy = planted_logits(p, {7: 3.0, 20: 2.0}, noise=1.0)
    fit = logit_frequency_fit(noisy)
    signal = (clean - clean.mean(-1, keepdim=True)).pow(2).sum()
    total = (noisy - noisy.mean(-1, keepdim=True)).pow(2).sum()
    assert fit.fve([7, 20]) == pytest.approx((signal / total).item(), rel=0.05)


def test_embedding_norms_name_the_planted_frequencies():
    p, d = 113, 32
    basis = FourierBasis(p)
    g = torch.Generator().manual_seed(1)
    W_E = 0.01 * torch.randn(p, d, generator=g, dtype=torch.float64)
    x = torch.arange(p, dtype=torch.float64)
    for k in (14, 35, 41, 42, 52):
        w = 2 * math.pi * k / p
        W_E += torch.cos(w * x)[:, None] * torch.randn(d, generator=g, dtype=torch.float64)
        W_E += torch.sin(w * x)[:, None] * torch.randn(d, generator=g, dtype=torch.float64)
    norms = embedding_frequency_norms(basis, W_E)
    assert set((norms.argsort(descending=True)[:5] + 1).tolist()) == {14, 35, 41, 42, 52}


def test_neuron_clusters_from_planted_activations():
    """Neurons built as relu of single-frequency waves in x and y cluster at that frequency."""
    p = 59
    g = torch.Generator().manual_seed(2)
    x = torch.arange(p, dtype=torch.float64)
    planted = [5] * 10 + [17] * 6 + [29] * 4  # 29 = p // 2 (odd p: still has sin)
    acts = []
    for k in planted:
        w = 2 * math.pi * k / p
        phase_x, phase_y = torch.rand(2, generator=g, dtype=torch.float64) * 2 * math.pi
        a = torch.cos(w * x + phase_x)[:, None] * torch.cos(w * x + phase_y)[None, :]
        acts.append(a + 0.5 * torch.cos(w * x + phase_x)[:, None])
    acts.append(torch.randn(p, p, generator=g, dtype=torch.float64))  # an unclustered neuron
    acts.append(torch.zeros(p, p, dtype=torch.float64))  # a dead neuron
    clusters = neuron_clusters(FourierBasis(p), torch.stack(acts, -1))
    assert clusters.frequency[:20].tolist() == planted
    assert bool((clusters.fve[:20] > 0.999).all())
    assert clusters.fve[20] < 0.2 and clusters.fve[21] == 0 and not clusters.clustered[20:].any()
    assert clusters.sizes() == {5: 10, 17: 6, 29: 4}


def test_neuron_clusters_even_p():
    p = 16
    x = torch.arange(p, dtype=torch.float64)
    acts = torch.cos(math.pi * x)[:, None] * torch.cos(math.pi * x)[None, :]  # frequency p/2
    clusters = neuron_clusters(FourierBasis(p), acts[..., None])
    assert clusters.frequency.tolist() == [8] and clusters.fve.item() == pytest.approx(1.0)
