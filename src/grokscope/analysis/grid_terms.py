"""A frequency's 2-D terms over the p x p input grid, whichever coordinates the task's algorithm runs in.

The analysis asks the same questions of every modular task: which frequency explains each
neuron, what is left of a grid restricted to the key frequencies or without one of them, and
what the logits' waves ``cos(w(... - z))`` run over. ``GridTerms`` answers them; the pipeline
and the ablations call it without knowing the coordinates. Two implementations:

- ``FourierTerms``: the orthonormal 2-D Fourier basis over (x, y) (or over (u, v) after the
  task's natural relabelling), the Nanda et al. analysis.
- ``value_grid.ValueGrid``: least-squares terms over the values a pow_sum task adds when one
  of its powers is not a bijection mod p.

With u = x, v = y the two give the same numbers (``tests/test_value_grid.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from grokscope.analysis import circuits
from grokscope.analysis.fourier import FourierBasis, fourier_2d
from grokscope.analysis.frequencies import NeuronClusters, neuron_clusters
from grokscope.analysis.value_grid import value_grid


class GridTerms(Protocol):
    """The 2-D terms of each frequency over the grid [x, y, ...], and the logits' wave argument."""

    def phase(self) -> torch.Tensor | None:
        """The waves' argument ``[p (x), p (y)]`` (in 2 pi / p), or None for x + sign * y."""

    def restrict(self, grid: torch.Tensor, frequencies: list[int]) -> torch.Tensor:
        """``grid [x, y, ...]`` on the const term plus the 2-D terms of ``frequencies``."""

    def without(self, grid: torch.Tensor, k: int) -> torch.Tensor:
        """``grid [x, y, ...]`` with frequency k's non-constant terms removed."""

    def single_frequency(self, grid: torch.Tensor, frequency_of_channel: torch.Tensor) -> torch.Tensor:
        """Each channel of ``grid [x, y, channel]`` on its own frequency's terms (plus const)."""

    def neuron_clusters(self, activations: torch.Tensor, threshold: float) -> NeuronClusters:
        """Each neuron's best frequency over ``activations [x, y, neuron]`` and the share it explains."""

    def progress_measures(self, logits: torch.Tensor) -> dict[str, float]:
        """Progress measures particular to these coordinates, from ``logits [x, y, z]`` (name: value)."""


@dataclass(frozen=True)
class FourierTerms:
    """``GridTerms`` in the orthonormal 2-D Fourier basis over the grid (``frequency_terms_2d``)."""

    basis: FourierBasis

    def phase(self) -> None:
        return None

    def restrict(self, grid: torch.Tensor, frequencies: list[int]) -> torch.Tensor:
        return circuits.restrict_neurons(self.basis, grid, frequencies)

    def without(self, grid: torch.Tensor, k: int) -> torch.Tensor:
        keep = ~circuits.frequency_terms_mask(self.basis, [k], keep_const=False)  # [basis, basis]
        coefficients = fourier_2d(self.basis, grid) * keep.reshape(keep.shape + (1,) * (grid.dim() - 2))
        return self.basis.inverse(self.basis.inverse(coefficients, dim=0), dim=1)

    def single_frequency(self, grid: torch.Tensor, frequency_of_channel: torch.Tensor) -> torch.Tensor:
        return circuits.single_frequency_neurons(self.basis, grid, frequency_of_channel)

    def neuron_clusters(self, activations: torch.Tensor, threshold: float) -> NeuronClusters:
        return neuron_clusters(self.basis, activations, threshold)

    def progress_measures(self, logits: torch.Tensor) -> dict[str, float]:
        return {}


def grid_terms(task) -> GridTerms:
    """The task's ``GridTerms``: a ``ValueGrid`` for pow_sum with a non-bijective power, else the
    Fourier basis (over the natural coordinates where the task has them)."""
    grid = value_grid(task)
    return FourierTerms(FourierBasis(task.config.p)) if grid is None else grid
