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
    frac_train: float
    seed: int

    def build(self) -> "Task":
        """The Task this config describes."""
        raise NotImplementedError

    def check_split(self) -> None:
        """Validate ``frac_train`` against the size of the input space."""
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


TASKS: Registry[TaskConfig] = Registry("task", kind_key="name")


@dataclass(frozen=True)
class Dataset:
    """Every example of a task: model inputs and the labels read at ``target_positions``."""

    tokens: torch.Tensor  # [example, pos] int64
    labels: torch.Tensor  # [example, target] int64
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

    @abstractmethod
    def dataset(self) -> Dataset:
        """All examples, in a fixed enumeration order."""

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
