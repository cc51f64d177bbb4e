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
    weights = dict(model.named_parameters())
    return torch.stack([_logits_at(model, weights, tokens, int(q)) for q in query_positions], dim=1)


def stacked_folded_logits(models: list[Transformer], tokens: torch.Tensor, query_positions: torch.Tensor,
                          sizes: list[int] | None = None) -> torch.Tensor:
    """``folded_logits`` of E models of one shape at once, each on its own examples: every
    weight is stacked on a leading member axis, and the tables of all members are mixed by
    one row mix (members' rows are offset, so they never meet). ``sizes``: how many of each
    member's examples are real (the rest pad it to the batch); their logits are exactly
    those of ``folded_logits`` on the real examples alone.

    tokens [member, batch, pos] -> logits [member, batch, qpos, d_vocab_out].
    """
    weights = stack_parameters(models)
    return torch.stack([_logits_at(models[0], weights, tokens, int(q), sizes) for q in query_positions], dim=-2)


def stack_parameters(models: list[torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every parameter of E models of one shape, by state-dict name, stacked on a leading
    member axis: {name: [member, *shape]}. Gradients flow back through the stack to each model."""
    named = [dict(m.named_parameters()) for m in models]
    return {name: torch.stack([n[name] for n in named]) for name in named[0]}


def _rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for each member: table [*, rows, width], index [*, ...] -> [*, ..., width]
    (``*`` is no axis, or the member axis)."""
    if table.dim() == 2:
        return table[index]
    members, rows = table.shape[:2]
    return table.reshape(members * rows, -1)[index + _member_offsets(index, rows)]


def _member_offsets(index: torch.Tensor, rows: int) -> torch.Tensor:
    """``member * rows``, shaped to broadcast against ``index [member, ...]``."""
    return (torch.arange(index.shape[0], device=index.device) * rows).view(-1, *[1] * (index.dim() - 1))


def _row_mix(table: torch.Tensor, bag: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``RowMix`` for each member: table [*, rows, width], bag and weights [*, batch, bag] ->
    [*, batch, width]; members' bags index their own block of one table."""
    if table.dim() == 2:
        return RowMix.apply(table, bag, weights)
    members, rows, width = table.shape
    flat_bag = (bag + _member_offsets(bag, rows)).flatten(0, 1)  # still sorted per row
    read = RowMix.apply(table.reshape(members * rows, width), flat_bag, weights.flatten(0, 1))
    return read.view(members, -1, width)


def _logits_at(model: Transformer, w: dict[str, torch.Tensor], tokens: torch.Tensor, q: int,
               sizes: list[int] | None = None) -> torch.Tensor:
    """Logits at query position ``q`` from weights ``w`` (the model's parameters by state-dict
    name, each with an optional leading member axis ``*``; ``model`` gives the shape only):
    tokens [*, batch, pos] -> [*, batch, d_vocab_out]. ``sizes``: each member's real examples."""
    block = model.blocks[0]
    attn = block.attn
    n_keys, d_vocab = q + 1, model.d_vocab
    n_heads, d_head = attn.n_heads, attn.d_head
    W_E, W_pos, W_U = w["embed.W_E"], w["pos_embed.W_pos"], w["unembed.W_U"]  # [*, d_vocab, d_model], [*, n_ctx, d_model], [*, d_model, d_vocab_out]
    a = {k: w[f"blocks.0.attn.{k}"] for k in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")}
    W_read = W_U if block.attn_only else torch.cat([w["blocks.0.mlp.W_in"], W_U], dim=-1)  # [*, d_model, n_read]

    t_q, t_k = tokens[..., q], tokens[..., :n_keys]  # [*, batch], [*, batch, key]
    # rows only for the (position, token) pairs in this batch (of every member): query tokens u, key pairs n
    used_q, inv_q = torch.unique(t_q, return_inverse=True)  # [n_q], [*, batch]
    used_k, inv_k = torch.unique(torch.arange(n_keys, device=tokens.device) * d_vocab + t_k, return_inverse=True)  # [n_k], [*, batch, key]
    n_q, n_k = len(used_q), len(used_k)
    R_q = W_E[..., used_q, :] + W_pos[..., q, None, :]  # [*, n_q, d_model]
    R_k = W_E[..., used_k % d_vocab, :] + W_pos[..., used_k // d_vocab, :]  # [*, n_k, d_model]

    Q = torch.einsum("...um,...hmd->...uhd", R_q, a["W_Q"]) + a["b_Q"].unsqueeze(-3)  # [*, n_q, head, d_head]
    K = torch.einsum("...nm,...hmd->...nhd", R_k, a["W_K"]) + a["b_K"].unsqueeze(-3)  # [*, n_k, head, d_head]
    S = _matmul(Q.transpose(-3, -2), K.permute(*range(K.dim() - 3), -2, -1, -3))  # [*, head, n_q, n_k]
    S = S.permute(*range(S.dim() - 3), -2, -1, -3) / math.sqrt(d_head)  # [*, n_q, n_k, head]
    scores = _rows(S.flatten(-3, -2), inv_q[..., None] * n_k + inv_k)  # [*, batch, key, head]
    rate = attn.attention_rate  # constant attention mixed in (Zhong et al.'s alpha; 1: none)
    pattern = scores.softmax(dim=-2).transpose(-1, -2)  # [*, batch, head, key]
    if rate != 1.0:
        pattern = rate * pattern + (1.0 - rate)

    V = torch.einsum("...nm,...hmd->...nhd", R_k, a["W_V"]) + a["b_V"].unsqueeze(-3)  # [*, n_k, head, d_head]
    OV_read = torch.einsum("...hdm,...mr->...hdr", a["W_O"], W_read)  # [*, head, d_head, n_read]
    T = torch.einsum("...nhd,...hdr->...hnr", V, OV_read)  # [*, head, n_k, n_read]
    base = _matmul(R_q, W_read) + _read_bias(w, block.attn_only, W_read).unsqueeze(-2)  # [*, n_q, n_read]: every bias folded in
    table = torch.cat([base, T.flatten(-3, -2)], dim=-2)  # [*, n_q + head*n_k, n_read]
    rows = n_q + torch.arange(n_heads, device=tokens.device)[:, None] * n_k + inv_k.unsqueeze(-2)  # [*, batch, head, key]
    bag = torch.cat([inv_q[..., None], rows.flatten(-2)], dim=-1)  # [*, batch, 1 + head*key], sorted per row
    ones = torch.ones_like(inv_q[..., None], dtype=pattern.dtype)
    read = _row_mix(table, bag, torch.cat([ones, pattern.flatten(-2)], dim=-1))  # [*, batch, n_read]: MLP pre-activation | direct logits
    if block.attn_only:
        return read
    mlp = block.mlp
    d_mlp = mlp.W_in.shape[1]
    pre, direct = read.split([d_mlp, read.shape[-1] - d_mlp], dim=-1)  # (split's backward is one cat)
    post = F.relu(pre) if mlp.act_fn == "relu" else F.gelu(pre)
    W_L = w["blocks.0.mlp.W_out"] @ W_U  # [*, d_mlp, d_vocab_out], as in Nanda et al.
    if post.dim() == 2:
        return torch.addmm(direct, post, W_L)
    if sizes is None or min(sizes) == post.shape[1]:
        return torch.baddbmm(direct, post, W_L)
    # W_L's gradient sums over the examples: over each member's real ones only, as alone
    return torch.stack([torch.cat([torch.addmm(direct[e, :n], post[e, :n], W_L[e]), direct[e, n:]])
                        for e, n in enumerate(sizes)])


SMALL_PRODUCT = 1 << 22  # elements per member up to which a product is summed elementwise (16 MB of float32)


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for each member: a [*, rows, inner], b [*, inner, cols] -> [*, rows, cols].

    A product with few rows (one query token in (x + y) mod p) is summed elementwise: a
    batched matmul of one row picks its kernel by the number of members, so an ensemble's
    members would not get their solo runs' bits; broadcast-and-sum gives the same bits for
    any number of members, and at these sizes it costs nothing measurable.
    """
    if a.shape[-2] * a.shape[-1] * b.shape[-1] <= SMALL_PRODUCT:
        return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)
    return a @ b


def _read_bias(w: dict[str, torch.Tensor], attn_only: bool, W_read: torch.Tensor) -> torch.Tensor:
    """Every bias, as seen by [MLP input | logits]: ``b_O W_read + [b_in | b_out W_U + b_U]``: [*, n_read]."""
    bias = torch.einsum("...m,...mr->...r", w["blocks.0.attn.b_O"], W_read)
    if attn_only:
        return bias + w["unembed.b_U"]
    b_out_U = torch.einsum("...m,...mv->...v", w["blocks.0.mlp.b_out"], w["unembed.W_U"])
    return bias + torch.cat([w["blocks.0.mlp.b_in"], b_out_U + w["unembed.b_U"]], dim=-1)
