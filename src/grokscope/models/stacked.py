"""The logits of E models of one shape at once (an ensemble), each on its own examples.

Members' weights are stacked on a leading member axis every step, so each member keeps its
own parameters (and its own optimizer and filter state) and gradients flow back to them
through the stack. 1-layer LayerNorm-free transformers go through the folded tables
(``stacked_folded_logits``); every other model through ``torch.func.vmap`` of its own forward
over the stacked weights. The same code runs on every device.
"""

from __future__ import annotations

import torch
from torch.func import functional_call, vmap

from grokscope.models.folded import stacked_folded_logits, supports_folded


def stacked_logits(models: list[torch.nn.Module], tokens: torch.Tensor, query_positions: torch.Tensor,
                   folded: bool, sizes: list[int] | None = None) -> torch.Tensor:
    """tokens [member, batch, pos] -> logits [member, batch, qpos, d_vocab_out]; ``folded``: take
    the folded path where it is exact; ``sizes``: each member's real examples (the rest pad it).

    The folded path gives each member exactly its solo run's bits (tests/test_ensemble.py).
    Through vmap, members padded to a larger batch differ from their solo runs by float32
    rounding (their weight gradients sum over a longer, zero-padded batch); equal batches match."""
    if folded and supports_folded(models[0]):
        return stacked_folded_logits(models, tokens, query_positions, sizes)
    names = [name for name, _ in models[0].named_parameters()]
    weights = {n: torch.stack([dict(m.named_parameters())[n] for m in models]) for n in names}  # [member, *shape]
    buffers = dict(models[0].named_buffers())  # masks and constants, the same in every member

    def one(member_weights: dict, member_tokens: torch.Tensor) -> torch.Tensor:
        return functional_call(models[0], (member_weights, buffers), (member_tokens, query_positions))

    return vmap(one)(weights, tokens)
