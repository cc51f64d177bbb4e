"""Transformer components with TransformerLens's parameter names, shapes and hook points.

Axes: ``batch``; ``pos`` (all positions, ``n_ctx``) and ``qpos`` (the query positions being
computed, all of ``pos`` or just the scored ones); ``head``; ``d_model``, ``d_head``,
``d_mlp``, ``d_vocab``, ``d_vocab_out``. Weights right-multiply: ``x @ W``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from grokscope.models.hooks import HookPoint


class Embed(nn.Module):
    """Token embedding ``W_E [d_vocab, d_model]``."""

    def __init__(self, d_vocab: int, d_model: int):
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(d_vocab, d_model))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [batch, pos] -> [batch, pos, d_model]
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    """Learned positional embedding ``W_pos [n_ctx, d_model]``."""

    def __init__(self, n_ctx: int, d_model: int):
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(n_ctx, d_model))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [batch, pos] -> [batch, pos, d_model]
        return self.W_pos[: tokens.shape[1]].expand(tokens.shape[0], -1, -1)


class LayerNorm(nn.Module):
    """LayerNorm as TransformerLens writes it: centre, divide by RMS (``hook_scale``), ``* w + b``."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d_model))
        self.b = nn.Parameter(torch.zeros(d_model))
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x / scale * self.w + self.b)


class Attention(nn.Module):
    """Causal multi-head attention; ``W_Q/W_K/W_V [head, d_model, d_head]``, ``W_O [head, d_head, d_model]``.

    Scores are divided by ``sqrt(d_head)``. ``mask [n_ctx, n_ctx]`` (True where a query may
    attend) and ``IGNORE`` are buffers, as in TransformerLens's state dict.

    ``attention_rate`` alpha (Zhong et al., 2023) mixes the softmax pattern with constant
    attention: ``pattern = alpha * softmax(scores) + (1 - alpha)`` on every allowed position, so
    alpha = 0 sums the values of all earlier positions (their "pizza"-prone model) and alpha = 1
    (the default) is ordinary attention.
    """

    def __init__(self, n_heads: int, d_model: int, d_head: int, n_ctx: int, attention_rate: float = 1.0):
        super().__init__()
        self.n_heads, self.d_head, self.attention_rate = n_heads, d_head, attention_rate
        self.W_Q = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_K = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_V = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_O = nn.Parameter(torch.empty(n_heads, d_head, d_model))
        self.b_Q = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_K = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_V = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_O = nn.Parameter(torch.zeros(d_model))
        self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool)))
        self.register_buffer("IGNORE", torch.tensor(-torch.inf))
        self.hook_q = HookPoint()  # [batch, qpos, head, d_head]
        self.hook_k = HookPoint()  # [batch, pos, head, d_head]
        self.hook_v = HookPoint()  # [batch, pos, head, d_head]
        self.hook_attn_scores = HookPoint()  # [batch, head, qpos, pos]
        self.hook_pattern = HookPoint()  # [batch, head, qpos, pos]
        self.hook_z = HookPoint()  # [batch, qpos, head, d_head]

    def project(self, x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``x @ W[h] + b[h]`` for every head: [batch, pos, d_model] -> [batch, pos, head, d_head]."""
        n_heads, d_model, d_head = W.shape
        flat = W.permute(1, 0, 2).reshape(d_model, n_heads * d_head)
        return (x @ flat).view(*x.shape[:-1], n_heads, d_head) + b

    def forward(
        self, x: torch.Tensor, query_positions: torch.Tensor | None = None
    ) -> torch.Tensor:  # [batch, pos, d_model] -> [batch, qpos, d_model]
        n_pos = x.shape[1]
        qpos = torch.arange(n_pos) if query_positions is None else query_positions
        x_query = x if query_positions is None else x[:, query_positions]
        q = self.hook_q(self.project(x_query, self.W_Q, self.b_Q))
        k = self.hook_k(self.project(x, self.W_K, self.b_K))
        v = self.hook_v(self.project(x, self.W_V, self.b_V))
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.d_head)
        allowed = self.mask[qpos][:, :n_pos]  # [qpos, pos]
        scores = self.hook_attn_scores(torch.where(allowed, scores, self.IGNORE))
        pattern = scores.softmax(dim=-1)  # [batch, head, qpos, pos]
        if self.attention_rate != 1.0:
            pattern = self.attention_rate * pattern + (1.0 - self.attention_rate) * allowed.to(pattern.dtype)
        pattern = self.hook_pattern(pattern)
        z = self.hook_z(torch.einsum("bhqk,bkhd->bqhd", pattern, v))
        W_O_flat = self.W_O.reshape(self.n_heads * self.d_head, -1)  # [(head d_head), d_model]
        return z.reshape(*z.shape[:2], -1) @ W_O_flat + self.b_O


def init_paper_weights(model: nn.Module, seed: int, d_model: int, d_vocab: int) -> None:
    """Nanda et al. (2023)'s initialisation, from its own generator (global RNGs untouched).

    Every ``W_*`` is N(0, 1/d_model) except ``W_U``, N(0, 1/d_vocab); biases are zero and
    LayerNorm weights one. Parameters are drawn in ``named_parameters()`` order.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf.startswith("W_"):
                std = 1 / math.sqrt(d_vocab if leaf == "W_U" else d_model)
                param.copy_(torch.randn(param.shape, generator=gen) * std)
            elif leaf == "w":
                param.fill_(1.0)
            else:
                param.zero_()


def freeze_biases(model: nn.Module) -> None:
    """Keep every ``b_*`` at its value (zero) and out of training, as in Nanda et al.'s code."""
    for name, param in model.named_parameters():
        if name.rsplit(".", 1)[-1].startswith("b_"):
            param.requires_grad_(False)


class MLP(nn.Module):
    """``act(x @ W_in + b_in) @ W_out + b_out``; ``W_in [d_in, d_mlp]``, ``W_out [d_mlp, d_model]``
    (``d_in = d_model`` inside a transformer block)."""

    def __init__(self, d_model: int, d_mlp: int, act_fn: str, d_in: int | None = None):
        super().__init__()
        self.act_fn = act_fn
        self.W_in = nn.Parameter(torch.empty(d_in or d_model, d_mlp))
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = nn.Parameter(torch.empty(d_mlp, d_model))
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_in] -> [batch, pos, d_model]
        pre = self.hook_pre(x @ self.W_in + self.b_in)
        post = self.hook_post(F.relu(pre) if self.act_fn == "relu" else F.gelu(pre))
        return post @ self.W_out + self.b_out


class Unembed(nn.Module):
    """``x @ W_U + b_U``; ``W_U [d_model, d_vocab_out]``."""

    def __init__(self, d_model: int, d_vocab_out: int):
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(d_model, d_vocab_out))
        self.b_U = nn.Parameter(torch.zeros(d_vocab_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model] -> [batch, pos, d_vocab_out]
        return x @ self.W_U + self.b_U


class TransformerBlock(nn.Module):
    """Attention then (unless attention-only) MLP, each added to the residual stream."""

    def __init__(self, n_heads: int, d_model: int, d_head: int, d_mlp: int, n_ctx: int,
                 act_fn: str, attn_only: bool, layer_norm: bool, attention_rate: float = 1.0):
        super().__init__()
        self.attn_only = attn_only
        self.ln1 = LayerNorm(d_model) if layer_norm else nn.Identity()
        self.attn = Attention(n_heads, d_model, d_head, n_ctx, attention_rate)
        if not attn_only:
            self.ln2 = LayerNorm(d_model) if layer_norm else nn.Identity()
            self.mlp = MLP(d_model, d_mlp, act_fn)
        self.hook_resid_pre = HookPoint()  # [batch, pos, d_model]
        self.hook_attn_out = HookPoint()  # [batch, qpos, d_model]
        if not attn_only:
            self.hook_resid_mid = HookPoint()  # [batch, qpos, d_model]
            self.hook_mlp_out = HookPoint()  # [batch, qpos, d_model]
        self.hook_resid_post = HookPoint()  # [batch, qpos, d_model]

    def forward(
        self, resid_pre: torch.Tensor, query_positions: torch.Tensor | None = None
    ) -> torch.Tensor:  # [batch, pos, d_model] -> [batch, qpos, d_model]
        """Run the block; with ``query_positions`` only those positions' outputs are computed."""
        resid_pre = self.hook_resid_pre(resid_pre)
        attn_out = self.hook_attn_out(self.attn(self.ln1(resid_pre), query_positions))
        resid_query = resid_pre if query_positions is None else resid_pre[:, query_positions]
        if self.attn_only:
            return self.hook_resid_post(resid_query + attn_out)
        resid_mid = self.hook_resid_mid(resid_query + attn_out)
        mlp_out = self.hook_mlp_out(self.mlp(self.ln2(resid_mid)))
        return self.hook_resid_post(resid_mid + mlp_out)
