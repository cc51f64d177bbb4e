"""A plain full-sequence PyTorch transformer (Nanda et al.'s training set-up), the speed reference.

Written independently of grokscope: every position runs through attention, MLP and the
unembedding, as in the paper's code and in TransformerLens's HookedTransformer.
"""

import math

import torch
from torch import nn


class PlainTransformer(nn.Module):
    def __init__(self, d_vocab=114, d_vocab_out=113, n_ctx=3, d_model=128, n_heads=4, d_head=32, d_mlp=512, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)

        def init(*shape, fan=d_model):
            return nn.Parameter(torch.randn(*shape, generator=g) / math.sqrt(fan))

        self.W_E, self.W_pos = init(d_vocab, d_model), init(n_ctx, d_model)
        self.W_Q, self.W_K, self.W_V = init(n_heads, d_model, d_head), init(n_heads, d_model, d_head), init(n_heads, d_model, d_head)
        self.W_O = init(n_heads, d_head, d_model)
        self.W_in, self.W_out = init(d_model, d_mlp), init(d_mlp, d_model)
        self.W_U = init(d_model, d_vocab_out, fan=d_vocab)
        self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool)))
        self.d_head = d_head

    def forward(self, tokens):  # [batch, pos] -> [batch, pos, d_vocab_out]
        x = self.W_E[tokens] + self.W_pos[: tokens.shape[1]]
        q = torch.einsum("bpm,hmd->bhpd", x, self.W_Q)
        k = torch.einsum("bpm,hmd->bhpd", x, self.W_K)
        v = torch.einsum("bpm,hmd->bhpd", x, self.W_V)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.d_head)
        n = tokens.shape[1]
        pattern = scores.masked_fill(~self.mask[:n, :n], float("-inf")).softmax(-1)
        z = pattern @ v  # [batch, head, pos, d_head]
        x = x + torch.einsum("bhpd,hdm->bpm", z, self.W_O)
        x = x + torch.relu(x @ self.W_in) @ self.W_out
        return x @ self.W_U


def plain_step(model, optimizer, tokens, labels):
    """One full-batch step: all positions computed, loss read at the last, log_softmax in float64."""
    logits = model(tokens)[:, -1]
    loss = -logits.double().log_softmax(-1).gather(-1, labels[:, None]).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss
