"""Scores of attention heads that name what they do: previous-token, induction, copying.

Axes: ``layer``, ``head``; ``pattern [batch, head, qpos, kpos]`` as cached at ``hook_pattern``.
"""

from __future__ import annotations

import torch


def previous_token_scores(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from each position to the one before it: pattern [batch, head, pos, pos] -> [head]."""
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, -1))


def repeated_random_tokens(n_values: int, n_ctx: int, n: int, seed: int = 0) -> torch.Tensor:
    """TransformerLens's induction test input: ``half = n_ctx // 2`` random values, then the same
    ``half`` again: [n, 2 * half] int64."""
    half = n_ctx // 2
    first = torch.randint(0, n_values, (n, half), generator=torch.Generator().manual_seed(seed))
    return torch.cat([first, first], dim=1)


def induction_scores(pattern: torch.Tensor) -> torch.Tensor:
    """On ``repeated_random_tokens``: mean attention from each position of the second half to the
    token after its earlier occurrence (offset ``half - 1`` back). [batch, head, 2h, 2h] -> [head]."""
    half = pattern.shape[-1] // 2
    return pattern.diagonal(offset=-(half - 1), dim1=-2, dim2=-1)[..., 1:].mean((0, -1))


def ov_circuits(W_E: torch.Tensor, W_V: torch.Tensor, W_O: torch.Tensor, W_U: torch.Tensor) -> torch.Tensor:
    """Each head's full OV circuit ``W_E W_V W_O W_U`` on the values (tokens that are also outputs):
    W_E [d_vocab, d_model], W_V [head, d_model, d_head], W_O [head, d_head, d_model],
    W_U [d_model, d_vocab_out] -> [head, value, value] with value = min(d_vocab, d_vocab_out)."""
    n = min(W_E.shape[0], W_U.shape[1])
    return torch.einsum("vm,hmd,hdn,nu->hvu", W_E[:n].double(), W_V.double(), W_O.double(), W_U[:, :n].double())


def copying_scores(ov: torch.Tensor) -> torch.Tensor:
    """Positive-eigenvalue share of each head's OV circuit: ``sum |l| over Re l > 0 / sum |l|``
    (1: attending to a token raises that token's logit; 0: lowers it). ov [head, v, v] -> [head]."""
    eig = torch.linalg.eigvals(ov)  # [head, v] complex
    return (eig.abs() * (eig.real > 0)).sum(-1) / eig.abs().sum(-1).clamp(min=1e-30)


def copying_accuracy(ov: torch.Tensor) -> float:
    """Share of values ``v`` whose largest output, summed over heads, is ``v`` itself: ov [head, v, v] -> float."""
    total = ov.sum(0)
    return float((total.argmax(-1) == torch.arange(len(total))).double().mean())
