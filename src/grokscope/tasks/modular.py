"""Modular arithmetic: ``z = (x op y) mod p`` over every pair, the task of Nanda et al. (2023)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from grokscope.tasks.base import TASKS, Dataset, PairTask, TaskConfig

Op = Literal["add", "sub", "mul", "div", "pow_sum", "min", "max", "random"]


def power_values(p: int, exponent: int) -> torch.Tensor:
    """``t^exponent mod p`` for every token t = 0..p-1: [p] int64."""
    return torch.tensor([pow(t, exponent, p) for t in range(p)])


def is_prime(n: int) -> bool:
    """Trial division; enough for the moduli used here."""
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


@TASKS.register
@dataclass(frozen=True)
class ModularConfig(TaskConfig):
    """``(x op y) mod p`` for every pair ``x, y`` in ``0..p-1`` (``y != 0`` for ``div``); also
    ``min``, ``max`` (seed 004) and ``random`` (a fixed random label per pair: pure memorisation)."""

    kind = "modular"
    op: Op = "add"  # add, sub, mul, div (x * y^-1, needs prime p), pow_sum ((x^a + y^b) mod p), min, max, random
    p: int = 113  # modulus; tokens 0..p-1 are the numbers, token p is "="
    a: int = 1  # exponent of x in pow_sum
    b: int = 1  # exponent of y in pow_sum
    frac_train: float = 0.3  # share of all pairs used for training
    seed: int = 0  # seed of the train/test split

    def __post_init__(self) -> None:
        if self.p < 2:
            raise ValueError(f"task.p must be at least 2; got {self.p}")
        if self.op == "div" and not is_prime(self.p):
            raise ValueError(f"task.op=div needs a prime p (a field); {self.p} is not prime")
        if self.op != "pow_sum" and (self.a, self.b) != (1, 1):
            raise ValueError("task.a and task.b are exponents of op=pow_sum; leave them at 1")
        if self.a < 1 or self.b < 1:
            raise ValueError(f"task.a and task.b must be at least 1; got a={self.a}, b={self.b}")
        self.check_split()

    @property
    def n_examples(self) -> int:
        return self.p * (self.p - 1) if self.op == "div" else self.p * self.p

    @property
    def expression(self) -> str:
        """The label in words, without the modulus: ``x + y``, ``x^3 + y^4``, ``min(x, y)``."""
        return {"add": "x + y", "sub": "x - y", "mul": "x * y", "div": "x / y", "pow_sum": f"x^{self.a} + y^{self.b}",
                "min": "min(x, y)", "max": "max(x, y)", "random": "a random label per pair"}[self.op]

    def build(self) -> "ModularTask":
        return ModularTask(self)


class ModularTask(PairTask):
    """Tokens ``x y =`` with ``=`` the token ``p``; the label ``z`` is read at ``=`` (position 2).

    Example, p = 113, op = add: tokens ``[5, 110, 113]`` -> label ``[2]``.
    Pairs are enumerated row-major: example ``i`` is ``x = i // p, y = i % p`` (for ``div``,
    ``y`` runs over ``1..p-1``).
    """

    def __init__(self, config: ModularConfig):
        self.config = config

    @property
    def n_symbols(self) -> int:
        return self.config.p

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` and ``y`` of every example, in enumeration order; each [example]."""
        p = self.config.p
        ys = torch.arange(1 if self.config.op == "div" else 0, p)
        x = torch.arange(p).repeat_interleave(len(ys))
        y = ys.repeat(p)
        return x, y

    def label(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(x op y) mod p`` elementwise, exact in int64."""
        p, op = self.config.p, self.config.op
        if op == "add":
            return (x + y) % p
        if op == "sub":
            return (x - y) % p
        if op == "mul":
            return (x * y) % p
        if op == "div":
            inverse = torch.tensor([pow(int(v), -1, p) for v in range(1, p)])
            return (x * inverse[y - 1]) % p
        if op == "min":
            return torch.minimum(x, y)
        if op == "max":
            return torch.maximum(x, y)
        if op == "random":  # a label per pair drawn once from the split seed's own generator
            table = torch.randint(0, p, (p, p), generator=torch.Generator().manual_seed(10_007 + self.config.seed))
            return table[x, y]
        return (power_values(p, self.config.a)[x] + power_values(p, self.config.b)[y]) % p

    def natural_coordinates(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """For pow_sum with both powers bijective on Z_p (gcd(a, p-1) = gcd(b, p-1) = 1, p prime):
        ``x_of_u [p]`` and ``y_of_v [p]``, the inputs whose powers are u and v. In (u, v) the task
        is plain addition, ``z = u + v``, so a model can embed ``cos(w u)`` directly and the
        Fourier analysis belongs in that basis. None for every other task (x and y are natural)."""
        c = self.config
        if c.op != "pow_sum" or not is_prime(c.p) or (c.a, c.b) == (1, 1):
            return None
        if math.gcd(c.a, c.p - 1) != 1 or math.gcd(c.b, c.p - 1) != 1:
            return None
        return torch.argsort(power_values(c.p, c.a)), torch.argsort(power_values(c.p, c.b))

    def input_statistics(self) -> dict[str, int]:
        """How many values each input contributes to the label (pow_sum: x^a and y^b mod p; every
        other op: x and y themselves, p each), and how many of the two are bijections of Z_p."""
        c = self.config
        exponents = (c.a, c.b) if c.op == "pow_sum" else (1, 1)
        x_values, y_values = (power_values(c.p, e).unique().numel() for e in exponents)
        return {"values_x": x_values, "values_y": y_values,
                "bijective_inputs": int(x_values == c.p) + int(y_values == c.p)}

    def label_statistics(self) -> dict[str, float]:
        """How the labels of every pair spread over the p residues (seed 001 blames an uneven
        spread for pow_sum runs that do not grok): residues hit, entropy in bits against its
        maximum log2(p), and the share of the commonest residue."""
        counts = torch.bincount(self.label(*self.pairs()), minlength=self.config.p).double()
        share = counts / counts.sum()
        nonzero = share[share > 0]
        return {"residues_hit": int((counts > 0).sum()),
                "label_entropy_bits": float(-(nonzero * nonzero.log2()).sum()),
                "max_entropy_bits": math.log2(self.config.p),
                "top_label_share": float(share.max())}

    def dataset(self) -> Dataset:
        x, y = self.pairs()
        equals = torch.full_like(x, self.config.p)
        tokens = torch.stack([x, y, equals], dim=1)  # [example, 3]
        labels = self.label(x, y)[:, None]  # [example, 1]
        return Dataset(tokens=tokens, labels=labels, target_positions=self.target_positions)
