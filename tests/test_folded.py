"""The folded (per-token table) forward equals the plain model: logits, loss and gradients."""

import pytest
import torch

from grokscope import load_preset, load_run, train_run
from grokscope.models import TransformerConfig
from grokscope.models.folded import folded_logits, mixes_residual, stacked_folded_logits, supports_folded
from grokscope.training.loss import cross_entropy

CONFIGS = {
    "canonical": load_preset("nanda2023").model,
    "gelu-biases": TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, act_fn="gelu", train_biases=True),
    "attn-only": TransformerConfig(d_model=32, n_heads=2, d_head=16, attn_only=True),
    "constant-attention": TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, attention_rate=0.0),
    "mixed-attention": TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, attention_rate=0.3, train_biases=True),
}


def random_model(cfg, p, seed=0):
    """A float64 model with the paper's init and random (seeded) biases."""
    model = cfg.build(p + 1, p, 3)
    model.init_weights(seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".b_" in name:
                param.copy_(0.3 * torch.randn(param.shape, generator=g))
    return model.double()


def all_pairs(p):
    x, y = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    return torch.stack([x.flatten(), y.flatten(), torch.full((p * p,), p)], dim=1)


def assert_same_logits_and_grads(model, tokens, labels, positions, mix=None):
    qpos = torch.tensor(positions)
    plain_logits = model(tokens, qpos)
    folded = folded_logits(model, tokens, qpos, mix)
    torch.testing.assert_close(folded, plain_logits, rtol=1e-9, atol=1e-10)
    grads = []
    for logits in (plain_logits, folded):
        model.zero_grad()
        loss = cross_entropy(logits, labels)
        loss.backward()
        grads.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    assert grads[1][0] == pytest.approx(grads[0][0], rel=1e-12)
    assert grads[0][1].keys() == grads[1][1].keys() and len(grads[0][1]) > 0
    for name, g in grads[0][1].items():  # (b_K's true gradient is 0: softmax ignores a shared shift)
        torch.testing.assert_close(grads[1][1][name], g, rtol=1e-8, atol=1e-12, msg=name)


@pytest.mark.parametrize("mix", ["read", "residual"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_folded_equals_plain_on_random_weights(name, mix):
    p = 113 if name == "canonical" else 23
    model = random_model(CONFIGS[name], p)
    tokens = all_pairs(p)[:: 3 if name == "canonical" else 1]
    labels = torch.randint(0, p, (len(tokens), 1), generator=torch.Generator().manual_seed(0))
    assert_same_logits_and_grads(model, tokens, labels, [2], mix)


def test_kept_layouts_follow_the_tokens_they_were_made_for():
    """Layouts are kept per token tensor: the same tensor changed in place, a view of it with
    other rows, and a new tensor each get the logits the plain model gives them."""
    p = 23
    model = random_model(CONFIGS["gelu-biases"], p)
    qpos = torch.tensor([2])
    tokens = all_pairs(p)[:200].clone()
    for batch in (tokens, tokens, tokens[50:150], tokens.flip(0).clone()):
        torch.testing.assert_close(folded_logits(model, batch, qpos), model(batch, qpos), rtol=1e-9, atol=1e-10)
    tokens[:, 0] = (tokens[:, 0] + 7) % p  # in place: the version changes
    torch.testing.assert_close(folded_logits(model, tokens, qpos), model(tokens, qpos), rtol=1e-9, atol=1e-10)
    with torch.inference_mode():
        fresh = all_pairs(p)[::5]
        torch.testing.assert_close(folded_logits(model, fresh, qpos), model(fresh, qpos), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mix", ["read", "residual"])
def test_folded_handles_several_query_positions_and_any_tokens(mix):
    model = random_model(CONFIGS["gelu-biases"], 23)
    tokens = torch.randint(0, 24, (200, 3), generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 23, (200, 3), generator=torch.Generator().manual_seed(2))
    assert_same_logits_and_grads(model, tokens, labels, [0, 1, 2], mix)


def test_long_sequences_mix_in_the_residual_stream_and_short_ones_in_the_read_space():
    """5-digit addition (17 positions, 4 heads: bags of 49-69 rows) takes the residual mix, the
    canonical task (13 rows) the read one; and the residual mix of a stacked ensemble with
    padded members gives each member its solo logits and gradients."""
    canonical = load_preset("nanda2023").model
    assert not mixes_residual(1 + 4 * 3, canonical.d_model, canonical.d_mlp + 113)
    assert mixes_residual(1 + 4 * 12, canonical.d_model, canonical.d_mlp + 10)
    models = [random_model(CONFIGS["mixed-attention"], 23, seed) for seed in (0, 1)]
    tokens = torch.randint(0, 24, (2, 60, 3), generator=torch.Generator().manual_seed(3))
    sizes = [60, 41]
    stacked = stacked_folded_logits(models, tokens, torch.tensor([1, 2]), sizes, mix="residual")
    (stacked[0].sum() + (stacked[1, :41] ** 2).sum()).backward()
    for e, (model, n) in enumerate(zip(models, sizes)):
        stacked_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        model.zero_grad()
        alone = folded_logits(model, tokens[e, :n], torch.tensor([1, 2]), mix="residual")
        torch.testing.assert_close(stacked[e, :n], alone, rtol=1e-12, atol=1e-12)
        (alone.sum() if e == 0 else (alone ** 2).sum()).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(stacked_grads[name], p.grad, rtol=1e-10, atol=1e-12, msg=name)
    with pytest.raises(ValueError, match="mix must be one of"):
        folded_logits(models[0], tokens[0], torch.tensor([2]), mix="resid")


def test_folded_equals_plain_on_trained_weights(tmp_path):
    config = load_preset("quick", ["train.epochs=1500", "train.checkpoint_every=500"])
    train_run(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    model = run.model().train().double()
    data = run.task.dataset()
    assert_same_logits_and_grads(model, data.tokens, data.labels, [2])
    model32 = run.model().train()  # and in float32, as trained, to float32 tolerance
    qpos = torch.tensor([2])
    torch.testing.assert_close(folded_logits(model32, data.tokens, qpos), model32(data.tokens, qpos), rtol=1e-4, atol=1e-4)


def test_only_exact_cases_are_folded():
    assert supports_folded(CONFIGS["canonical"].build(114, 113, 3))
    assert not supports_folded(TransformerConfig(n_layers=2).build(10, 9, 3))
    assert not supports_folded(TransformerConfig(normalization_type="LN").build(10, 9, 3))


def test_attention_rate_mixes_constant_attention_into_the_pattern():
    """Zhong et al.'s alpha: pattern = alpha softmax + (1 - alpha) on allowed positions; 0 sums the values."""
    tokens = all_pairs(23)[:50]
    for rate in (0.0, 0.3, 1.0):
        model = random_model(TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, attention_rate=rate), 23)
        _, cache = model.run_with_cache(tokens, names_filter=["blocks.0.attn.hook_pattern"])
        pattern = cache["blocks.0.attn.hook_pattern"]  # [batch, head, qpos, pos]
        allowed = torch.tril(torch.ones(3, 3, dtype=torch.bool))
        assert (pattern[..., ~allowed] == 0).all()
        total = pattern.sum(-1)  # rows sum to alpha + (1 - alpha) * (number of allowed positions)
        torch.testing.assert_close(total, (rate + (1 - rate) * torch.arange(1, 4)).double().expand_as(total))
    with pytest.raises(ValueError, match="attention_rate must be between 0 and 1"):
        TransformerConfig(attention_rate=1.5)
