"""Predicting a repeated subsequence (seed 003): a task only an induction circuit solves."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokscope.tasks.base import IGNORE, TASKS, SampledTask, SampledTaskConfig


@TASKS.register
@dataclass(frozen=True)
class RepeatedSubsequenceConfig(SampledTaskConfig):
    """Uniform random tokens with one subsequence repeated later; predict the repeated tokens."""

    kind = "repeated_subsequence"
    length: int = 24  # tokens per sequence
    n_values: int = 20  # token values 0 .. n_values - 1
    sub_length: int = 6  # length of the repeated subsequence
    n_train: int = 50_000  # distinct training examples drawn with seed
    n_test: int = 2_000  # distinct held-out examples
    seed: int = 0  # seed of the drawn examples

    def __post_init__(self) -> None:
        if self.n_values < 2 or self.sub_length < 2 or 2 * self.sub_length > self.length:
            raise ValueError("task.repeated_subsequence needs n_values >= 2, sub_length >= 2 and "
                             f"2 * sub_length <= length; got {self.n_values}, {self.sub_length}, {self.length}")
        self.check_split()

    def build(self) -> "RepeatedSubsequenceTask":
        return RepeatedSubsequenceTask(self)


class RepeatedSubsequenceTask(SampledTask):
    """``7 2 8 3 1 9 3 8 3 1 9 9 2 5``: ``8 3 1 9`` (positions 2-5) reappears at 7-10.

    Every position predicts the next token, but only the predictable ones are scored: inside the
    second copy, after its first token (positions 7-9 predicting ``3 1 9``); every other label
    is IGNORE. Previous tokens are independent of the next one everywhere else, so a previous-token
    head alone never lowers the loss: only the whole induction circuit does.
    """

    def __init__(self, config: RepeatedSubsequenceConfig):
        self.config = config

    d_vocab = property(lambda self: self.config.n_values)
    d_vocab_out = property(lambda self: self.config.n_values)
    n_ctx = property(lambda self: self.config.length)
    target_positions = property(lambda self: tuple(range(self.config.length - 1)))

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        k = c.sub_length
        tokens = torch.randint(0, c.n_values, (n, c.length), generator=generator)
        first = (torch.rand(n, generator=generator) * (c.length - 2 * k + 1)).long()  # 0 .. length - 2k
        second = first + k + (torch.rand(n, generator=generator) * (c.length - 2 * k - first + 1)).long()
        offsets = torch.arange(k)
        rows = torch.arange(n)[:, None]
        tokens[rows, second[:, None] + offsets] = tokens[rows, first[:, None] + offsets]
        labels = torch.full((n, c.length - 1), IGNORE)
        scored = second[:, None] + offsets[:-1]  # [n, k - 1]: positions that predict the copy's next token
        labels[rows, scored] = tokens[rows, scored + 1]
        return tokens, labels
