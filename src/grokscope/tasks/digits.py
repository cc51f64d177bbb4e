"""n-digit addition, the phase-change example of Nanda et al.'s grokking write-up (seed 003)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokscope.tasks.base import TASKS, SampledTask, SampledTaskConfig

PLUS, EQUALS = 10, 11


@TASKS.register
@dataclass(frozen=True)
class DigitAdditionConfig(SampledTaskConfig):
    """n-digit addition ``a + b = c``, one loss per answer digit (each has its own phase change)."""

    kind = "digit_add"
    n_digits: int = 5  # digits of each operand; the answer has n_digits + 1
    reverse: bool = False  # write every number least-significant digit first
    n_train: int = 10_000  # distinct training examples drawn with seed
    n_test: int = 2_000  # distinct held-out examples
    seed: int = 0  # seed of the drawn examples

    def __post_init__(self) -> None:
        if not 1 <= self.n_digits <= 18:
            raise ValueError(f"task.n_digits must be in 1..18; got {self.n_digits}")
        self.check_split()

    def build(self) -> "DigitAdditionTask":
        return DigitAdditionTask(self)


class DigitAdditionTask(SampledTask):
    """Tokens: digits 0-9, ``+`` = 10, ``=`` = 11. For n = 5:

    ``1 3 4 5 2 + 5 8 3 2 1 = 0 7 1 7 7 3`` is 13452 + 58321 = 071773; the model reads every
    token but the last and predicts each answer digit at the position before it (teacher
    forcing), so the targets are positions 11..16 with labels ``0 7 1 7 7 3``. With
    ``reverse`` every number is written least-significant digit first (``2 5 4 3 1 + ...``).
    Operands are uniform over 0 .. 10^n - 1 (leading zeros written).
    """

    def __init__(self, config: DigitAdditionConfig):
        self.config = config

    @property
    def d_vocab(self) -> int:
        return 12

    @property
    def d_vocab_out(self) -> int:
        return 10

    @property
    def n_ctx(self) -> int:
        return 3 * self.config.n_digits + 2

    @property
    def target_positions(self) -> tuple[int, ...]:
        n = self.config.n_digits
        return tuple(range(2 * n + 1, 3 * n + 2))

    @property
    def target_names(self) -> list[str]:
        """``digit0`` is the answer's first written digit (the carry-out, unless reversed)."""
        return [f"digit{i}" for i in range(self.config.n_digits + 1)]

    def digits(self, x: torch.Tensor, width: int) -> torch.Tensor:
        """x [n] -> its ``width`` decimal digits in written order [n, width]."""
        powers = 10 ** torch.arange(width - 1, -1, -1)
        out = (x[:, None] // powers) % 10
        return out.flip(1) if self.config.reverse else out

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        width = self.config.n_digits
        a = torch.randint(0, 10 ** width, (n,), generator=generator)
        b = torch.randint(0, 10 ** width, (n,), generator=generator)
        answer = self.digits(a + b, width + 1)  # [n, width + 1]
        tokens = torch.cat([self.digits(a, width), torch.full((n, 1), PLUS), self.digits(b, width),
                            torch.full((n, 1), EQUALS), answer[:, :-1]], dim=1)  # [n, 3 * width + 2]
        return tokens, answer
