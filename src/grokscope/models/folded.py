"""Exact last-position logits of a 1-layer, LayerNorm-free transformer from per-token tables.

Without LayerNorm, the residual stream entering the block at position ``k`` is
``R_k[t] = W_E[t] + W_pos[k]``: a function of the token alone. Everything linear in it can
be tabulated per (position, token, head) once per step instead of once per example, for the
query tokens ``u`` and the (key position, token) pairs ``n`` that occur in the batch (in
(x + y) mod p: one query token and 2p + 1 key pairs):

- attention scores ``S[u, n, h] = (R_q W_Q + b_Q)[u] . (R_k W_K + b_K)[n] / sqrt(d_head)``;
- each head's value output pushed through ``W_O`` and on into both ``W_in`` and ``W_U``:
  ``T[h, n] = (R_k W_V + b_V)[n] W_O[h] [W_in | W_U]``;
- the query position's own residual ``B[u] = R_q[u] [W_in | W_U]``.

Per example the MLP input and the residual's direct logits are then one weighted sum of
``1 + n_keys * n_heads`` table rows (``embedding_bag``, weights = the attention pattern),
and the MLP output reaches the logits through ``W_L = W_out W_U`` (as in Nanda et al.).
The only per-example matmul left is ``act(pre) @ W_L``. Gradients flow through the tables
to the original weights; tests prove logits, loss and gradients equal the plain forward.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from grokscope.models.transformer import Transformer


class RowMix(torch.autograd.Function):
    """``out[b] = sum_j weights[b, j] * table[index[b, j]]``, with a sparse backward.

    ``index [batch, bag]`` must be sorted and free of repeats within each row. Forward is
    ``embedding_bag``; backward treats the bag as a sparse matrix ``A [batch, rows]`` (values
    = weights): ``grad_table = A^T g`` and ``grad_weights = (g table^T)`` sampled at A's
    entries (``sampled_addmm``), several times faster than embedding_bag's own backward.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(table, index, weights)
        return F.embedding_bag(index, table, per_sample_weights=weights, mode="sum")  # [batch, width]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        table, index, weights = ctx.saved_tensors
        batch, bag = index.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            A = torch.sparse_csr_tensor(torch.arange(0, batch * bag + 1, bag, device=index.device), index.flatten(),
                                        weights.flatten(), size=(batch, table.shape[0]))
            grad_table = torch.sparse.mm(A.to_sparse_coo().t(), grad) if ctx.needs_input_grad[0] else None
            grad_weights = None
            if ctx.needs_input_grad[2]:
                grad_weights = torch.sparse.sampled_addmm(A, grad, table.T, beta=0.0).values().reshape(batch, bag)
        return grad_table, None, grad_weights


def supports_folded(model: torch.nn.Module) -> bool:
    """Whether ``folded_logits`` computes this model exactly (1 layer, no LayerNorm)."""
    return isinstance(model, Transformer) and model.cfg.n_layers == 1 and model.cfg.normalization_type is None


def folded_logits(model: Transformer, tokens: torch.Tensor, query_positions: torch.Tensor) -> torch.Tensor:
    """``model(tokens, query_positions)`` computed from per-token tables (no hooks fire).

    tokens [batch, pos] -> logits [batch, qpos, d_vocab_out].
    """
    return torch.stack([_logits_at(model, tokens, int(q)) for q in query_positions], dim=1)


def _logits_at(model: Transformer, tokens: torch.Tensor, q: int) -> torch.Tensor:
    """Logits at query position ``q``: [batch, d_vocab_out]."""
    block = model.blocks[0]
    attn = block.attn
    n_keys, d_vocab = q + 1, model.d_vocab
    n_heads, d_head = attn.n_heads, attn.d_head
    W_U = model.unembed.W_U  # [d_model, d_vocab_out]
    W_read = W_U if block.attn_only else torch.cat([block.mlp.W_in, W_U], dim=1)  # [d_model, n_read]

    t_q, t_k = tokens[:, q], tokens[:, :n_keys]  # [batch], [batch, key]
    # rows only for the (position, token) pairs in this batch: query tokens u, key pairs n
    used_q, inv_q = torch.unique(t_q, return_inverse=True)  # [n_q], [batch]
    used_k, inv_k = torch.unique(torch.arange(n_keys, device=tokens.device) * d_vocab + t_k, return_inverse=True)  # [n_k], [batch, key]
    n_q, n_k = len(used_q), len(used_k)
    R_q = model.embed.W_E[used_q] + model.pos_embed.W_pos[q]  # [n_q, d_model]
    R_k = model.embed.W_E[used_k % d_vocab] + model.pos_embed.W_pos[used_k // d_vocab]  # [n_k, d_model]

    Q = torch.einsum("um,hmd->uhd", R_q, attn.W_Q) + attn.b_Q  # [n_q, head, d_head]
    K = torch.einsum("nm,hmd->nhd", R_k, attn.W_K) + attn.b_K  # [n_k, head, d_head]
    S = torch.einsum("uhd,nhd->unh", Q, K) / math.sqrt(d_head)  # [n_q, n_k, head]
    scores = S.reshape(n_q * n_k, n_heads)[inv_q[:, None] * n_k + inv_k]  # [batch, key, head]
    rate = attn.attention_rate  # constant attention mixed in (Zhong et al.'s alpha; 1: none)
    pattern = scores.softmax(dim=1).transpose(1, 2)  # [batch, head, key]
    if rate != 1.0:
        pattern = rate * pattern + (1.0 - rate)

    V = torch.einsum("nm,hmd->nhd", R_k, attn.W_V) + attn.b_V  # [n_k, head, d_head]
    OV_read = torch.einsum("hdm,mr->hdr", attn.W_O, W_read)  # [head, d_head, n_read]
    T = torch.einsum("nhd,hdr->hnr", V, OV_read)  # [head, n_k, n_read]
    base = R_q @ W_read + _read_bias(model, W_read)  # [n_q, n_read]: the query's own row, every bias folded in
    table = torch.cat([base, T.reshape(-1, W_read.shape[1])])  # [n_q + head*n_k, n_read]
    rows = n_q + torch.arange(n_heads, device=tokens.device)[:, None] * n_k + inv_k[:, None, :]  # [batch, head, key]
    bag = torch.cat([inv_q[:, None], rows.flatten(1)], dim=1)  # [batch, 1 + head*key], sorted per row
    weights = torch.cat([torch.ones_like(t_q[:, None], dtype=pattern.dtype), pattern.flatten(1)], dim=1)
    read = RowMix.apply(table, bag, weights)  # [batch, n_read]: MLP pre-activation | direct logits
    if block.attn_only:
        return read
    mlp = block.mlp
    d_mlp = mlp.W_in.shape[1]
    pre, direct = read.split([d_mlp, read.shape[1] - d_mlp], dim=1)  # (split's backward is one cat)
    post = F.relu(pre) if mlp.act_fn == "relu" else F.gelu(pre)
    return torch.addmm(direct, post, mlp.W_out @ W_U)  # W_L = W_out W_U: [d_mlp, d_vocab_out]


def _read_bias(model: Transformer, W_read: torch.Tensor) -> torch.Tensor:
    """Every bias, as seen by [MLP input | logits]: ``b_O W_read + [b_in | b_out W_U + b_U]``: [n_read]."""
    block = model.blocks[0]
    bias = block.attn.b_O @ W_read
    if block.attn_only:
        return bias + model.unembed.b_U
    mlp = block.mlp
    return bias + torch.cat([mlp.b_in, mlp.b_out @ model.unembed.W_U + model.unembed.b_U])
