"""Progress measures of Nanda et al. (2023), as pure functions of the logits over the input grid.

All logits here are ``[p (x), p (y), p (z)]``; ``sign`` is +1 for addition (waves in x + y)
and -1 for subtraction (x - y). The directions of frequency k in (x, y) space are
``cos(w_k(x + s*y))`` and ``sin(w_k(x + s*y))``, normalised over the p*p grid. A ``phase``
[p, p] replaces x + s*y where the task adds other values of x and y (pow_sum with a power that
is not a bijection: ``value_grid.ValueGrid.phase``); their directions are then orthonormalised.

- ``excluded_loss``: remove those directions of the given frequencies from every output's
  logits, then take the loss (the paper evaluates it on the training pairs).
- ``restricted_loss`` (the paper's "trig loss"): keep only each output's mean over the grid
  plus those directions, then take the loss.
"""

from __future__ import annotations

import math

import torch

from grokscope.analysis.value_grid import orthonormal_span


def xy_waves(p: int, frequencies: list[int], sign: int = 1, phase: torch.Tensor | None = None) -> torch.Tensor:
    """Orthonormal ``cos/sin(w_k(x + s*y))`` (or of ``w_k phase``) over the grid for each k:
    [n_waves, p, p] float64.

    (For even p, ``sin(pi(x + y))`` vanishes and is left out.) Over x + s*y the waves are
    orthogonal; over another phase only their span is used, centred and orthonormalised.
    """
    if phase is not None:
        w = [f(2 * math.pi * k / p * phase.double()) for k in frequencies for f in (torch.cos, torch.sin)]
        if not w:
            return torch.zeros(0, p, p, dtype=torch.float64)
        design = torch.stack(w, -1).reshape(p * p, -1)  # [cell, wave]
        return orthonormal_span(design - design.mean(0)).T.reshape(-1, p, p)  # centred, as x + s*y's are
    r = torch.arange(p, dtype=torch.float64)
    phase = r[:, None] + sign * r[None, :]
    waves = []
    for k in frequencies:
        w = 2 * math.pi * k / p
        for wave in (torch.cos(w * phase), torch.sin(w * phase)):
            norm = wave.norm()
            if norm > 1e-9 * p:
                waves.append(wave / norm)
    return torch.stack(waves) if waves else torch.zeros(0, p, p, dtype=torch.float64)


def project(logits: torch.Tensor, waves: torch.Tensor) -> torch.Tensor:
    """Component of each output's logits [p, p, z] along orthonormal waves [n, p, p]: [p, p, z]."""
    coefficients = torch.einsum("nxy,xyz->nz", waves, logits)
    return torch.einsum("nxy,nz->xyz", waves, coefficients)


def grid_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean cross-entropy (float64) over the grid cells where ``mask`` is True (all if None).

    logits [p, p, z], labels [p, p] int64, mask [p, p] bool.
    """
    log_probs = logits.to(torch.float64).log_softmax(-1)
    nll = -log_probs.gather(-1, labels[..., None])[..., 0]  # [p, p]
    return float(nll[mask].mean() if mask is not None else nll.mean())


def excluded_logits(logits: torch.Tensor, frequencies: list[int], sign: int = 1, phase=None) -> torch.Tensor:
    """Logits with the (x, y) directions of ``frequencies`` removed: [p, p, z] float64."""
    logits = logits.to(torch.float64)
    return logits - project(logits, xy_waves(logits.shape[0], frequencies, sign, phase))


def restricted_logits(logits: torch.Tensor, frequencies: list[int], sign: int = 1, phase=None) -> torch.Tensor:
    """Each output's grid mean plus the (x, y) directions of ``frequencies``: [p, p, z] float64."""
    logits = logits.to(torch.float64)
    mean = logits.mean((0, 1), keepdim=True)
    return mean + project(logits, xy_waves(logits.shape[0], frequencies, sign, phase))


def excluded_loss(logits, labels, mask, frequencies: list[int], sign: int = 1, phase=None) -> float:
    """Loss on ``mask`` after removing the key frequencies' directions from the logits."""
    return grid_loss(excluded_logits(logits, frequencies, sign, phase), labels, mask)


def restricted_loss(logits, labels, mask, frequencies: list[int], sign: int = 1, phase=None) -> float:
    """Loss on ``mask`` of the logits restricted to the key frequencies' directions."""
    return grid_loss(restricted_logits(logits, frequencies, sign, phase), labels, mask)


def softmax_collapse_fraction(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of examples whose correct-class float32 softmax probability is exactly 1.

    These examples get exactly zero loss and gradient under a float32 ``log_softmax``: the
    precision problem behind the paper's slingshot spikes. logits [..., z], labels [...].
    """
    probs = logits.to(torch.float32).softmax(-1)
    correct = probs.gather(-1, labels[..., None])[..., 0]
    return float((correct == 1.0).float().mean())


def gini(values: torch.Tensor) -> float:
    """Gini coefficient of non-negative values (0: all equal; near 1: one value holds everything)."""
    v = values.to(torch.float64).flatten().sort().values
    n = v.numel()
    if n == 0 or v.sum() <= 0:
        return 0.0
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    return float((2 * (ranks * v).sum() / (n * v.sum())) - (n + 1) / n)
