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
Which rows each example mixes depends on the tokens alone (``BagLayout``), and is kept per
token tensor, so full-batch training computes it once.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from grokscope.models.transformer import Transformer


class RowMix(torch.autograd.Function):
    """``out[b] = sum_j weights[b, j] * table[bag[b, j]]`` (bags from a ``BagLayout``), with a
    gathering backward. With ``split``, the output's first ``split`` columns and the rest come
    back as two tensors, the first through ReLU if ``relu`` (the MLP's pre-activation | the
    direct logits), so that neither the split's backward (a concatenation of the two
    gradients) nor ReLU's is a pass of its own.

    Forward is ``embedding_bag``. The backward treats the bags as a sparse matrix ``A [batch,
    rows]`` (values = weights): ``grad_table = A^T g`` is again an ``embedding_bag``, over the
    rows of ``g`` with the transposed bags (each table row's examples, in example order), and
    ``grad_weights = (g table^T)`` is sampled at A's entries (``sampled_addmm``). On the
    canonical step (2 threads) the first took 1.3 ms, against 4.9 ms as a sparse matrix
    product with the same sums in the same order; embedding_bag's own backward is slower still.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, weights: torch.Tensor, layout: "BagLayout", split: int | None, relu: bool):
        read = F.embedding_bag(layout.bag, table, per_sample_weights=weights, mode="sum")  # [batch, width]
        ctx.layout, ctx.split = layout, split
        if split is None:
            ctx.save_for_backward(table, weights, None)
            return read
        act, rest = read[:, :split], read[:, split:]
        if relu:
            act.relu_()
        ctx.save_for_backward(table, weights, act if relu else None)  # ReLU's output, for its mask
        return act, rest

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        table, weights, relu_out = ctx.saved_tensors
        layout, split = ctx.layout, ctx.split
        grad = grads[0]  # [batch, width]
        if split is not None:  # [grad_act | grad_rest], written once, ReLU's mask applied on the way
            act_grad, rest_grad = grads
            grad = torch.empty(len(layout.bag), table.shape[1], dtype=table.dtype, device=table.device)
            if relu_out is not None:
                torch.ops.aten.threshold_backward.grad_input(act_grad, relu_out, 0.0, grad_input=grad[:, :split])  # (torch.where: 25x slower)
            else:
                grad[:, :split] = act_grad
            grad[:, split:] = rest_grad
        grad_table = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_table = F.embedding_bag(layout.by_row_examples, grad, layout.row_starts,
                                         per_sample_weights=weights.flatten()[layout.by_row], mode="sum")  # [rows, width]
        if ctx.needs_input_grad[1]:
            batch, bag = layout.bag.shape
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                A = torch.sparse_csr_tensor(torch.arange(0, batch * bag + 1, bag, device=grad.device),
                                            layout.bag.flatten(), weights.flatten(), size=(batch, table.shape[0]))
                grad_weights = torch.sparse.sampled_addmm(A, grad, table.T, beta=0.0).values().reshape(batch, bag)
        return grad_table, grad_weights, None, None, None


@dataclass(frozen=True, eq=False)
class BagLayout:
    """Which table rows each example of a batch mixes at one query position: all of the
    folded forward that depends on the tokens alone. Members are flattened into one batch,
    member ``e``'s rows offset by ``e`` times the rows per member, so members never meet.

    A member's table: ``n_q`` query rows (R_q W_read and the biases), then ``n_heads * n_k``
    head-and-key rows, (h, n) at ``n_q + h * n_k + n``.
    """

    used_q: torch.Tensor  # [n_q] the query tokens in the batch
    used_k: torch.Tensor  # [n_k] the key pairs in the batch, as position * d_vocab + token
    score_rows: torch.Tensor  # [*, batch, key] each example's (query, key) pair, as a row of S [*, n_q * n_k, head] flattened over members
    bag: torch.Tensor  # [members * batch, 1 + n_heads * key] each example's table rows, sorted
    by_row: torch.Tensor  # [members * batch * bag] positions in bag.flatten(), by table row, then by example
    by_row_examples: torch.Tensor  # [members * batch * bag] the example at each of them
    row_starts: torch.Tensor  # [members * rows per member] where each table row's run begins in by_row


def bag_layout(tokens: torch.Tensor, q: int, d_vocab: int, n_heads: int) -> BagLayout:
    """The ``BagLayout`` of tokens [*, batch, pos] at query position ``q`` (keys 0..q)."""
    n_keys = q + 1
    t_q, t_k = tokens[..., q], tokens[..., :n_keys]  # [*, batch], [*, batch, key]
    used_q, inv_q = torch.unique(t_q, return_inverse=True)  # [n_q], [*, batch]
    used_k, inv_k = torch.unique(torch.arange(n_keys, device=tokens.device) * d_vocab + t_k, return_inverse=True)  # [n_k], [*, batch, key]
    n_q, n_k = len(used_q), len(used_k)
    rows = n_q + n_heads * n_k  # per member
    members = tokens.shape[0] if tokens.dim() == 3 else 1
    member = torch.arange(members, device=tokens.device).view(-1, 1, 1) if tokens.dim() == 3 else 0  # [member, 1, 1]
    score_rows = member * (n_q * n_k) + inv_q[..., None] * n_k + inv_k  # [*, batch, key]
    head_rows = n_q + torch.arange(n_heads, device=tokens.device)[:, None] * n_k + inv_k.unsqueeze(-2)  # [*, batch, head, key]
    bag = torch.cat([inv_q[..., None], head_rows.flatten(-2)], dim=-1) + member * rows  # [*, batch, bag], sorted
    bag = bag.reshape(-1, bag.shape[-1])  # [members * batch, bag]
    sorted_rows, by_row = torch.sort(bag.flatten(), stable=True)
    row_starts = torch.searchsorted(sorted_rows, torch.arange(members * rows, device=tokens.device))
    return BagLayout(used_q, used_k, score_rows, bag, by_row, by_row // bag.shape[1], row_starts)


TOKEN_TENSORS_KEPT = 4  # token tensors whose layouts are kept (a run's training and test sets, and spares)
_layouts: OrderedDict[tuple, tuple[torch.Tensor, dict[tuple[int, int, int], BagLayout]]] = OrderedDict()


def cached_bag_layout(tokens: torch.Tensor, q: int, d_vocab: int, n_heads: int) -> BagLayout:
    """``bag_layout``, kept for the last few token tensors (every query position of each):
    full-batch training mixes the same rows every step, and building the layout (two unique,
    a sort, a search) cost ~1.5 ms of a canonical step on 2 threads. The key is the tensor's
    address, shape, strides and version; the entry holds the tensor, so that no other tensor
    can take its address while the entry lives, and an in-place change of the tokens changes
    the version. Inference-mode tensors have no version, so theirs are not kept."""
    if tokens.is_inference():
        return bag_layout(tokens, q, d_vocab, n_heads)
    key = (tokens.device, tokens.data_ptr(), tuple(tokens.shape), tokens.stride(), tokens._version)
    if key in _layouts:
        _layouts.move_to_end(key)
    else:
        _layouts[key] = (tokens, {})
        if len(_layouts) > TOKEN_TENSORS_KEPT:
            _layouts.popitem(last=False)
    by_query = _layouts[key][1]
    if (q, d_vocab, n_heads) not in by_query:
        by_query[q, d_vocab, n_heads] = bag_layout(tokens, q, d_vocab, n_heads)
    return by_query[q, d_vocab, n_heads]


def supports_folded(model: torch.nn.Module) -> bool:
    """Whether ``folded_logits`` computes this model exactly (1 layer, no LayerNorm)."""
    return isinstance(model, Transformer) and model.cfg.n_layers == 1 and model.cfg.normalization_type is None


def folded_logits(model: Transformer, tokens: torch.Tensor, query_positions: torch.Tensor,
                  mix: str | None = None) -> torch.Tensor:
    """``model(tokens, query_positions)`` computed from per-token tables (no hooks fire).
    ``mix``: where the attention pattern mixes table rows, "read" (the MLP input and logits)
    or "residual" (d_model, then one product with [W_in | W_U]); None: the cheaper for the
    bag's size (``mixes_residual``).

    tokens [batch, pos] -> logits [batch, qpos, d_vocab_out].
    """
    weights = dict(model.named_parameters())
    return torch.stack([_logits_at(model, weights, tokens, int(q), mix=mix) for q in query_positions], dim=1)


MIXES = (None, "read", "residual")


def stacked_folded_logits(models: list[Transformer], tokens: torch.Tensor, query_positions: torch.Tensor,
                          sizes: list[int] | None = None, mix: str | None = None) -> torch.Tensor:
    """``folded_logits`` of E models of one shape at once, each on its own examples: every
    weight is stacked on a leading member axis, and the tables of all members are mixed by
    one row mix (members' rows are offset, so they never meet). ``sizes``: how many of each
    member's examples are real (the rest pad it to the batch); their logits are exactly
    those of ``folded_logits`` on the real examples alone. ``mix``: as in ``folded_logits``.

    tokens [member, batch, pos] -> logits [member, batch, qpos, d_vocab_out].
    """
    weights = stack_parameters(models)
    return torch.stack([_logits_at(models[0], weights, tokens, int(q), sizes, mix) for q in query_positions], dim=-2)


def stack_parameters(models: list[torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every parameter of E models of one shape, by state-dict name, stacked on a leading
    member axis: {name: [member, *shape]}. Gradients flow back through the stack to each model."""
    named = [dict(m.named_parameters()) for m in models]
    return {name: torch.stack([n[name] for n in named]) for name in named[0]}


RESIDUAL_MIX_GAIN = 4  # a gathered multiply-add costs about this many of a dense product's (AMD EPYC, 1-2 threads)


def mixes_residual(bag: int, d_model: int, n_read: int) -> bool:
    """Whether mixing ``bag`` rows in the residual stream (width d_model, then a product with
    W_read) costs less than mixing them in the read space (width n_read), per example: the
    canonical task's 13 rows mix in the read space; 5-digit addition's 49-69 in the residual."""
    return bag * (n_read - d_model) > d_model * n_read / RESIDUAL_MIX_GAIN


def _logits_at(model: Transformer, w: dict[str, torch.Tensor], tokens: torch.Tensor, q: int,
               sizes: list[int] | None = None, mix: str | None = None) -> torch.Tensor:
    """Logits at query position ``q`` from weights ``w`` (the model's parameters by state-dict
    name, each with an optional leading member axis ``*``; ``model`` gives the shape only):
    tokens [*, batch, pos] -> [*, batch, d_vocab_out]. ``sizes``: each member's real examples;
    ``mix``: as in ``folded_logits``."""
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}; got {mix!r}")
    block = model.blocks[0]
    attn = block.attn
    d_vocab = model.d_vocab
    n_heads, d_head = attn.n_heads, attn.d_head
    W_E, W_pos, W_U = w["embed.W_E"], w["pos_embed.W_pos"], w["unembed.W_U"]  # [*, d_vocab, d_model], [*, n_ctx, d_model], [*, d_model, d_vocab_out]
    a = {k: w[f"blocks.0.attn.{k}"] for k in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")}
    W_read = W_U if block.attn_only else torch.cat([w["blocks.0.mlp.W_in"], W_U], dim=-1)  # [*, d_model, n_read]

    layout = cached_bag_layout(tokens, q, d_vocab, n_heads)
    used_q, used_k = layout.used_q, layout.used_k
    n_q, n_k = len(used_q), len(used_k)
    R_q = W_E[..., used_q, :] + W_pos[..., q, None, :]  # [*, n_q, d_model]
    R_k = W_E[..., used_k % d_vocab, :] + W_pos[..., used_k // d_vocab, :]  # [*, n_k, d_model]

    Q = torch.einsum("...um,...hmd->...uhd", R_q, a["W_Q"]) + a["b_Q"].unsqueeze(-3)  # [*, n_q, head, d_head]
    K = torch.einsum("...nm,...hmd->...nhd", R_k, a["W_K"]) + a["b_K"].unsqueeze(-3)  # [*, n_k, head, d_head]
    S = _matmul(Q.transpose(-3, -2), K.permute(*range(K.dim() - 3), -2, -1, -3))  # [*, head, n_q, n_k]
    S = S.permute(*range(S.dim() - 3), -2, -1, -3) / math.sqrt(d_head)  # [*, n_q, n_k, head]
    scores = S.reshape(-1, n_heads)[layout.score_rows]  # [*, batch, key, head]
    rate = attn.attention_rate  # constant attention mixed in (Zhong et al.'s alpha; 1: none)
    pattern = scores.softmax(dim=-2).transpose(-1, -2)  # [*, batch, head, key]
    if rate != 1.0:
        pattern = rate * pattern + (1.0 - rate)

    V = torch.einsum("...nm,...hmd->...nhd", R_k, a["W_V"]) + a["b_V"].unsqueeze(-3)  # [*, n_k, head, d_head]
    ones = torch.ones_like(pattern[..., :1, 0])  # [*, batch, 1]: each example's query row
    weights = torch.cat([ones, pattern.flatten(-2)], dim=-1).flatten(0, -2)  # [members * batch, bag]
    batch_shape = pattern.shape[:-2]  # [*, batch]
    d_model, n_read = W_read.shape[-2:]
    if mix == "residual" or (mix is None and mixes_residual(weights.shape[-1], d_model, n_read)):
        VO = torch.einsum("...nhd,...hdm->...hnm", V, a["W_O"])  # [*, head, n_k, d_model]
        base = R_q + a["b_O"].unsqueeze(-2)  # [*, n_q, d_model]: the query's residual and b_O
        table = torch.cat([base, VO.flatten(-3, -2)], dim=-2)  # [*, n_q + head*n_k, d_model]
        resid = RowMix.apply(table.reshape(-1, d_model), weights, layout, None, False).view(*batch_shape, d_model)
        read = _plus_product(_block_bias(w, block.attn_only).unsqueeze(-2).expand(*batch_shape, n_read),
                             resid, W_read, sizes)  # [*, batch, n_read]
        if block.attn_only:
            return read
        d_mlp = block.mlp.W_in.shape[1]
        post = F.relu(read[..., :d_mlp]) if block.mlp.act_fn == "relu" else F.gelu(read[..., :d_mlp])
        direct = read[..., d_mlp:]
    else:
        OV_read = torch.einsum("...hdm,...mr->...hdr", a["W_O"], W_read)  # [*, head, d_head, n_read]
        T = torch.einsum("...nhd,...hdr->...hnr", V, OV_read)  # [*, head, n_k, n_read]
        base = _matmul(R_q, W_read) + _read_bias(w, block.attn_only, W_read).unsqueeze(-2)  # [*, n_q, n_read]: every bias folded in
        table = torch.cat([base, T.flatten(-3, -2)], dim=-2)  # [*, n_q + head*n_k, n_read]
        flat_table = table.reshape(-1, n_read)  # [members * rows, n_read]
        if block.attn_only:
            return RowMix.apply(flat_table, weights, layout, None, False).view(*batch_shape, -1)  # [*, batch, d_vocab_out]
        d_mlp = block.mlp.W_in.shape[1]
        relu = block.mlp.act_fn == "relu"
        act, direct = RowMix.apply(flat_table, weights, layout, d_mlp, relu)  # [members * batch, d_mlp], [.., d_vocab_out]
        post = (act if relu else F.gelu(act)).view(*batch_shape, d_mlp)
        direct = direct.view(*batch_shape, -1)
    W_L = w["blocks.0.mlp.W_out"] @ W_U  # [*, d_mlp, d_vocab_out], as in Nanda et al.
    return _plus_product(direct, post, W_L, sizes)


def _plus_product(base: torch.Tensor, x: torch.Tensor, W: torch.Tensor, sizes: list[int] | None) -> torch.Tensor:
    """``base + x @ W`` for each member: base [*, batch, out], x [*, batch, inner], W [*, inner, out].
    W's gradient sums over the examples: with ``sizes``, over each member's real ones only, as alone."""
    if x.dim() == 2:
        return torch.addmm(base, x, W)
    if sizes is None or min(sizes) == x.shape[1]:
        return torch.baddbmm(base, x, W)
    return torch.stack([torch.cat([torch.addmm(base[e, :n], x[e, :n], W[e]), base[e, n:]])
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
    return torch.einsum("...m,...mr->...r", w["blocks.0.attn.b_O"], W_read) + _block_bias(w, attn_only)


def _block_bias(w: dict[str, torch.Tensor], attn_only: bool) -> torch.Tensor:
    """The biases after the residual stream, as seen by [MLP input | logits]: ``[b_in | b_out W_U + b_U]``: [*, n_read]."""
    if attn_only:
        return w["unembed.b_U"]
    b_out_U = torch.einsum("...m,...mv->...v", w["blocks.0.mlp.b_out"], w["unembed.W_U"])
    return torch.cat([w["blocks.0.mlp.b_in"], b_out_U + w["unembed.b_U"]], dim=-1)
