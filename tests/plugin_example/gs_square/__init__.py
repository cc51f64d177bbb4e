"""An outside package's task for grokscope's entry-point test: (x^2 + y^2) mod p, registered on import."""

from dataclasses import dataclass

import torch

from grokscope.tasks import TASKS, TaskConfig
from grokscope.tasks.base import Dataset, Task


@TASKS.register
@dataclass(frozen=True)
class SquareSumConfig(TaskConfig):
    """(x^2 + y^2) mod p over every pair, read at '='."""

    kind = "square_sum"
    p: int = 13  # modulus; tokens 0..p-1 are the numbers, token p is "="
    frac_train: float = 0.5  # share of the pairs used for training
    seed: int = 0  # seed of the split

    @property
    def n_examples(self) -> int:
        return self.p * self.p

    def build(self) -> "SquareSum":
        return SquareSum(self)


class SquareSum(Task):
    def __init__(self, config: SquareSumConfig):
        self.config = config

    d_vocab = property(lambda self: self.config.p + 1)
    d_vocab_out = property(lambda self: self.config.p)
    n_ctx = property(lambda self: 3)
    target_positions = property(lambda self: (2,))

    def dataset(self) -> Dataset:
        p = self.config.p
        x, y = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
        tokens = torch.stack([x, y, torch.full_like(x, p)], dim=1)
        return Dataset(tokens=tokens, labels=((x * x + y * y) % p)[:, None], target_positions=(2,))
