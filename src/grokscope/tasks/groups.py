"""Composition in a finite group: ``a b = -> a·b`` over every pair, as in Chughtai et al. (2023,
"A Toy Model of Universality"). Groups are ``cyclic:N``, ``dihedral:N`` (order 2N),
``symmetric:N`` and ``alternating:N`` (N <= 6).

Elements and tokens, stable across versions (token ``|G|`` is ``=``):

- ``cyclic:N``: token k is k (the group Z_N under addition).
- ``dihedral:N``: token ``f * N + k`` is ``r^k s^f`` (k < N rotations first, then the
  reflections), with ``r^N = s^2 = 1`` and ``s r = r^-1 s``.
- ``symmetric:N``: token i is the i-th permutation of ``0..N-1`` in lexicographic order
  (``itertools.permutations``), written as its images ``(g(0), ..., g(N-1))``;
  ``alternating:N``: the even ones, in the same order.

Products compose right to left, as maps: ``(a·b)(x) = a(b(x))``.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from functools import cached_property

import torch

from grokscope.tasks.base import TASKS, Dataset, PairTask, TaskConfig

GROUP_PATTERN = re.compile(r"(cyclic|dihedral|symmetric|alternating):(\d+)")
MAX_DEGREE = 6  # S6 has 720 elements: 518,400 pairs
MAX_CYCLIC = 1000


@dataclass(frozen=True)
class FiniteGroup:
    """A finite group by its multiplication table: ``table[a, b]`` = a·b (element indices)."""

    name: str  # e.g. "symmetric:4"
    labels: tuple[str, ...]  # each element's name, by index
    table: torch.Tensor  # [order, order] int64

    @property
    def order(self) -> int:
        return len(self.labels)

    @cached_property
    def identity(self) -> int:
        row = torch.arange(self.order)
        return next(e for e in range(self.order) if torch.equal(self.table[e], row))

    @cached_property
    def inverse(self) -> torch.Tensor:
        """[order]: the index of each element's inverse."""
        return (self.table == self.identity).int().argmax(dim=1)

    @cached_property
    def classes(self) -> list[list[int]]:
        """Conjugacy classes (each sorted; the identity's first, then by smallest element)."""
        seen, out = set(), []
        for x in range(self.order):
            if x in seen:
                continue
            cls = sorted({int(self.table[self.table[g, x], self.inverse[g]]) for g in range(self.order)})
            seen.update(cls)
            out.append(cls)
        return sorted(out, key=lambda c: (self.identity not in c, c[0]))

    @property
    def is_abelian(self) -> bool:
        return torch.equal(self.table, self.table.T)


def _from_permutations(name: str, perms: list[tuple[int, ...]]) -> FiniteGroup:
    index = {p: i for i, p in enumerate(perms)}
    table = torch.tensor([[index[tuple(a[b[x]] for x in range(len(a)))] for b in perms] for a in perms])
    return FiniteGroup(name, tuple("".join(map(str, p)) for p in perms), table)


def parse_group_spec(spec: str) -> tuple[str, int]:
    """``"dihedral:59" -> ("dihedral", 59)``; ValueError for a spec of another form."""
    match = GROUP_PATTERN.fullmatch(spec)
    if match is None:
        raise ValueError(f"task.group must be cyclic:N, dihedral:N, symmetric:N or alternating:N; got {spec!r}")
    return match.group(1), int(match.group(2))


def build_group(spec: str) -> FiniteGroup:
    """The group ``spec`` names (``cyclic:N``, ``dihedral:N``, ``symmetric:N``, ``alternating:N``)."""
    kind, n = parse_group_spec(spec)
    if kind == "cyclic":
        k = torch.arange(n)
        return FiniteGroup(spec, tuple(str(i) for i in range(n)), (k[:, None] + k[None, :]) % n)
    if kind == "dihedral":
        # r^k s^f · r^l s^g = r^(k + (-1)^f l) s^(f + g)
        elements = [(k, f) for f in (0, 1) for k in range(n)]
        table = torch.tensor([[((k + (-1) ** f * l) % n) + ((f + g) % 2) * n for l, g in elements] for k, f in elements])
        return FiniteGroup(spec, tuple(f"r{k}" + ("s" if f else "") for k, f in elements), table)
    perms = list(itertools.permutations(range(n)))
    if kind == "alternating":
        perms = [p for p in perms if parity(p) == 0]
    return _from_permutations(spec, perms)


def parity(p: tuple[int, ...]) -> int:
    """0 for an even permutation (given by its images), 1 for an odd one: inversions mod 2."""
    return sum(p[i] > p[j] for i in range(len(p)) for j in range(i + 1, len(p))) % 2


def check_group_spec(spec: str) -> None:
    """ValueError, before anything is built, for a group that does not exist or is too large."""
    kind, n = parse_group_spec(spec)
    low = {"cyclic": 2, "dihedral": 3, "symmetric": 2, "alternating": 3}[kind]
    high = MAX_CYCLIC if kind in ("cyclic", "dihedral") else MAX_DEGREE
    if not low <= n <= high:
        raise ValueError(f"task.group={spec}: N must be between {low} and {high} for {kind} groups")


@TASKS.register
@dataclass(frozen=True)
class GroupConfig(TaskConfig):
    """``a b = -> a·b`` for every pair of elements of a finite group (Chughtai et al. 2023)."""

    kind = "group"
    group: str = "symmetric:4"  # cyclic:N, dihedral:N (order 2N), symmetric:N or alternating:N (N <= 6)
    frac_train: float = 0.4  # share of all pairs used for training
    seed: int = 0  # seed of the train/test split

    def __post_init__(self) -> None:
        check_group_spec(self.group)
        self.check_split()

    @property
    def n_examples(self) -> int:
        return self.order ** 2

    @property
    def order(self) -> int:
        kind, n = parse_group_spec(self.group)
        return {"cyclic": n, "dihedral": 2 * n, "symmetric": math.factorial(n), "alternating": math.factorial(n) // 2}[kind]

    def build(self) -> "GroupTask":
        return GroupTask(self)


class GroupTask(PairTask):
    """Tokens ``a b =`` with ``=`` the token ``|G|``; the label ``a·b`` is read at ``=``.
    Pairs are enumerated row-major: example ``i`` is ``a = i // |G|, b = i % |G|``."""

    def __init__(self, config: GroupConfig):
        self.config = config

    @cached_property
    def group(self) -> FiniteGroup:
        return build_group(self.config.group)

    @property
    def n_symbols(self) -> int:
        return self.config.order

    def dataset(self) -> Dataset:
        n = self.config.order
        a, b = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
        tokens = torch.stack([a, b, torch.full_like(a, n)], dim=1)  # [example, 3]
        return Dataset(tokens=tokens, labels=self.group.table[a, b][:, None], target_positions=self.target_positions)
