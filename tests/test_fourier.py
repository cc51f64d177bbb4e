import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grokscope.analysis.fourier import FourierBasis, fourier_2d, frequency_terms_2d


@pytest.mark.parametrize("p", range(2, 129))
def test_basis_is_orthonormal_for_every_p(p):
    basis = FourierBasis(p)
    B = basis.matrix
    assert B.shape == (p, p) and len(basis.labels) == p
    torch.testing.assert_close(B @ B.T, torch.eye(p, dtype=torch.float64), rtol=0, atol=1e-10)
    assert len(set(basis.labels)) == p
    assert list(basis.frequencies) == list(range(1, p // 2 + 1))  # p//2 itself included


@settings(max_examples=30, deadline=None)
@given(p=st.integers(2, 64), seed=st.integers(0, 1000))
def test_transform_round_trips(p, seed):
    basis = FourierBasis(p)
    values = torch.randn(3, p, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    coeffs = basis.transform(values, dim=1)
    torch.testing.assert_close(basis.inverse(coeffs, dim=1), values)
    torch.testing.assert_close(coeffs.norm(), values.norm())  # Parseval


def test_labels_and_lookups():
    odd, even = FourierBasis(7), FourierBasis(8)
    assert odd.labels == ("const", "cos 1", "sin 1", "cos 2", "sin 2", "cos 3", "sin 3")
    assert even.labels[-1] == "cos 4" and "sin 4" not in even.labels
    assert odd.rows(2) == [odd.index("cos 2"), odd.index("sin 2")] and even.rows(4) == [7]
    with pytest.raises(KeyError, match="sin 4"):
        even.index("sin 4")
    x = torch.arange(113, dtype=torch.float64)
    basis = FourierBasis(113)
    wave = torch.cos(2 * math.pi * 14 * x / 113)
    coeffs = basis.transform(wave)
    assert coeffs.abs().argmax().item() == basis.index("cos 14")


def test_frequency_norms_of_a_planted_embedding():
    """An embedding built from chosen frequencies has exactly those Fourier norms."""
    p, d = 59, 16
    basis = FourierBasis(p)
    g = torch.Generator().manual_seed(0)
    planted = {4: 3.0, 17: 1.5, 29: 0.5}
    W_E = torch.zeros(p, d, dtype=torch.float64)
    for k, norm in planted.items():
        direction = torch.randn(len(basis.rows(k)), d, generator=g, dtype=torch.float64)
        direction *= norm / direction.norm()
        W_E += basis.matrix[basis.rows(k)].T @ direction
    norms = basis.frequency_norms(basis.transform(W_E, dim=0))
    expected = torch.zeros(p // 2, dtype=torch.float64)
    for k, norm in planted.items():
        expected[k - 1] = norm
    torch.testing.assert_close(norms, expected, rtol=0, atol=1e-10)


def test_2d_terms_of_a_product_wave():
    p = 31
    basis = FourierBasis(p)
    x = torch.arange(p, dtype=torch.float64)
    w = 2 * math.pi * 5 / p
    grid = torch.cos(w * x)[:, None] * torch.sin(w * x)[None, :] + 0.3 * torch.cos(w * x)[:, None]
    C = fourier_2d(basis, grid)
    mask = frequency_terms_2d(basis, 5)
    assert mask.sum() == 8
    torch.testing.assert_close(C[~mask].norm(), torch.tensor(0.0, dtype=torch.float64), atol=1e-10, rtol=0)
    assert C[basis.index("cos 5"), basis.index("sin 5")] == pytest.approx(p / 2, rel=1e-10)


@pytest.mark.parametrize("p", [7, 12, 31, 113])
def test_basis_agrees_with_torch_fft(p):
    """Coefficients are the real and imaginary parts of the DFT, scaled: for k < p/2,
    cos k = sqrt(2/p) Re F[k] and sin k = -sqrt(2/p) Im F[k]; const = F[0]/sqrt(p); for even p,
    cos p/2 = F[p/2]/sqrt(p)."""
    basis = FourierBasis(p)
    values = torch.randn(p, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(p))
    ours = basis.transform(values)
    F = torch.fft.fft(values, dim=0)  # [p, 3] complex
    torch.testing.assert_close(ours[basis.index("const")], F[0].real / math.sqrt(p))
    for k in basis.frequencies:
        if 2 * k == p:
            torch.testing.assert_close(ours[basis.index(f"cos {k}")], F[k].real / math.sqrt(p))
        else:
            torch.testing.assert_close(ours[basis.index(f"cos {k}")], F[k].real * math.sqrt(2 / p))
            torch.testing.assert_close(ours[basis.index(f"sin {k}")], -F[k].imag * math.sqrt(2 / p))
