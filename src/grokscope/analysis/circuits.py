"""Circuit-level evidence: W_L in the Fourier basis, neuron-level restriction, attention sparsity, the embedding circle."""

from __future__ import annotations

import torch

from grokscope.analysis.fourier import FourierBasis, fourier_2d, frequency_terms_2d
from grokscope.analysis.frequencies import frequency_variance_shares
from grokscope.analysis.modular_records import AttentionSummary


def W_L(W_out: torch.Tensor, W_U: torch.Tensor) -> torch.Tensor:
    """The neuron-to-logit map ``W_L = W_out @ W_U``: [neuron, z]."""
    return W_out.double() @ W_U.double()


def W_L_frequency_norms(basis: FourierBasis, W_L_: torch.Tensor) -> torch.Tensor:
    """Norm of ``W_L`` in each output frequency (1-D basis over z): [p//2]; columns must be the p outputs."""
    return basis.frequency_norms(basis.transform(W_L_, dim=1), dim=1)


def frequency_terms_mask(basis: FourierBasis, frequencies: list[int], keep_const: bool = True) -> torch.Tensor:
    """[basis, basis] mask of the 2-D terms of ``frequencies`` (plus const-const if ``keep_const``)."""
    mask = torch.zeros(len(basis.labels), len(basis.labels), dtype=torch.bool)
    for k in frequencies:
        mask |= frequency_terms_2d(basis, k)
    const = basis.index("const")
    mask[const, const] = keep_const
    return mask


def restrict_neurons(basis: FourierBasis, neurons: torch.Tensor, frequencies: list[int]) -> torch.Tensor:
    """Each neuron's activation over the grid [x, y, neuron] projected on the const term plus the
    2-D terms of ``frequencies`` (standard basis in and out).

    Only the 1-D rows of ``frequencies`` (and const) are transformed: [r, p] @ grid @ [p, r].
    """
    rows = [basis.index("const")] + [i for k in frequencies for i in basis.rows(k)]
    B = basis.matrix[rows]  # [r, p]
    coefficients = torch.einsum("ix,xyn,jy->ijn", B, neurons.double(), B)  # [r, r, neuron]
    mask = frequency_terms_mask(basis, frequencies)[rows][:, rows]  # [r, r]
    return torch.einsum("ix,ijn,jy->xyn", B, coefficients * mask[..., None], B)


def single_frequency_neurons(basis: FourierBasis, neurons: torch.Tensor, frequency_of_neuron: torch.Tensor) -> torch.Tensor:
    """Replace each neuron by its approximation from its own frequency's terms (plus const): [x, y, neuron]."""
    coefficients = fourier_2d(basis, neurons)  # [basis, basis, neuron]
    masks = torch.stack([frequency_terms_mask(basis, [k]) for k in basis.frequencies])  # [k, basis, basis]
    per_neuron = masks[frequency_of_neuron - 1].permute(1, 2, 0)  # [basis, basis, neuron]
    return basis.inverse(basis.inverse(coefficients * per_neuron, dim=0), dim=1)


def logits_from_neurons(resid_mid: torch.Tensor, neurons: torch.Tensor, W_out, b_out, W_U, b_U) -> torch.Tensor:
    """Logits [x, y, z] of a 1-block model from its residual before the MLP and (edited) neuron
    activations: ``(resid_mid + neurons @ W_out + b_out) @ W_U + b_U``."""
    resid = resid_mid + neurons @ W_out.double() + b_out.double()
    return resid @ W_U.double() + b_U.double()


def attention_summary(basis: FourierBasis, pattern: torch.Tensor) -> AttentionSummary:
    """Summarise attention ``pattern [x, y, head, key]`` at ``=``: the mean per position, and for
    the attention paid to x, the frequency that explains most of its variance over the grid."""
    share, best = frequency_variance_shares(basis, pattern[..., 0]).max(0)  # of the attention to x: [head]
    return AttentionSummary(
        mean_to_position=pattern.mean((0, 1)).tolist(),
        top_frequency=(best + 1).tolist(),
        fve_top_frequency=share.tolist(),
    )


def embedding_circle(basis: FourierBasis, W_E: torch.Tensor, k: int) -> torch.Tensor:
    """``W_E [p, d_model]`` projected on the two directions of frequency k it uses: [p, 2].

    The directions are the embedding's components along ``cos k`` and ``sin k`` (1-D basis);
    for a model using k, the p points lie on a circle, in order x * k mod p.
    """
    coefficients = basis.transform(W_E, dim=0)  # [basis, d_model]
    rows = basis.rows(k)
    directions = coefficients[rows]  # [2 (or 1), d_model]
    q, _ = torch.linalg.qr(directions.T)  # [d_model, 2]: orthonormal span of the two directions
    return W_E.double() @ q


def embedding_pca(W_E: torch.Tensor, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal components of the centred ``W_E [p, d_model]``: (projections [p, n], variance ratios [n])."""
    centred = W_E.double() - W_E.double().mean(0)
    U, S, _ = torch.linalg.svd(centred, full_matrices=False)
    ratio = S.pow(2) / S.pow(2).sum()
    return U[:, :n] * S[:n], ratio[:n]
