"""Real Fourier bases over Z_p (1-D) and Z_p x Z_p (2-D), as objects that own their row order.

Rows of ``FourierBasis(p).matrix`` are orthonormal functions on ``0..p-1``::

    const      1/sqrt(p)
    cos k      sqrt(2/p) cos(w_k x)      k = 1 .. (p-1)//2, w_k = 2 pi k / p
    sin k      sqrt(2/p) sin(w_k x)
    cos p/2    1/sqrt(p) cos(pi x)        only for even p (it has no sine partner)

in the order const, cos 1, sin 1, cos 2, sin 2, ... Callers ask for rows by label
(``basis.index("cos 14")``) or by frequency (``basis.rows(14)``), never by arithmetic.
A 2-D coefficient ``C[i, j]`` multiplies ``row_i(x) * row_j(y)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import torch


@dataclass(frozen=True)
class FourierBasis:
    """The orthonormal real Fourier basis of functions on Z_p."""

    p: int
    labels: tuple[str, ...] = field(init=False)
    frequency_of_row: tuple[int, ...] = field(init=False)  # 0 for const

    def __post_init__(self) -> None:
        if self.p < 2:
            raise ValueError(f"a Fourier basis needs p >= 2; got {self.p}")
        labels, freqs = ["const"], [0]
        for k in self.frequencies:
            if 2 * k == self.p:
                labels.append(f"cos {k}")
                freqs.append(k)
            else:
                labels += [f"cos {k}", f"sin {k}"]
                freqs += [k, k]
        object.__setattr__(self, "labels", tuple(labels))
        object.__setattr__(self, "frequency_of_row", tuple(freqs))

    @property
    def frequencies(self) -> range:
        """The non-constant frequencies ``k = 1 .. p//2``."""
        return range(1, self.p // 2 + 1)

    @cached_property
    def matrix(self) -> torch.Tensor:  # [basis, p] float64, orthonormal rows
        x = torch.arange(self.p, dtype=torch.float64)
        rows = []
        for label, k in zip(self.labels, self.frequency_of_row):
            w = 2 * math.pi * k / self.p
            if label == "const":
                rows.append(torch.full((self.p,), 1 / math.sqrt(self.p), dtype=torch.float64))
            elif 2 * k == self.p:
                rows.append(torch.cos(w * x) / math.sqrt(self.p))
            elif label.startswith("cos"):
                rows.append(torch.cos(w * x) * math.sqrt(2 / self.p))
            else:
                rows.append(torch.sin(w * x) * math.sqrt(2 / self.p))
        return torch.stack(rows)

    def index(self, label: str) -> int:
        """Row of a label such as ``"const"``, ``"cos 14"`` or ``"sin 14"``."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"no row {label!r} in the Fourier basis for p={self.p}") from None

    def rows(self, k: int) -> list[int]:
        """Rows of frequency ``k`` (cos and sin; cos only for k = p/2; const for k = 0)."""
        return [i for i, f in enumerate(self.frequency_of_row) if f == k]

    def transform(self, values: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Coefficients of ``values`` (indexed by 0..p-1 along ``dim``) in this basis, same shape."""
        moved = values.to(torch.float64).movedim(dim, -1)  # [..., p]
        return (moved @ self.matrix.T).movedim(-1, dim)

    def inverse(self, coefficients: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Values on 0..p-1 from coefficients along ``dim``."""
        moved = coefficients.to(torch.float64).movedim(dim, -1)
        return (moved @ self.matrix).movedim(-1, dim)

    def frequency_norms(self, coefficients: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Per frequency k = 1..p//2, the L2 norm of all coefficients in its rows (other dims
        included): [p//2] float64. The const row is left out."""
        moved = coefficients.to(torch.float64).movedim(dim, 0)
        energy = moved.pow(2).reshape(moved.shape[0], -1).sum(1)  # [basis]
        return torch.stack([energy[self.rows(k)].sum() for k in self.frequencies]).sqrt()


def fourier_2d(basis: FourierBasis, grid: torch.Tensor) -> torch.Tensor:
    """2-D coefficients of ``grid [p (x), p (y), ...]``: ``C[i, j, ...]`` multiplies row_i(x) row_j(y)."""
    return basis.transform(basis.transform(grid, dim=0), dim=1)


def frequency_terms_2d(basis: FourierBasis, k: int) -> torch.Tensor:
    """Mask [basis, basis] of the 2-D terms that belong to frequency ``k``: the x-only terms
    (row k in x, const in y), the y-only terms, and the products of frequency k in both."""
    rows = basis.rows(k)
    const = basis.index("const")
    mask = torch.zeros(len(basis.labels), len(basis.labels), dtype=torch.bool)
    for i in rows:
        mask[i, const] = mask[const, i] = True
        for j in rows:
            mask[i, j] = True
    return mask
