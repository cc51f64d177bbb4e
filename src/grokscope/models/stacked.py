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

from grokscope.models.folded import stack_parameters, stacked_folded_logits, supports_folded


def stacked_logits(models: list[torch.nn.Module], tokens: torch.Tensor, query_positions: torch.Tensor,
                   folded: bool, sizes: list[int] | None = None) -> torch.Tensor:
    """tokens [member, batch, pos] -> logits [member, batch, qpos, d_vocab_out]; ``folded``: take
    the folded path where it is exact; ``sizes``: each member's real examples (the rest pad it).

    Each member gets its solo run's logits and gradients up to float32 rounding: batched and
    single matrix products may round differently (the BLAS kernel depends on shape and batch
    count; on the AMD EPYC here the canonical shapes gave identical bits, d_model 32 did not).
    Through vmap, a member padded to a larger batch also sums its weight gradients over the
    zero-padded rows."""
    if folded and supports_folded(models[0]):
        return stacked_folded_logits(models, tokens, query_positions, sizes)
    weights = stack_parameters(models)  # [member, *shape]
    buffers = dict(models[0].named_buffers())  # masks and constants, the same in every member

    def one(member_weights: dict, member_tokens: torch.Tensor) -> torch.Tensor:
        return functional_call(models[0], (member_weights, buffers), (member_tokens, query_positions))

    return vmap(one)(weights, tokens)
