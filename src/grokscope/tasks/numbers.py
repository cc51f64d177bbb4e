"""Number-theory tasks seed 001 reports as not grokking: primality and the GCD, on written numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from grokscope.tasks.base import TASKS, Dataset, Task, TaskConfig
from grokscope.tasks.modular import is_prime


def written(n: torch.Tensor, base: int, width: int) -> torch.Tensor:
    """n [k] -> its ``width`` digits in ``base``, most significant first: [k, width]."""
    powers = base ** torch.arange(width - 1, -1, -1)
    return (n[:, None] // powers) % base


def width_for(n_max: int, base: int) -> int:
    """Digits needed to write every number below ``n_max`` in ``base``."""
    width = 1
    while base ** width < n_max:
        width += 1
    return width


class WrittenNumbersConfig(TaskConfig):
    """Numbers below ``n_max`` written in ``base``; a random ``frac_train`` of the examples trains."""

    def __post_init__(self) -> None:
        if self.n_max < 4 or not 2 <= self.base <= 36:
            raise ValueError(f"task.n_max must be at least 4 and task.base in 2..36; got {self.n_max}, {self.base}")
        self.check_split()


@TASKS.register
@dataclass(frozen=True)
class PrimalityConfig(WrittenNumbersConfig):
    """Is n prime? n below n_max, written in base; labels 1 (prime) or 0."""

    kind = "primality"
    n_max: int = 4096  # numbers 2 .. n_max - 1
    base: int = 2  # digits are written in this base
    frac_train: float = 0.5
    seed: int = 0

    @property
    def n_examples(self) -> int:
        return self.n_max

    def build(self) -> "PrimalityTask":
        return PrimalityTask(self)


class PrimalityTask(Task):
    """Base 2, n_max 4096: 37 = ``1 0 0 1 0 1`` padded to 12 digits, then ``=`` (token ``base``);
    label 1 read at ``=``. The split is a random subset of the numbers, not a range."""

    def __init__(self, config: PrimalityConfig):
        self.config = config

    d_vocab = property(lambda self: self.config.base + 1)
    d_vocab_out = property(lambda self: 2)
    n_ctx = property(lambda self: width_for(self.config.n_max, self.config.base) + 1)
    target_positions = property(lambda self: (self.n_ctx - 1,))

    def dataset(self) -> Dataset:
        c = self.config
        n = torch.arange(c.n_max)
        tokens = torch.cat([written(n, c.base, self.n_ctx - 1), torch.full((c.n_max, 1), c.base)], dim=1)
        labels = torch.tensor([int(is_prime(v)) for v in range(c.n_max)])[:, None]
        return Dataset(tokens=tokens, labels=labels, target_positions=self.target_positions)


@TASKS.register
@dataclass(frozen=True)
class GCDConfig(WrittenNumbersConfig):
    """gcd(a, b) for 1 <= a, b < n_max, written in base; the label is the gcd itself."""

    kind = "gcd"
    n_max: int = 100  # operands 1 .. n_max - 1
    base: int = 10  # digits are written in this base
    frac_train: float = 0.5
    seed: int = 0

    @property
    def n_examples(self) -> int:
        return (self.n_max - 1) ** 2

    def build(self) -> "GCDTask":
        return GCDTask(self)


class GCDTask(Task):
    """Base 10, n_max 100: ``1 2 , 1 8 =`` (``,`` = token base, ``=`` = base + 1) -> 6, read at ``=``."""

    def __init__(self, config: GCDConfig):
        self.config = config

    d_vocab = property(lambda self: self.config.base + 2)
    d_vocab_out = property(lambda self: self.config.n_max)
    n_ctx = property(lambda self: 2 * width_for(self.config.n_max, self.config.base) + 2)
    target_positions = property(lambda self: (self.n_ctx - 1,))

    def dataset(self) -> Dataset:
        c = self.config
        values = torch.arange(1, c.n_max)
        a, b = values.repeat_interleave(len(values)), values.repeat(len(values))
        width = width_for(c.n_max, c.base)
        k = len(a)
        tokens = torch.cat([written(a, c.base, width), torch.full((k, 1), c.base), written(b, c.base, width),
                            torch.full((k, 1), c.base + 1)], dim=1)
        labels = torch.tensor([math.gcd(int(x), int(y)) for x, y in zip(a, b)])[:, None]
        return Dataset(tokens=tokens, labels=labels, target_positions=self.target_positions)
