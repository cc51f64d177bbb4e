"""Fourier structure of W_E over the values of a power that is not a bijection mod p.

In (x^a + y^b) mod p the label is u + v with u = x^a, v = y^b. When the power is a bijection the
analysis simply relabels the inputs (``ModularTask.natural_coordinates``). When it is not (y^4 mod
113 takes 29 values), the embedding can still map each token t straight to waves of t^b: then
``W_E[t] = f(t^b)``, a function of the power's values, with repeats.

With repeats the waves are no longer an orthonormal transform: over m distinct values only m
coefficients can be told apart, and different frequencies alias. So both questions are asked
by least squares over the tokens:

- is W_E a function of t^e at all? The share of its variance explained by the best function of
  the values (each value's mean row): ``fve``;
- how sparse is it in waves over them? Greedy forward selection of frequencies, each adding
  ``cos(w_k t^e)`` and ``sin(w_k t^e)`` to a joint least-squares fit, until the fit explains
  90 % of W_E's variance: the fewer frequencies that takes, the sparser. The same count over the
  raw token t (where the waves are orthonormal, so the greedy order is by Fourier energy) is the
  comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

EXPLAINED = 0.9  # the share of W_E's variance the greedy fit must reach


@dataclass(frozen=True)
class WaveSelection:
    frequencies: list[int]  # the frequencies chosen, in order
    explained: list[float]  # the fit's share of W_E's variance after each
    n_values: int  # distinct values of the coordinate
    fve: float  # share of W_E's variance explained by the best function of the values

    @property
    def needed(self) -> int | None:
        """Frequencies needed to explain ``EXPLAINED`` of W_E's variance (None: never reached)."""
        return next((i + 1 for i, e in enumerate(self.explained) if e >= EXPLAINED), None)


def _explained(design: torch.Tensor, centred: torch.Tensor, total: float) -> float:
    coefficients = torch.linalg.lstsq(design, centred, driver="gelsd").solution
    return 1.0 - float((centred - design @ coefficients).pow(2).sum()) / total


def select_waves(rows: torch.Tensor, values: torch.Tensor, p: int) -> WaveSelection:
    """Greedy least-squares selection of frequencies k = 1..p//2 of waves over ``values``
    ``[token]`` (in Z_p) that explain ``rows [token, d]``, until 90 % is explained or nothing
    more can be."""
    W = rows.double()
    centred = W - W.mean(0, keepdim=True)
    total = float(centred.pow(2).sum().clamp_min(1e-300))
    v = values.double()
    waves = {k: torch.stack([torch.cos(2 * math.pi * k * v / p), torch.sin(2 * math.pi * k * v / p)], dim=1)
             for k in range(1, p // 2 + 1)}  # [token, 2] each
    means = torch.zeros(p, W.shape[1], dtype=torch.float64).index_add_(0, values, centred)
    counts = torch.bincount(values, minlength=p).clamp_min(1).double()[:, None]
    fve = 1.0 - float((centred - (means / counts)[values]).pow(2).sum()) / total
    chosen, explained = [], []
    design = torch.ones(len(values), 1, dtype=torch.float64)
    while waves and (not explained or explained[-1] < EXPLAINED):
        scores = {k: _explained(torch.cat([design, w], dim=1), centred, total) for k, w in waves.items()}
        best = max(scores, key=scores.get)
        if explained and scores[best] <= explained[-1] + 1e-9:
            break  # nothing left to explain in these waves
        chosen.append(best)
        explained.append(scores[best])
        design = torch.cat([design, waves.pop(best)], dim=1)
    return WaveSelection(frequencies=chosen, explained=explained, n_values=int(values.unique().numel()), fve=fve)
