"""Equivalence with the installed TransformerLens (runs when the ``lens`` extra is installed; CI installs it)."""

import pytest
import torch

from grokscope import load_preset
from grokscope.models import TransformerConfig, to_transformer_lens

pytest.importorskip("transformer_lens")
pytestmark = pytest.mark.lens


def tokens_for(p, n=50):
    g = torch.Generator().manual_seed(1)
    return torch.cat([torch.randint(0, p, (n, 2), generator=g), torch.full((n, 1), p)], dim=1)


@pytest.mark.parametrize("cfg", [
    load_preset("nanda2023").model,
    TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, act_fn="gelu", train_biases=True),
    TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, n_layers=2, normalization_type="LN"),
    TransformerConfig(d_model=32, n_heads=2, d_head=16, n_layers=2, attn_only=True),
], ids=["canonical", "gelu-biases", "ln-2layer", "attn-only"])
def test_exported_model_has_identical_logits_and_activations(cfg):
    p = 113 if cfg.d_model == 128 else 23
    model = cfg.build(p + 1, p, 3)
    model.init_weights(3)
    with torch.no_grad():
        for name, param in model.named_parameters():  # non-trivial biases and LN weights
            if ".b_" in name or name.endswith((".w", ".b")):
                param.add_(0.1 * torch.randn_like(param))
    tl_model = to_transformer_lens(model)
    tokens = tokens_for(p)
    with torch.no_grad():
        ours, our_cache = model.run_with_cache(tokens)
        theirs, their_cache = tl_model.run_with_cache(tokens)
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    assert set(our_cache) <= set(their_cache)
    for name in ("hook_embed", "blocks.0.attn.hook_pattern", "blocks.0.hook_resid_post"):
        torch.testing.assert_close(their_cache[name], our_cache[name], rtol=1e-5, atol=1e-5, msg=name)
