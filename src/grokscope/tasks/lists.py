"""Tasks on lists of small integers: the maximal element (seed 003), sorting (seeds 001, 004), a fixed permutation (004)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokscope.tasks.base import IGNORE, TASKS, SampledTask, SampledTaskConfig


class ListTaskConfig(SampledTaskConfig):
    """Lists of ``length`` values in ``0 .. n_values - 1``."""

    def __post_init__(self) -> None:
        if self.length < 2 or self.n_values < 2:
            raise ValueError(f"task.length and task.n_values must be at least 2; got {self.length}, {self.n_values}")
        self.check_split()


@TASKS.register
@dataclass(frozen=True)
class MaxElementConfig(ListTaskConfig):
    """The maximal element of a list with one maximum, predicted after END (skip trigrams)."""

    kind = "max_element"
    length: int = 10  # list entries between START and END
    n_values: int = 16  # values 0 .. n_values - 1
    n_train: int = 20_000  # distinct training examples drawn with seed
    n_test: int = 2_000  # distinct held-out examples
    seed: int = 0  # seed of the drawn examples

    def build(self) -> "MaxElementTask":
        return MaxElementTask(self)


class MaxElementTask(SampledTask):
    """``START 0 4 7 2 4 14 9 7 2 5 END`` -> 14, read at END; START = n_values, END = n_values + 1.

    The maximum occurs exactly once (lists with a repeated maximum are redrawn), so a 1-layer
    attention-only model can solve it with one skip trigram per value: ``v .. END -> v``.
    """

    def __init__(self, config: MaxElementConfig):
        self.config = config

    d_vocab = property(lambda self: self.config.n_values + 2)
    d_vocab_out = property(lambda self: self.config.n_values)
    n_ctx = property(lambda self: self.config.length + 2)
    target_positions = property(lambda self: (self.config.length + 1,))

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        lists = torch.empty(0, c.length, dtype=torch.long)
        while len(lists) < n:
            draw = torch.randint(0, c.n_values, (2 * n, c.length), generator=generator)
            unique_max = (draw == draw.max(1, keepdim=True).values).sum(1) == 1
            lists = torch.cat([lists, draw[unique_max]])
        lists = lists[:n]
        tokens = torch.cat([torch.full((n, 1), c.n_values), lists, torch.full((n, 1), c.n_values + 1)], dim=1)
        return tokens, lists.max(1).values[:, None]


@TASKS.register
@dataclass(frozen=True)
class SortConfig(ListTaskConfig):
    """Sorting: ``START list MID`` then the sorted list, one target per sorted position."""

    kind = "sort"
    length: int = 8  # list length (the longest, if min_length is set)
    n_values: int = 32  # values 0 .. n_values - 1
    repeats: bool = False  # allow repeated values (False: distinct values)
    min_length: int | None = None  # variable length: lists of min_length .. length entries, padded
    n_train: int = 20_000  # distinct training examples drawn with seed
    n_test: int = 2_000  # distinct held-out examples
    seed: int = 0  # seed of the drawn examples

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.repeats and self.length > self.n_values:
            raise ValueError(f"task.length {self.length} > task.n_values {self.n_values} needs task.repeats=true")
        if self.min_length is not None and not 2 <= self.min_length <= self.length:
            raise ValueError(f"task.min_length must be in 2..length; got {self.min_length}")

    def build(self) -> "SortTask":
        return SortTask(self)


class SortTask(SampledTask):
    """``START 7 3 9 1 MID 1 3 7`` with targets ``1 3 7 9`` read at MID and each sorted position
    (teacher forcing); START = n_values, MID = n_values + 1; n_ctx = 2 * length + 1.

    With ``min_length``, a list of k entries is ``START l_1..l_k MID s_1..s_{k-1}`` followed by
    PAD (= n_values + 2); every position predicts the next token, and only the k sorted entries
    (read at MID and after it) are scored, the rest IGNORE.
    """

    def __init__(self, config: SortConfig):
        self.config = config

    variable = property(lambda self: self.config.min_length is not None)
    d_vocab = property(lambda self: self.config.n_values + (3 if self.variable else 2))
    d_vocab_out = property(lambda self: self.config.n_values)
    n_ctx = property(lambda self: 2 * self.config.length + 1)

    @property
    def target_positions(self) -> tuple[int, ...]:
        length = self.config.length
        return tuple(range(2 * length + 1)) if self.variable else tuple(range(length + 1, 2 * length + 1))

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        start, mid = c.n_values, c.n_values + 1
        if c.repeats:
            lists = torch.randint(0, c.n_values, (n, c.length), generator=generator)
        else:
            lists = torch.rand(n, c.n_values, generator=generator).argsort(1)[:, :c.length]
        if not self.variable:
            ordered = lists.sort(1).values
            tokens = torch.cat([torch.full((n, 1), start), lists, torch.full((n, 1), mid), ordered[:, :-1]], dim=1)
            return tokens, ordered
        pad, L = c.n_values + 2, c.length
        k = torch.randint(c.min_length, L + 1, (n,), generator=generator)  # [n] list lengths
        j = torch.arange(L)
        valid = j < k[:, None]  # [n, L]
        ordered = torch.where(valid, lists, c.n_values).sort(1).values  # valid entries first, sorted
        rows = torch.arange(n)[:, None]
        tokens = torch.full((n, 2 * L + 1), pad)
        tokens[:, 0] = start
        tokens[rows, 1 + j] = torch.where(valid, lists, pad)
        tokens[torch.arange(n), k + 1] = mid
        shifted = (j < k[:, None] - 1)  # sorted entries 1..k-1 follow MID
        tokens[rows, torch.where(shifted, k[:, None] + 2 + j, 0)] = torch.where(shifted, ordered, start)
        labels = torch.full((n, 2 * L + 1), IGNORE)
        labels[rows, torch.where(valid, k[:, None] + 1 + j, 0)] = torch.where(valid, ordered, IGNORE)
        labels[:, 0] = IGNORE  # position 0 (START) never predicts a sorted entry
        return tokens, labels


@TASKS.register
@dataclass(frozen=True)
class PermuteConfig(ListTaskConfig):
    """Apply one fixed permutation (drawn from ``permutation_seed``) to every list's positions."""

    kind = "permute"
    length: int = 8  # entries per list
    n_values: int = 16  # entries are 0 .. n_values - 1
    permutation_seed: int = 0  # seed of the fixed permutation the model learns to apply
    n_train: int = 20_000  # distinct training examples drawn with seed
    n_test: int = 2_000  # distinct held-out examples
    seed: int = 0  # seed of the drawn examples

    def build(self) -> "PermuteTask":
        return PermuteTask(self)


class PermuteTask(SampledTask):
    """With sigma = (2, 0, 1): ``START 7 3 9 MID 9 7`` with targets ``9 7 3`` (output i is input
    sigma(i)) read at MID and each output position; START = n_values, MID = n_values + 1."""

    def __init__(self, config: PermuteConfig):
        self.config = config
        self.sigma = torch.randperm(config.length, generator=torch.Generator().manual_seed(config.permutation_seed))

    d_vocab = property(lambda self: self.config.n_values + 2)
    d_vocab_out = property(lambda self: self.config.n_values)
    n_ctx = property(lambda self: 2 * self.config.length + 1)
    target_positions = property(lambda self: tuple(range(self.config.length + 1, 2 * self.config.length + 1)))

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        lists = torch.randint(0, c.n_values, (n, c.length), generator=generator)
        permuted = lists[:, self.sigma]
        tokens = torch.cat([torch.full((n, 1), c.n_values), lists, torch.full((n, 1), c.n_values + 1),
                            permuted[:, :-1]], dim=1)
        return tokens, permuted
