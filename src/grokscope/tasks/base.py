"""The Task abstraction: a task generates every example (tokens and labels) and splits them.

Axis names used below: ``example`` indexes the enumerated input space, ``pos`` a token
position (``n_ctx`` of them), ``target`` a scored position (``target_positions``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from grokscope.schema import ConfigPart, Registry


class TaskConfig(ConfigPart):
    """Base of every task's config; ``name`` is its kind, ``frac_train`` and ``seed`` split it."""

    kind_key: ClassVar[str] = "name"
    frac_train: float  # share of the examples used for training (the rest is the test set)
    seed: int  # seed of the train/test split

    def build(self) -> "Task":
        """The Task this config describes."""
        raise NotImplementedError

    def check_split(self) -> None:
        """Validate the split's seed, and ``frac_train`` against the size of the input space."""
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"task.seed must be in [0, 2^63); got {self.seed}")
        if not 0.0 < self.frac_train < 1.0:
            raise ValueError(f"task.frac_train must be in (0, 1); got {self.frac_train}")
        n = self.n_examples
        n_train = int(self.frac_train * n)
        if n_train < 1 or n_train >= n:
            raise ValueError(
                f"task.frac_train={self.frac_train} leaves an empty train or test set "
                f"for {n} examples"
            )

    @property
    def n_examples(self) -> int:
        raise NotImplementedError


TASKS: Registry[TaskConfig] = Registry("task", kind_key="name", plugins="grokscope.tasks")  # outside packages add tasks


IGNORE = -1  # a label that is not scored (e.g. a position outside the repeated subsequence)


@dataclass(frozen=True)
class Dataset:
    """Every example of a task: model inputs and the labels read at ``target_positions``."""

    tokens: torch.Tensor  # [example, pos] int64
    labels: torch.Tensor  # [example, target] int64; IGNORE where a target is not scored
    target_positions: tuple[int, ...]  # positions whose logits are scored, in target order


@dataclass(frozen=True)
class Split:
    """Indices into a Dataset's examples; disjoint and together covering all of them."""

    train: torch.Tensor  # [n_train] int64
    test: torch.Tensor  # [n_test] int64


class Task(ABC):
    """A task with a finite input space: enumerates it, labels it, splits it by a seed."""

    config: TaskConfig

    @property
    @abstractmethod
    def d_vocab(self) -> int:
        """Number of input tokens."""

    @property
    @abstractmethod
    def d_vocab_out(self) -> int:
        """Number of output classes."""

    @property
    @abstractmethod
    def n_ctx(self) -> int:
        """Sequence length of every example."""

    @property
    @abstractmethod
    def target_positions(self) -> tuple[int, ...]:
        """Positions whose logits are scored, in target order."""

    @abstractmethod
    def dataset(self) -> Dataset:
        """All examples, in a fixed enumeration order."""

    @property
    def target_names(self) -> list[str] | None:
        """Names of the targets whose losses are recorded separately every epoch (None: only
        the mean), e.g. the answer digits of n-digit addition."""
        return None

    def split(self) -> Split:
        """Seeded random train/test split of ``dataset()``'s examples.

        Uses its own ``numpy.random.Generator(seed)``, never a global RNG, so the split is a
        function of ``(config.seed, frac_train, n_examples)`` alone. The first
        ``int(frac_train * n)`` indices of the permutation are the training set.
        """
        n = self.config.n_examples
        perm = np.random.Generator(np.random.PCG64(self.config.seed)).permutation(n)
        n_train = int(self.config.frac_train * n)
        train = torch.from_numpy(np.sort(perm[:n_train])).long()
        test = torch.from_numpy(np.sort(perm[n_train:])).long()
        return Split(train=train, test=test)


class PairTask(Task):
    """A task on pairs of ``n_symbols`` symbols, ``a b = -> answer``: tokens 0..n-1 are the
    symbols, token n is ``=``, and the answer is read at ``=`` (position 2)."""

    @property
    @abstractmethod
    def n_symbols(self) -> int:
        """Number of symbols (and of answers)."""

    @property
    def d_vocab(self) -> int:
        return self.n_symbols + 1

    @property
    def d_vocab_out(self) -> int:
        return self.n_symbols

    @property
    def n_ctx(self) -> int:
        return 3

    @property
    def target_positions(self) -> tuple[int, ...]:
        return (2,)


class SampledTaskConfig(TaskConfig):
    """Config of a task whose input space is too large to enumerate: ``n_train`` and ``n_test``
    distinct examples are drawn with ``seed``."""

    @property
    def n_examples(self) -> int:
        return self.n_train + self.n_test  # the fixed pool

    def check_split(self) -> None:
        if self.n_train < 1 or self.n_test < 1:
            raise ValueError(f"task.n_train and task.n_test must be at least 1; got {self.n_train}, {self.n_test}")


class SampledTask(Task):
    """A task that samples its examples: ``sample(n, generator)`` draws fresh ones (infinite-data
    training uses it every step); ``dataset()`` is a fixed pool of ``n_train + n_test`` distinct
    examples drawn with the task seed, the first ``n_train`` of them for training."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random examples: tokens [n, pos], labels [n, target]."""

    def dataset(self) -> Dataset:
        want = self.config.n_train + self.config.n_test
        gen = torch.Generator().manual_seed(self.config.seed)
        tokens, labels, seen = [], [], set()
        for _ in range(100):
            t, y = self.sample(want, gen)
            for row, label in zip(t, y):
                key = tuple(row.tolist())
                if key not in seen:
                    seen.add(key)
                    tokens.append(row)
                    labels.append(label)
                    if len(tokens) == want:
                        return Dataset(torch.stack(tokens), torch.stack(labels), self.target_positions)
        raise ValueError(f"task {self.config.kind} has fewer than {want} distinct examples; "
                         f"lower task.n_train or task.n_test")

    def split(self) -> Split:
        n_train, n_test = self.config.n_train, self.config.n_test
        return Split(train=torch.arange(n_train), test=torch.arange(n_train, n_train + n_test))
