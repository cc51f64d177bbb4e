"""Tasks built from modular arithmetic (seed 004): a Fibonacci recurrence and a two-operation model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokscope.tasks.base import TASKS, Dataset, Task, TaskConfig


class PairsConfig(TaskConfig):
    """Every pair (x, y) of residues mod p, a random ``frac_train`` of them for training."""

    def check_pairs(self) -> None:
        if self.p < 2:
            raise ValueError(f"task.p must be at least 2; got {self.p}")
        self.check_split()


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y of every pair, x-major: each [p * p]."""
    r = torch.arange(p)
    return r.repeat_interleave(p), r.repeat(p)


@TASKS.register
@dataclass(frozen=True)
class FibonacciConfig(PairsConfig):
    """``x_{n+2} = x_{n+1} + x_n mod p`` from every start (x_0, x_1); predict each next term."""

    kind = "fibonacci"
    p: int = 53  # modulus of the recurrence
    length: int = 8  # terms x_0 .. x_{length-1}
    frac_train: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.length < 3:
            raise ValueError(f"task.length must be at least 3; got {self.length}")
        self.check_pairs()

    @property
    def n_examples(self) -> int:
        return self.p * self.p

    def build(self) -> "FibonacciTask":
        return FibonacciTask(self)


class FibonacciTask(Task):
    """p = 53, length 6: ``3 5 8 13 21`` (tokens x_0..x_4) with targets ``8 13 21 34`` read at
    positions 1..4 (each term predicted from the two before it; teacher forcing)."""

    def __init__(self, config: FibonacciConfig):
        self.config = config

    d_vocab = property(lambda self: self.config.p)
    d_vocab_out = property(lambda self: self.config.p)
    n_ctx = property(lambda self: self.config.length - 1)
    target_positions = property(lambda self: tuple(range(1, self.config.length - 1)))

    @property
    def target_names(self) -> list[str]:
        return [f"term{i}" for i in range(2, self.config.length)]

    def dataset(self) -> Dataset:
        c = self.config
        terms = list(all_pairs(c.p))
        while len(terms) < c.length:
            terms.append((terms[-1] + terms[-2]) % c.p)
        sequence = torch.stack(terms, dim=1)  # [example, length]
        return Dataset(tokens=sequence[:, :-1], labels=sequence[:, 2:], target_positions=self.target_positions)


@TASKS.register
@dataclass(frozen=True)
class AddSubConfig(PairsConfig):
    """One model, two operations: ``x + y = `` and ``x - y = `` mod p, told apart by an op token."""

    kind = "add_sub"
    p: int = 59  # modulus of both operations
    frac_train: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        self.check_pairs()

    @property
    def n_examples(self) -> int:
        return 2 * self.p * self.p

    def build(self) -> "AddSubTask":
        return AddSubTask(self)


class AddSubTask(Task):
    """Tokens ``x op y =`` with op ``+`` = p, ``-`` = p + 1 and ``=`` = p + 2: ``5 + 9 =`` -> 14,
    ``5 - 9 =`` -> 55 (p = 59). Examples are every addition pair, then every subtraction pair."""

    def __init__(self, config: AddSubConfig):
        self.config = config

    d_vocab = property(lambda self: self.config.p + 3)
    d_vocab_out = property(lambda self: self.config.p)
    n_ctx = property(lambda self: 4)
    target_positions = property(lambda self: (3,))

    def dataset(self) -> Dataset:
        p = self.config.p
        x, y = all_pairs(p)
        k = len(x)
        plus, minus, equals = torch.full((k,), p), torch.full((k,), p + 1), torch.full((k,), p + 2)
        tokens = torch.cat([torch.stack([x, plus, y, equals], 1), torch.stack([x, minus, y, equals], 1)])
        labels = torch.cat([(x + y) % p, (x - y) % p])[:, None]
        return Dataset(tokens=tokens, labels=labels, target_positions=self.target_positions)
