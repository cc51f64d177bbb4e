"""A 2-layer MLP for tasks with one answer: one hidden layer on the inputs' concatenated embeddings.

Nanda et al. (2023) report that such MLPs also grok modular addition with the same
Fourier-multiplication algorithm, spread over more frequencies. Names follow TransformerLens
where they can: ``embed.W_E [d_vocab, d_model]``; ``mlp.W_in [n_ctx * d_model, d_mlp]``
(position-major: rows ``k * d_model .. (k+1) * d_model`` read position k), ``mlp.W_out
[d_mlp, d_model]``; ``unembed.W_U [d_model, d_vocab_out]``; hooks ``hook_embed``,
``mlp.hook_pre``, ``mlp.hook_post`` and ``hook_mlp_out``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from grokscope.errors import GrokscopeError
from grokscope.models.base import MODELS, GrokscopeModel, ModelConfig
from grokscope.models.components import MLP, Embed, Unembed, freeze_biases
from grokscope.models.hooks import HookPoint


@MODELS.register
@dataclass(frozen=True)
class MLPConfig(ModelConfig):
    """Embedding width, hidden width and non-linearity of the 2-layer MLP."""

    kind = "mlp"
    d_model: int = 128  # embedding width (per input position) and output width of W_out
    d_mlp: int = 512  # hidden neurons
    act_fn: Literal["relu", "gelu"] = "relu"  # hidden non-linearity
    train_biases: bool = False  # False: b_* stay zero and untrained, as for the transformer

    def __post_init__(self) -> None:
        for name in ("d_model", "d_mlp"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be at least 1; got {getattr(self, name)}")

    def build(self, d_vocab: int, d_vocab_out: int, n_ctx: int) -> "MLPModel":
        return MLPModel(self, d_vocab, d_vocab_out, n_ctx)

    def summary(self) -> str:
        return f"2-layer MLP on the concatenated embeddings, d_model {self.d_model}, d_mlp {self.d_mlp}, {self.act_fn}"


class MLPModel(GrokscopeModel):
    """``logits = (act(concat_k W_E[t_k]) @ W_in + b_in) @ W_out + b_out) @ W_U + b_U``, read at the
    last position: ``forward(tokens [batch, pos]) -> [batch, 1, d_vocab_out]``."""

    def __init__(self, cfg: MLPConfig, d_vocab: int, d_vocab_out: int, n_ctx: int):
        super().__init__()
        self.cfg = cfg
        self.d_vocab, self.d_vocab_out, self.n_ctx = d_vocab, d_vocab_out, n_ctx
        self.embed = Embed(d_vocab, cfg.d_model)
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        self.mlp = MLP(cfg.d_model, cfg.d_mlp, cfg.act_fn, d_in=n_ctx * cfg.d_model)
        self.hook_mlp_out = HookPoint()  # [batch, 1, d_model]
        self.unembed = Unembed(cfg.d_model, d_vocab_out)
        if not cfg.train_biases:
            freeze_biases(self)
        self.setup()

    def forward(self, tokens: torch.Tensor, query_positions: torch.Tensor | None = None) -> torch.Tensor:
        if query_positions is not None and [int(q) for q in query_positions] != [self.n_ctx - 1]:
            raise GrokscopeError("model.kind=mlp predicts one answer, read at the last position; "
                                 "this task scores other positions (use a transformer)")
        embedded = self.hook_embed(self.embed(tokens))  # [batch, pos, d_model]
        x = embedded.reshape(len(tokens), 1, -1)  # [batch, 1, pos * d_model]
        return self.unembed(self.hook_mlp_out(self.mlp(x)))  # [batch, 1, d_vocab_out]

    @property
    def final_mlp(self) -> MLP:
        return self.mlp

    @property
    def readout_hooks(self) -> dict[str, str | None]:
        """Hook names of the neurons; an MLP has no residual before them and no attention."""
        return {"neurons": "mlp.hook_post", "resid_mid": None, "pattern": None}

