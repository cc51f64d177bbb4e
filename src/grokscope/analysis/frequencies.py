"""Key frequencies of a modular-arithmetic model, found three independent ways.

- ``embedding_frequency_norms``: Fourier norms of ``W_E`` (rows 0..p-1) per frequency, 1-D basis over x.
- ``neuron_clusters``: each MLP neuron's activation over the (x, y) grid in the 2-D basis; its
  frequency is the one whose terms (x-only, y-only and x*y products of that frequency) explain
  the most of its variance (everything but the const-const term); FVE is that fraction.
- ``logit_frequency_fit``: the logits (centred over z) projected on ``cos(w_k(x + s*y - z))``,
  s = +1 for addition and -1 for subtraction; one fitted coefficient per k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from grokscope.analysis.fourier import FourierBasis, fourier_2d, frequency_terms_2d


def embedding_frequency_norms(basis: FourierBasis, W_E: torch.Tensor) -> torch.Tensor:
    """Norm of ``W_E [p, d_model]`` in each frequency's rows of the 1-D basis: [p//2], k = 1..p//2."""
    return basis.frequency_norms(basis.transform(W_E, dim=0), dim=0)


@dataclass(frozen=True)
class NeuronClusters:
    """Each neuron's best frequency and how much of its variance that frequency explains."""

    frequency: torch.Tensor  # [neuron] int64, k in 1..p//2
    fve: torch.Tensor  # [neuron] float64, fraction of variance explained by that frequency's terms
    threshold: float  # a neuron is clustered if fve >= threshold

    @property
    def clustered(self) -> torch.Tensor:  # [neuron] bool
        return self.fve >= self.threshold

    def sizes(self) -> dict[int, int]:
        """Clustered neurons per frequency, largest cluster first."""
        ks, counts = self.frequency[self.clustered].unique(return_counts=True)
        return dict(sorted(zip(ks.tolist(), counts.tolist()), key=lambda kv: (-kv[1], kv[0])))


def frequency_variance_shares(basis: FourierBasis, grid: torch.Tensor) -> torch.Tensor:
    """Share of the variance over (x, y) of ``grid [p (x), p (y), ...]`` explained by each
    frequency's 2-D terms (``frequency_terms_2d``): [p//2, ...], k = 1..p//2. A constant (or
    dead) grid has no variance and gets share 0 everywhere."""
    energy = fourier_2d(basis, grid).pow(2)  # [basis, basis, ...]
    const = basis.index("const")
    variance = energy.sum((0, 1)) - energy[const, const]  # [...]
    per_k = torch.stack([energy[frequency_terms_2d(basis, k)].sum(0) for k in basis.frequencies])
    return torch.where(variance > 0, per_k / variance.clamp_min(1e-300), torch.zeros_like(per_k))


def neuron_clusters(basis: FourierBasis, activations: torch.Tensor, threshold: float = 0.85) -> NeuronClusters:
    """Cluster neurons by frequency from their activations over the grid, ``[p (x), p (y), neuron]``.

    A neuron with no variance (dead, or constant) gets FVE 0.
    """
    fve, best = frequency_variance_shares(basis, activations).max(0)
    return NeuronClusters(frequency=best + 1, fve=fve, threshold=threshold)


def logit_waves(p: int, k: int, sign: int = 1, phase: torch.Tensor | None = None) -> torch.Tensor:
    """``cos(w_k (x + sign*y - z))`` over the grid, or ``cos(w_k (phase - z))`` for a ``phase``
    [p (x), p (y)] (the values the task adds): [p (x), p (y), p (z)] float64."""
    r = torch.arange(p, dtype=torch.float64)
    xy = r[:, None] + sign * r[None, :] if phase is None else phase.double()
    return torch.cos(2 * math.pi * k / p * (xy[:, :, None] - r[None, None, :]))


@dataclass(frozen=True)
class LogitFit:
    """The logits' fit by ``sum_k alpha_k cos(w_k(x + s*y - z))`` over all k."""

    alpha: torch.Tensor  # [p//2] float64, fitted coefficient of each k = 1..p//2
    share: torch.Tensor  # [p//2] float64, share of the centred logits' variance each k explains
    sign: int
    p: int
    phase: torch.Tensor | None = None  # [p, p] the values the task adds, where not x + s*y

    def fve(self, frequencies: list[int]) -> float:
        """Fraction of the centred logits' variance explained by these frequencies' waves."""
        return float(sum(self.share[k - 1] for k in frequencies))

    def approximation(self, frequencies: list[int]) -> torch.Tensor:
        """The fitted logits ``sum_k alpha_k cos(w_k(x + s*y - z))`` over ``frequencies``: [x, y, z]."""
        p = self.p
        return sum((self.alpha[k - 1] * logit_waves(p, k, self.sign, self.phase) for k in frequencies),
                   torch.zeros(p, p, p, dtype=torch.float64))


def logit_frequency_fit(logits: torch.Tensor, sign: int = 1, phase: torch.Tensor | None = None) -> LogitFit:
    """Fit the logits ``[p (x), p (y), p (z)]`` (centred over z) by the waves of every frequency
    (over ``phase - z`` where a phase is given).

    The waves of distinct k are orthogonal over z, for any phase, so each ``alpha_k`` is a projection.
    """
    p = logits.shape[0]
    centred = logits.to(torch.float64) - logits.to(torch.float64).mean(-1, keepdim=True)
    total = centred.pow(2).sum()
    alphas, shares = [], []
    for k in range(1, p // 2 + 1):
        wave = logit_waves(p, k, sign, phase)
        norm2 = wave.pow(2).sum()
        alpha = (centred * wave).sum() / norm2
        alphas.append(alpha)
        shares.append(alpha.pow(2) * norm2 / total if total > 0 else torch.tensor(0.0, dtype=torch.float64))
    return LogitFit(alpha=torch.stack(alphas), share=torch.stack(shares), sign=sign, p=p, phase=phase)
