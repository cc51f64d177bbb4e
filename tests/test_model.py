import math

import pytest
import torch

from grokscope import load_preset
from grokscope.models import TransformerConfig

# TransformerLens 3.x HookedTransformer(cfg).state_dict() for the canonical config
# (n_layers=1, d_model=128, n_heads=4, d_head=32, d_mlp=512, d_vocab=114, d_vocab_out=113,
# n_ctx=3, act_fn="relu", normalization_type=None): keys and shapes, pinned.
TL3_CANONICAL_STATE = {
    "embed.W_E": (114, 128),
    "pos_embed.W_pos": (3, 128),
    "blocks.0.attn.W_Q": (4, 128, 32),
    "blocks.0.attn.W_K": (4, 128, 32),
    "blocks.0.attn.W_V": (4, 128, 32),
    "blocks.0.attn.W_O": (4, 32, 128),
    "blocks.0.attn.b_Q": (4, 32),
    "blocks.0.attn.b_K": (4, 32),
    "blocks.0.attn.b_V": (4, 32),
    "blocks.0.attn.b_O": (128,),
    "blocks.0.attn.mask": (3, 3),
    "blocks.0.attn.IGNORE": (),
    "blocks.0.mlp.W_in": (128, 512),
    "blocks.0.mlp.b_in": (512,),
    "blocks.0.mlp.W_out": (512, 128),
    "blocks.0.mlp.b_out": (128,),
    "unembed.W_U": (128, 113),
    "unembed.b_U": (113,),
}

# The activations TransformerLens 3.x caches for that model, in order (cf. TL's
# tests/integration/test_cache_hook_names.py).
TL3_CANONICAL_CACHE = [
    "hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre",
    "blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v",
    "blocks.0.attn.hook_attn_scores", "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z",
    "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid", "blocks.0.mlp.hook_pre",
    "blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post",
]


def build(cfg: TransformerConfig, d_vocab=114, d_vocab_out=113, n_ctx=3, seed=0):
    model = cfg.build(d_vocab, d_vocab_out, n_ctx)
    model.init_weights(seed)
    return model


def tokens_for(p=113, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, p, (n, 2), generator=g)
    return torch.cat([xy, torch.full((n, 1), p)], dim=1)


def test_state_dict_matches_transformer_lens_3():
    model = build(load_preset("nanda2023").model)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert state == TL3_CANONICAL_STATE
    assert sum(p.numel() for n, p in model.named_parameters() if "W_" in n) == 226_048


def test_layernorm_and_attn_only_keys_follow_transformer_lens():
    ln = build(TransformerConfig(n_layers=2, normalization_type="LN"))
    keys = set(ln.state_dict())
    assert {"blocks.1.ln1.w", "blocks.1.ln1.b", "blocks.1.ln2.w", "blocks.1.ln2.b", "ln_final.w", "ln_final.b"} <= keys
    attn_only = build(TransformerConfig(n_layers=2, attn_only=True))
    assert not any(".mlp." in k for k in attn_only.state_dict())


def test_cache_names_match_transformer_lens_order():
    model = build(load_preset("nanda2023").model)
    _, cache = model.run_with_cache(tokens_for())
    assert list(cache) == TL3_CANONICAL_CACHE
    assert cache["blocks.0.attn.hook_pattern"].shape == (64, 4, 3, 3)
    assert cache["blocks.0.mlp.hook_post"].shape == (64, 3, 512)
    assert set(model.hook_dict) == set(TL3_CANONICAL_CACHE)  # every hook point fires


def reference_logits(model, tokens):
    """An independent plain implementation of the TransformerLens forward (no LN, 1 layer)."""
    s = model.state_dict()
    x = s["embed.W_E"][tokens] + s["pos_embed.W_pos"][None, : tokens.shape[1]]
    q = torch.einsum("bpm,hmd->bphd", x, s["blocks.0.attn.W_Q"]) + s["blocks.0.attn.b_Q"]
    k = torch.einsum("bpm,hmd->bphd", x, s["blocks.0.attn.W_K"]) + s["blocks.0.attn.b_K"]
    v = torch.einsum("bpm,hmd->bphd", x, s["blocks.0.attn.W_V"]) + s["blocks.0.attn.b_V"]
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    n = tokens.shape[1]
    scores = scores.masked_fill(~torch.tril(torch.ones(n, n, dtype=torch.bool)), float("-inf"))
    z = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v)
    x = x + torch.einsum("bqhd,hdm->bqm", z, s["blocks.0.attn.W_O"]) + s["blocks.0.attn.b_O"]
    post = torch.relu(x @ s["blocks.0.mlp.W_in"] + s["blocks.0.mlp.b_in"])
    x = x + post @ s["blocks.0.mlp.W_out"] + s["blocks.0.mlp.b_out"]
    return x @ s["unembed.W_U"] + s["unembed.b_U"]


def test_forward_matches_an_independent_reference():
    model = build(load_preset("nanda2023").model)
    with torch.no_grad():  # random non-zero biases too
        for name, p in model.named_parameters():
            if ".b_" in name:
                p.normal_()
    tokens = tokens_for()
    torch.testing.assert_close(model(tokens), reference_logits(model, tokens), rtol=1e-4, atol=1e-4)


VARIANTS = [
    TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64),
    TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, n_layers=2, normalization_type="LN"),
    TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, n_layers=2, attn_only=True),
    TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, act_fn="gelu", train_biases=True),
]


@pytest.mark.parametrize("cfg", VARIANTS, ids=["canonical", "ln-2layer", "attn-only", "gelu-biases"])
def test_last_position_path_equals_full_forward(cfg):
    """Computing only the scored position gives the same logits and gradients."""
    model = build(cfg, d_vocab=24, d_vocab_out=23)
    tokens, labels = tokens_for(p=23), torch.randint(0, 23, (64,))
    full = model(tokens)[:, 2]
    fast = model(tokens, torch.tensor([2]))[:, 0]
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
    grads = []
    for logits in (full, fast):
        model.zero_grad()
        torch.nn.functional.cross_entropy(logits.double(), labels).backward(retain_graph=True)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6, msg=name)


def test_hooks_read_and_patch():
    model = build(TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64), 24, 23)
    tokens = tokens_for(p=23)
    clean = model(tokens)
    same = model.run_with_hooks(tokens, fwd_hooks=[(lambda name: True, lambda act, hook: act)])
    torch.testing.assert_close(same, clean, rtol=0, atol=0)
    seen = []
    zeroed = model.run_with_hooks(tokens, fwd_hooks=[
        ("blocks.0.mlp.hook_post", lambda act, hook: seen.append(hook.name) or torch.zeros_like(act))])
    assert seen == ["blocks.0.mlp.hook_post"] and not torch.allclose(zeroed, clean)
    # with the MLP zero-ablated, logits are resid_mid @ W_U
    _, cache = model.run_with_cache(tokens, names_filter="blocks.0.hook_resid_mid")
    torch.testing.assert_close(zeroed, cache["blocks.0.hook_resid_mid"] @ model.W_U + model.unembed.b_U)
    assert not any(hp._forward_hooks for hp in model.hook_dict.values())  # all removed
    with pytest.raises(KeyError, match="no hook point"):
        model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_nothing", lambda a, hook: a)])


def test_biases_untrained_by_default():
    model = build(TransformerConfig())
    assert all(not p.requires_grad for n, p in model.named_parameters() if ".b_" in n)
    assert all(p.requires_grad for n, p in model.named_parameters() if ".W_" in n)


def test_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = build(TransformerConfig(d_model=16, d_head=4, d_mlp=32), seed=3)
    after = torch.rand(1)
    b = build(TransformerConfig(d_model=16, d_head=4, d_mlp=32), seed=3)
    assert torch.equal(before, after)
    for (n, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), n
    std = a.embed.W_E.std().item()
    assert 0.15 < std < 0.35  # N(0, 1/16)


def test_mlp_model_names_shapes_and_forward():
    """``--set model.kind=mlp`` on the canonical preset: TransformerLens-style names, the
    concatenated-embedding forward written out by hand, and hooks at pre/post."""
    config = load_preset("nanda2023", ["model.kind=mlp"])
    assert config.model.kind == "mlp" and (config.model.d_model, config.model.d_mlp) == (128, 512)
    model = config.model.build(d_vocab=114, d_vocab_out=113, n_ctx=3)
    model.init_weights(0)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {"embed.W_E": (114, 128), "mlp.W_in": (384, 512), "mlp.b_in": (512,),
                      "mlp.W_out": (512, 128), "mlp.b_out": (128,), "unembed.W_U": (128, 113), "unembed.b_U": (113,)}
    assert not model.mlp.b_in.requires_grad and model.mlp.W_in.requires_grad
    tokens = torch.tensor([[3, 5, 113], [112, 0, 113]])
    x = model.W_E[tokens].reshape(2, -1)  # [batch, 3 * d_model]
    expected = torch.relu(x @ model.mlp.W_in) @ model.mlp.W_out @ model.W_U
    logits, cache = model.run_with_cache(tokens, torch.tensor([2]))
    torch.testing.assert_close(logits[:, 0], expected)
    assert cache["mlp.hook_post"].shape == (2, 1, 512) and cache["hook_embed"].shape == (2, 3, 128)
    from grokscope.errors import GrokscopeError

    with pytest.raises(GrokscopeError, match="one answer"):
        model(tokens, torch.tensor([1, 2]))
