"""The irreducible representations of a finite group, through its character table, computed
from the multiplication table alone (Burnside's algorithm), and the real isotypic projectors
that the group analysis works with.

Burnside: the class sums ``K_i`` of the group algebra multiply as ``K_i K_j = sum_k a_ijk K_k``
(``a_ijk`` = the number of ways an element of class k is a product x·y with x in class i and
y in class j). Each irreducible character ``chi`` gives a common eigenvector
``w_k = |C_k| chi(C_k) / chi(1)`` of the matrices ``M_i[j, k] = a_ijk``; a random combination
of them has distinct eigenvalues, so its eigenvectors are every irrep's ``w``, from which
``chi(1)`` follows by ``sum_k |C_k| |chi(C_k)|^2 = |G|``. Characters are complex in general
(A4 has two 1-D irreps taking the values of the cube roots of unity).

A real-valued function on G (a column of W_E, a neuron's activations) lives in real
representations: a complex irrep whose character is not real is paired with its conjugate.
For each real irrep rho, ``P_rho[x, y] = (d / |G|) chi_rho(x y^-1)`` (with ``chi_rho = chi +
conj(chi)`` for a pair, d the complex dimension) is the orthogonal projector onto the span of
its matrix entries ``g -> rho(g)_ij`` (the rho-isotypic part of the regular representation,
of dimension d^2, or 2 d^2 for a pair); the projectors of all real irreps sum to the
identity. For a cyclic group Z_N these are the Fourier frequencies: the 2-D irrep k has
``chi(g) = 2 cos(2 pi k g / N)`` and projects onto cos and sin of frequency k.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from grokscope.tasks.groups import FiniteGroup, parity, parse_group_spec


@dataclass(frozen=True)
class RealIrrep:
    """One real irreducible representation of a group (a complex irrep, or a pair of
    conjugate ones), by its character on every element."""

    name: str  # e.g. "trivial", "sign", "standard", "freq 3", "rot 2", "3a"
    dim: int  # its real dimension (twice the complex one for a conjugate pair)
    complex_dim: int  # d of the complex irrep(s)
    character: np.ndarray  # [order] real: chi(g) (chi + conj(chi) for a pair)

    @property
    def n_components(self) -> int:
        """The dimension of the span of its matrix entries: d^2 (2 d^2 for a pair)."""
        return self.dim * self.complex_dim


@dataclass(frozen=True)
class CharacterTable:
    """Complex irreducible characters on the conjugacy classes."""

    classes: list[list[int]]  # element indices of each class, the identity's first
    characters: np.ndarray  # [irrep, class] complex128
    dims: list[int]  # chi(1) of each irrep


def character_table(group: FiniteGroup) -> CharacterTable:
    """The group's complex character table by Burnside's algorithm (numerically, in float64)."""
    classes = group.classes
    r, table = len(classes), group.table.numpy()
    class_of = np.empty(group.order, dtype=np.int64)
    for k, c in enumerate(classes):
        class_of[c] = k
    sizes = np.array([len(c) for c in classes], dtype=np.float64)
    # a[i, j, k] = #{(x, y): x in C_i, y in C_j, x·y = z} for one fixed z in C_k
    counts = np.zeros((r, r, r))
    for i, j in itertools.product(range(r), range(r)):
        products = table[np.ix_(classes[i], classes[j])].ravel()
        counts[i, j] = np.bincount(class_of[products], minlength=r)
    a = counts / sizes[None, None, :]
    M = np.einsum("i,ijk->jk", np.random.default_rng(0).normal(size=r), a)  # random combination of M_i
    _, vectors = np.linalg.eig(M)  # columns: w of each irrep, up to scale
    w = vectors / vectors[0]  # w_1 = omega(K_identity) = 1
    chars_over_dim = w / sizes[:, None]  # chi(C_k) / chi(1), per column
    dims = np.sqrt(group.order / (sizes[:, None] * np.abs(chars_over_dim) ** 2).sum(0))
    characters = (chars_over_dim * dims[None, :]).T  # [irrep, class]
    dims_int = [int(round(d)) for d in dims]
    order = sorted(range(r), key=lambda i: (dims_int[i], tuple(np.round(-characters[i].real, 6)),
                                            tuple(np.round(characters[i].imag, 6))))
    return CharacterTable(classes=classes, characters=characters[order], dims=[dims_int[i] for i in order])


def real_irreps(group: FiniteGroup, table: CharacterTable | None = None) -> list[RealIrrep]:
    """The group's real irreducible representations, trivial first, named where a name is
    standard (trivial, sign, standard and standard x sign for S_n; freq k for Z_N; rot k for
    dihedral groups), else by dimension and a letter."""
    table = table or character_table(group)
    on_elements = np.zeros((len(table.dims), group.order), dtype=np.complex128)
    for k, c in enumerate(table.classes):
        on_elements[:, c] = table.characters[:, [k]]
    used, out = set(), []
    for i, d in enumerate(table.dims):
        if i in used:
            continue
        chi = on_elements[i]
        if np.abs(chi.imag).max() < 1e-8:
            out.append((d, d, chi.real))
            used.add(i)
            continue
        partner = next(j for j in range(len(table.dims)) if j not in used and j != i
                       and np.abs(on_elements[j] - chi.conj()).max() < 1e-8)
        used.update((i, partner))
        out.append((2 * d, d, 2 * chi.real))
    names = _names(group, [chi for _, _, chi in out], [dim for dim, _, _ in out])
    return [RealIrrep(name, dim, cdim, chi) for name, (dim, cdim, chi) in zip(names, out)]


def _names(group: FiniteGroup, characters: list[np.ndarray], dims: list[int]) -> list[str]:
    kind, n = parse_group_spec(group.name)
    names = []
    letters: dict[int, int] = {}
    for chi, dim in zip(characters, dims):
        letters[dim] = letters.get(dim, 0) + 1
        count = letters[dim]
        names.append(f"{dim}{chr(ord('a') + count - 1)}" if count <= 26 else f"{dim}.{count}")
    names[0] = "trivial"
    if kind == "cyclic" or kind == "dihedral":  # 2-D irreps: chi(r^j) = 2 cos(2 pi k j / N)
        for i, (chi, dim) in enumerate(zip(characters, dims)):
            if dim == 2:
                k = int(round(np.arccos(np.clip(chi[1] / 2, -1, 1)) * n / (2 * np.pi)))
                names[i] = f"{'freq' if kind == 'cyclic' else 'rot'} {k}"
            elif dim == 1 and i > 0:  # chi(r), and for a dihedral group chi(s), are +-1
                names[i] = "sign" if kind == "cyclic" else f"r{'+' if chi[1] > 0 else '-'}s{'+' if chi[n] > 0 else '-'}"
    if kind == "symmetric" and n >= 2:
        perms = [tuple(int(c) for c in label) for label in group.labels]
        sign = np.array([(-1) ** parity(p) for p in perms])
        fixed = np.array([sum(p[i] == i for i in range(n)) for p in perms])
        for i, chi in enumerate(characters):
            for name, target in (("sign", sign), ("standard", fixed - 1), ("standard⊗sign", (fixed - 1) * sign)):
                if i > 0 and np.allclose(chi, target, atol=1e-8) and name not in names:
                    names[i] = name
                    break
    return names


@dataclass(frozen=True)
class Representations:
    """A group with its real irreps and their projectors onto functions on the group."""

    group: FiniteGroup
    irreps: list[RealIrrep]

    @classmethod
    def of(cls, group: FiniteGroup) -> "Representations":
        return cls(group, real_irreps(group))

    @cached_property
    def projectors(self) -> torch.Tensor:
        """[irrep, order, order] float64: ``P[x, y] = (d / |G|) chi(x y^-1)``."""
        g = self.group
        x_yinv = g.table[:, g.inverse]  # [order (x), order (y)]: x·y^-1
        return torch.stack([torch.from_numpy(r.complex_dim * r.character / g.order)[x_yinv] for r in self.irreps])

    @cached_property
    def basis(self) -> tuple[torch.Tensor, list[slice]]:
        """An orthonormal basis of functions on the group adapted to the irreps: U [order,
        order] float64, whose columns ``blocks[i]`` span irrep i's matrix entries (the image of
        its projector). The group counterpart of the Fourier basis."""
        columns, blocks, start = [], [], 0
        for r, P in zip(self.irreps, self.projectors):
            values, vectors = torch.linalg.eigh(P)
            image = vectors[:, values > 0.5]  # [order, n_components]
            if image.shape[1] != r.n_components:
                raise ValueError(f"irrep {r.name} of {self.group.name}: projector of rank {image.shape[1]}, "
                                 f"expected {r.n_components}")
            columns.append(image)
            blocks.append(slice(start, start + image.shape[1]))
            start += image.shape[1]
        return torch.cat(columns, dim=1), blocks

    def transform(self, f: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Coefficients of ``f`` (a function of the group along ``dim``) in ``basis``."""
        U, _ = self.basis
        return torch.tensordot(f.double().movedim(dim, -1), U, dims=1).movedim(-1, dim)

    def shares(self, f: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Share of the energy of ``f`` (a function of the group along ``dim``) in each irrep's
        span, the other axes summed: [irrep]. Shares sum to 1 (0 for a zero function)."""
        energy = self.transform(f, dim).pow(2).movedim(dim, 0)
        _, blocks = self.basis
        per = torch.stack([energy[b].sum() for b in blocks])
        return per / per.sum().clamp_min(1e-300)

    def pair_shares(self, grid: torch.Tensor) -> torch.Tensor:
        """Share of the variance over (a, b) of ``grid [order (a), order (b), k]`` in each
        non-trivial irrep rho's terms: rho in a alone, in b alone, and rho(a) x rho(b) products
        (the counterpart of one Fourier frequency's 2-D terms): [irrep, k]; the trivial row is 0."""
        _, blocks = self.basis
        energy = self.transform(self.transform(grid, 0), 1).pow(2)  # [a-basis, b-basis, k]
        const = blocks[0]
        variance = energy.sum((0, 1)) - energy[const, const].sum((0, 1))  # [k]
        per = [torch.zeros_like(variance)]
        for b in blocks[1:]:
            per.append(energy[b, b].sum((0, 1)) + energy[const, b].sum((0, 1)) + energy[b, const].sum((0, 1)))
        per = torch.stack(per)  # [irrep, k]
        return torch.where(variance > 0, per / variance.clamp_min(1e-300), torch.zeros_like(per))
