"""A TransformerLens-compatible transformer: same state-dict keys, shapes and hook names.

Defaults are Nanda et al. (2023)'s 1-layer modular-addition model: d_model 128, 4 heads of
32, d_mlp 512, ReLU, no LayerNorm, learned positional embeddings. ``forward`` can compute
only the positions the loss reads (``query_positions``): earlier layers still run every
position, the last layer's queries, MLP and the unembedding run only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from grokscope.models.base import MODELS, GrokscopeModel, ModelConfig
from grokscope.models.components import (
    Embed, LayerNorm, PosEmbed, TransformerBlock, Unembed, freeze_biases,
)
from grokscope.models.hooks import HookPoint


@MODELS.register
@dataclass(frozen=True)
class TransformerConfig(ModelConfig):
    """Architecture, in HookedTransformerConfig's words."""

    kind = "transformer"
    n_layers: int = 1  # the paper's model has one block
    d_model: int = 128  # residual stream width
    n_heads: int = 4  # attention heads per block
    d_head: int = 32  # width of each head
    d_mlp: int = 512  # MLP hidden neurons (ignored when attn_only)
    act_fn: Literal["relu", "gelu"] = "relu"  # MLP non-linearity
    attn_only: bool = False  # drop the MLPs
    normalization_type: Literal["LN"] | None = None  # None: no LayerNorm, as in the paper
    train_biases: bool = False  # False: b_* stay zero and untrained (Nanda's set-up); always in the state dict
    attention_rate: float = 1.0  # Zhong et al.'s alpha: 1 softmax attention, 0 constant attention (components.Attention)

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be at least 1; got {getattr(self, name)}")
        if not 0.0 <= self.attention_rate <= 1.0:  # (NaN fails too)
            raise ValueError(f"model.attention_rate must be between 0 and 1; got {self.attention_rate}")
        for name, most in (("n_layers", 64), ("n_heads", 1024)):  # small algorithmic models; each is a module
            if getattr(self, name) > most:
                raise ValueError(f"model.{name} must be at most {most}; got {getattr(self, name)}")

    def build(self, d_vocab: int, d_vocab_out: int, n_ctx: int) -> "Transformer":
        return Transformer(self, d_vocab, d_vocab_out, n_ctx)

    def summary(self) -> str:
        kind = "attention-only transformer" if self.attn_only else "transformer"
        mlp = "" if self.attn_only else f", d_mlp {self.d_mlp}, {self.act_fn}"
        norm = ", LayerNorm" if self.normalization_type == "LN" else ""
        rate = f", attention rate {self.attention_rate:g}" if self.attention_rate != 1.0 else ""
        return f"{self.n_layers}-layer {kind}, d_model {self.d_model}, {self.n_heads} heads × {self.d_head}{mlp}{norm}{rate}"


class Transformer(GrokscopeModel):
    """Embed + positional embed, ``n_layers`` blocks, optional final LayerNorm, unembed.

    ``forward(tokens [batch, pos]) -> logits [batch, pos, d_vocab_out]``; with
    ``query_positions`` the logits are ``[batch, len(query_positions), d_vocab_out]``.
    """

    def __init__(self, cfg: TransformerConfig, d_vocab: int, d_vocab_out: int, n_ctx: int):
        super().__init__()
        self.cfg = cfg
        self.d_vocab, self.d_vocab_out, self.n_ctx = d_vocab, d_vocab_out, n_ctx
        self.embed = Embed(d_vocab, cfg.d_model)
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        self.pos_embed = PosEmbed(n_ctx, cfg.d_model)
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_mlp, n_ctx,
                             cfg.act_fn, cfg.attn_only, cfg.normalization_type == "LN", cfg.attention_rate)
            for _ in range(cfg.n_layers)
        )
        if cfg.normalization_type == "LN":
            self.ln_final = LayerNorm(cfg.d_model)
        self.unembed = Unembed(cfg.d_model, d_vocab_out)
        if not cfg.train_biases:
            freeze_biases(self)
        self.setup()

    def forward(
        self, tokens: torch.Tensor, query_positions: torch.Tensor | None = None
    ) -> torch.Tensor:  # [batch, pos] -> [batch, qpos, d_vocab_out]
        resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            resid = block(resid, query_positions if i == last else None)
        if self.cfg.normalization_type == "LN":
            resid = self.ln_final(resid)
        return self.unembed(resid)

    @property
    def final_mlp(self):
        """The last block's MLP (the neurons the analysis reads), or None if attention-only."""
        return None if self.cfg.attn_only else self.blocks[-1].mlp

    @property
    def readout_hooks(self) -> dict[str, str | None]:
        """Hook names of the last block's neurons, residual before its MLP and attention pattern."""
        last = f"blocks.{len(self.blocks) - 1}"
        mlp = not self.cfg.attn_only
        return {"neurons": f"{last}.mlp.hook_post" if mlp else None,
                "resid_mid": f"{last}.hook_resid_mid" if mlp else None,
                "pattern": self.pattern_hooks[-1]}

    @property
    def pattern_hooks(self) -> list[str]:
        """Every block's attention-pattern hook, in layer order (``blocks.{l}.attn.hook_pattern``),
        read off the module tree."""
        return [name for name, _ in self.named_modules() if name.endswith(".attn.hook_pattern")]

    @property
    def W_pos(self) -> torch.Tensor:  # [n_ctx, d_model]
        return self.pos_embed.W_pos

