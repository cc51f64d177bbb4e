"""The (x, y) grid's Fourier terms by least squares, for pow_sum with a power that is not a bijection.

In (x^a + y^b) mod p the label is u + v with u = x^a, v = y^b. When both powers are bijections
mod p the analysis relabels the inputs and works in the orthonormal 2-D Fourier basis over
(u, v) (``ModularTask.natural_coordinates``). When one is not (y^4 mod 113 takes 29 values) the
algorithm can still run on the values: embed waves of v, multiply, read ``cos(w(u + v - z))``.
Over the grid, though, the waves ``cos(w v(y))`` are neither orthogonal nor independent (the
29 values carry at most 29 functions of y, and frequencies alias). So each frequency's 2-D
terms over the grid (``cos/sin(w u)``, ``cos/sin(w v)`` and their four products) are an explicit
design, orthonormalised by SVD, and a grid is projected on their span. With u = x and v = y this
is the 2-D Fourier basis's ``frequency_terms_2d`` exactly (tests check it against
``FourierBasis``).

The logits' waves ``cos(w(u + v - z))`` need none of this: summed over z they stay orthogonal
for every (u, v), so their fit is the projection of ``frequencies.logit_frequency_fit`` with
``phase = u + v``.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import torch

from grokscope.analysis.frequencies import NeuronClusters
from grokscope.analysis.modular_records import PowerCoset
from grokscope.tasks.modular import power_values

RANK_TOL = 1e-12  # Gram eigenvalues below this share of the largest are aliases, not new terms


def orthonormal_span(design: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the columns of ``design [n, m]``: [n, rank] float64.

    From the eigenvectors of the small Gram matrix ``D^T D`` (m x m) rather than an SVD of the
    tall design: the neuron shares of a p = 113 run took 6.3 s this way against 16 s (same
    contended 2-core machine). Aliased waves are exact repeats (eigenvalue ~1e-16 of the
    largest), far below ``RANK_TOL``."""
    D = design.double()
    eigenvalues, V = torch.linalg.eigh(D.T @ D)  # ascending
    keep = eigenvalues > RANK_TOL * eigenvalues[-1].clamp_min(1e-300) if len(eigenvalues) else eigenvalues > 0
    return D @ (V[:, keep] / eigenvalues[keep].sqrt())


@dataclass(frozen=True)
class ValueGrid:
    """The p x p grid of inputs (x, y), with the values the task adds: the label is
    ``u[x] + v[y] mod p``."""

    p: int
    u: torch.Tensor  # [p] int64, the value x contributes (x^a mod p)
    v: torch.Tensor  # [p] int64, the value y contributes (y^b mod p)

    def phase(self) -> torch.Tensor:
        """``u[x] + v[y]`` over the grid: [p (x), p (y)] float64 (the waves' argument, in 2 pi / p)."""
        return self.u.double()[:, None] + self.v.double()[None, :]

    @cached_property
    def _bijective(self) -> tuple[bool, bool]:
        """Whether u, and whether v, is a bijection of the tokens."""
        return self.u.unique().numel() == self.p, self.v.unique().numel() == self.p

    def bijective_power(self) -> tuple[str, torch.Tensor] | None:
        """The first of u, v that is a bijection of the tokens, with the tokens in the order of its
        values (``order[w]`` is the token whose power is w): ("u", order) or ("v", order); None if neither."""
        for name, values, bijective in zip(("u", "v"), (self.u, self.v), self._bijective):
            if bijective:
                return name, torch.argsort(values)
        return None

    def _terms(self, k: int) -> torch.Tensor:
        """Frequency k's 2-D terms over the grid, flattened: [p*p, 8] float64 (x-only, y-only, products)."""
        w = 2 * math.pi * k / self.p
        on_x = torch.stack([torch.cos(w * self.u.double()), torch.sin(w * self.u.double())], 1)  # [x, 2]
        on_y = torch.stack([torch.cos(w * self.v.double()), torch.sin(w * self.v.double())], 1)  # [y, 2]
        ones = torch.ones(self.p, 1, dtype=torch.float64)
        columns = [on_x[:, None, i] * ones.T for i in range(2)] + [ones * on_y[None, :, j] for j in range(2)] + \
                  [on_x[:, None, i] * on_y[None, :, j] for i in range(2) for j in range(2)]
        return torch.stack(columns, -1).reshape(self.p * self.p, 8)

    def span(self, frequencies: list[int], const: bool = True) -> torch.Tensor:
        """Orthonormal basis of the const function (if ``const``) and ``frequencies``' 2-D terms: [p*p, r]."""
        parts = ([torch.ones(self.p * self.p, 1, dtype=torch.float64)] if const else []) + \
                [self._terms(k) for k in frequencies]
        if not parts:
            return torch.zeros(self.p * self.p, 0, dtype=torch.float64)
        return orthonormal_span(torch.cat(parts, 1))

    def _project(self, grid: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
        """``grid [p, p, ...]`` projected on the span of Q's columns: same shape, float64."""
        flat = grid.double().reshape(self.p * self.p, -1)
        return (Q @ (Q.T @ flat)).reshape(grid.shape)

    def restrict(self, grid: torch.Tensor, frequencies: list[int]) -> torch.Tensor:
        """``grid [x, y, ...]`` on the const term plus the 2-D terms of ``frequencies``."""
        return self._project(grid, self.span(frequencies))

    def without(self, grid: torch.Tensor, k: int) -> torch.Tensor:
        """``grid [x, y, ...]`` with frequency k's terms removed (the part of them orthogonal to
        the const term: the grid's mean stays)."""
        return grid.double() - self._project(grid, self.span([k])) + grid.double().mean((0, 1), keepdim=True)

    def single_frequency(self, grid: torch.Tensor, frequency_of_channel: torch.Tensor) -> torch.Tensor:
        """Each channel of ``grid [x, y, channel]`` restricted to its own frequency's terms (plus const)."""
        out = torch.empty(grid.shape, dtype=torch.float64)
        for k in frequency_of_channel.unique().tolist():
            idx = torch.nonzero(frequency_of_channel == k)[:, 0]
            out[..., idx] = self.restrict(grid[..., idx], [k])
        return out

    def shares(self, grid: torch.Tensor) -> torch.Tensor:
        """Share of the variance over (x, y) of ``grid [p, p, channel]`` that each frequency's terms
        explain: [p//2, channel] float64 (aliased frequencies explain the same part; a constant
        grid gets 0)."""
        flat = grid.double().reshape(self.p * self.p, -1)
        centred = flat - flat.mean(0, keepdim=True)
        variance = centred.pow(2).sum(0)  # [channel]
        per_k = torch.stack([(self.span([k]).T @ centred).pow(2).sum(0) for k in range(1, self.p // 2 + 1)])
        return torch.where(variance > 0, per_k / variance.clamp_min(1e-300), torch.zeros_like(per_k))

    def neuron_clusters(self, activations: torch.Tensor, threshold: float) -> NeuronClusters:
        """Each neuron's best frequency over ``activations [x, y, neuron]``, as ``frequencies.neuron_clusters``."""
        fve, best = self.shares(activations).max(0)
        return NeuronClusters(frequency=best + 1, fve=fve, threshold=threshold)

    def one_sided(self) -> tuple[str, torch.Tensor, torch.Tensor] | None:
        """Where exactly one power is a bijection: (its input, "x" or "y"; its values [p]; the
        other power's values [p]); None otherwise."""
        if self._bijective == (True, False):
            return "x", self.u, self.v
        if self._bijective == (False, True):
            return "y", self.v, self.u
        return None

    @cached_property
    def _other_cosets(self) -> list[Coset]:
        """``coset_members`` of the non-bijective power's values, where exactly one is a bijection."""
        sided = self.one_sided()
        return [] if sided is None else coset_members(self.p, sided[2])

    def marginal_waves(self, logits: torch.Tensor) -> torch.Tensor | None:
        """The waves ``a_k cos(w_k(s - z) + phi_k)`` in the part of ``logits [x, y, z]`` that the
        bijective side's input alone can carry (their mean over the other input), s that side's
        values: amplitudes a_k [p//2] float64, k = 1..p//2, in logits; None unless exactly one
        power is a bijection.

        With the label s + r, an input that sees s only can predict z - s's distribution, that
        of r over the tokens: its waves at k are the wave means of ``coset_members`` (zero for a
        bijective r, nonzero for a power with repeats)."""
        sided = self.one_sided()
        if sided is None:
            return None
        side, s, _ = sided
        centred = logits.double() - logits.double().mean(-1, keepdim=True)
        marginal = centred.mean(1 if side == "x" else 0)  # [s's input, z]
        z = torch.arange(self.p, dtype=torch.float64)
        k = torch.arange(1, self.p // 2 + 1, dtype=torch.float64)
        phase = 2 * math.pi / self.p * k[:, None, None] * (s.double()[None, :, None] - z[None, None, :])  # [k, t, z]
        coefficient = (marginal[None] * torch.exp(-1j * phase)).sum((1, 2))  # [k] complex
        return 2 * coefficient.abs() / self.p ** 2

    def progress_measures(self, logits: torch.Tensor) -> dict[str, float]:
        """``marginal_wave_coset{least}``: the norm of ``marginal_waves`` over the frequencies in
        each coset of ±(the other power's values); none unless exactly one power is a bijection."""
        amplitudes = self.marginal_waves(logits)
        if amplitudes is None:
            return {}
        return {f"marginal_wave_coset{c.least}":
                float(amplitudes[[k - 1 for k in c.members if k <= self.p // 2]].pow(2).sum().sqrt())
                for c in self._other_cosets}


class Coset(NamedTuple):
    """A coset k·G of the frequencies: its least residue (its name), the size of its wave's mean
    over the tokens, and its members (1..p-1)."""

    least: int
    wave_mean: float
    members: list[int]


def coset_members(p: int, values: torch.Tensor) -> list[Coset]:
    """The cosets of G = ±(the non-zero ``values`` [p], a power's values over the tokens) in
    Z_p^* (p prime), largest wave mean first.

    A frequency k names the waves of k and -k, so the subgroup is taken with -1 in it. Over a
    coset k·G the waves ``exp(2 pi i k values[t] / p)`` are the same up to relabelling t and
    conjugating, so each coset has one wave mean, the size of the mean of that wave over the
    tokens (a Gauss period; 1/p of a quadratic or quartic Gauss sum)."""
    image = {int(h) for h in values.tolist()} - {0}
    subgroup = image | {p - h for h in image}  # G = ±H
    out, seen = [], set()
    for k in range(1, p):
        if k in seen:
            continue
        coset = {k * g % p for g in subgroup}
        seen |= coset
        wave = sum(cmath.exp(2j * math.pi * k * h / p) for h in values.tolist())
        out.append(Coset(least=min(coset), wave_mean=abs(wave) / p, members=sorted(coset)))
    return sorted(out, key=lambda c: (-round(c.wave_mean, 12), c.least))


def power_cosets(p: int, exponent: int, frequencies: list[int]) -> tuple[int, list[PowerCoset]]:
    """The cosets of G = ±(image of t -> t^exponent) in Z_p^* (``coset_members``), largest wave
    mean first, with the ``frequencies`` in each; and |G|."""
    cosets = coset_members(p, power_values(p, exponent))
    return len(cosets[0].members), [PowerCoset(least=c.least, wave_mean=c.wave_mean,
                                               keys=[f for f in frequencies if f in c.members]) for c in cosets]


def value_grid(task) -> ValueGrid | None:
    """The task's ``ValueGrid`` for pow_sum with a power that is not a bijection mod p (whose
    analysis cannot relabel the inputs); None for every other task."""
    c = task.config
    if c.op != "pow_sum" or (c.a, c.b) == (1, 1) or task.natural_coordinates() is not None:
        return None
    return ValueGrid(p=c.p, u=power_values(c.p, c.a), v=power_values(c.p, c.b))
