"""Clock or pizza (Zhong et al., 2023): planted logits and gradients with known answers, the
attention-rate model's exact symmetry, and a real run's analysis and report."""

import json
import math

import pandas as pd
import torch

from grokscope import load_preset
from grokscope.analysis.clock_pizza import (
    ClockOrPizza, classify, correct_logit_grid, distance_irrelevance, gradient_symmetricity, model_logit_fn,
    pizza_correlation, sampled_triples,
)
from grokscope.models import TransformerConfig
from grokscope.report import build_report

P, KEYS = 31, [3, 7, 11]


def waves(p, sign=1):
    """x, y, z grids [p, p, p] and w_k for the key frequencies."""
    x, y, z = torch.meshgrid(torch.arange(p), torch.arange(p), torch.arange(p), indexing="ij")
    return x.double(), y.double(), z.double(), [2 * math.pi * k / p for k in KEYS]


def clock_logits(p, noise=0.05, seed=0):
    x, y, z, ws = waves(p)
    logits = sum(torch.cos(w * (x + y - z)) for w in ws)
    return logits + noise * torch.randn(logits.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def pizza_logits(p, noise=0.05, seed=0):
    x, y, z, ws = waves(p)
    logits = sum(torch.cos(w * (x - y) / 2).abs() * torch.cos(w * (x + y - z)) for w in ws)
    return logits + noise * torch.randn(logits.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_the_correct_logit_grid_is_indexed_by_answer_and_distance():
    logits = torch.randn(P, P, P, dtype=torch.float64)
    L = correct_logit_grid(logits, 1)
    for x, y in [(0, 0), (3, 5), (30, 29)]:
        assert L[(x + y) % P, (x - y) % P] == logits[x, y, (x + y) % P]
    L = correct_logit_grid(logits, -1)
    assert L[(4 - 9) % P, (4 + 9) % P] == logits[4, 9, (4 - 9) % P]


def test_clock_logits_ignore_the_distance_and_pizza_logits_follow_it():
    clock, pizza = correct_logit_grid(clock_logits(P), 1), correct_logit_grid(pizza_logits(P), 1)
    assert distance_irrelevance(clock) > 0.9  # only the noise varies the clock's correct logit
    assert distance_irrelevance(pizza) < 0.3
    assert math.isnan(distance_irrelevance(torch.ones(P, P)))  # a constant logit has no spread to compare
    for k in KEYS:  # pizza's mean correct logit is the sum of the |cos(w_k d / 2)| waves
        assert pizza_correlation(pizza, k) > 0.3 and abs(pizza_correlation(clock, k)) < 0.3


def circle_embedding(p):
    """Each number on the key frequencies' circles: [p, 2 * len(KEYS)]."""
    t = torch.arange(p, dtype=torch.float64)
    return torch.cat([torch.stack([torch.cos(2 * math.pi * k * t / p), torch.sin(2 * math.pi * k * t / p)], 1)
                      for k in KEYS], 1)


def test_the_pizza_has_symmetric_gradients_and_the_clock_does_not():
    E = circle_embedding(P)
    U = circle_embedding(P)  # the unembedding reads the same circles

    def pizza(e_x, e_y):  # adds the embeddings, then a non-linearity of each class's projection
        return ((e_x + e_y) @ U.T) ** 2

    def clock(e_x, e_y):  # multiplies the waves: cos(w(x+y)), sin(w(x+y)) per key frequency, then reads class c
        cx, sx, cy, sy = e_x[:, 0::2], e_x[:, 1::2], e_y[:, 0::2], e_y[:, 1::2]
        product = torch.stack([cx * cy - sx * sy, sx * cy + cx * sy], 2).flatten(1)
        return product @ U.T

    x, y, c = sampled_triples(P)
    assert gradient_symmetricity(pizza, E, x, y, c) > 0.999
    assert abs(gradient_symmetricity(clock, E, x, y, c)) < 0.2  # mean of cos(w(x - y)) over random pairs


def random_transformer(rate, seed=0):
    model = TransformerConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64, attention_rate=rate).build(P + 1, P, 3)
    model.init_weights(seed)
    return model.double()


def test_constant_attention_makes_the_gradients_exactly_symmetric():
    """With attention rate 0 the inputs reach the MLP only through the sum of their values, so
    d logit / d e_x = d logit / d e_y: symmetricity 1. Softmax attention breaks it."""
    x, y, c = sampled_triples(P, 200)
    constant = random_transformer(0.0)
    assert gradient_symmetricity(model_logit_fn(constant, P), constant.W_E.detach(), x, y, c) > 1 - 1e-9
    softmax = random_transformer(1.0)  # at initialisation its attention is nearly uniform: close to, not at, 1
    assert 0.9 < gradient_symmetricity(model_logit_fn(softmax, P), softmax.W_E.detach(), x, y, c) < 1 - 1e-4
    with torch.no_grad():  # sharper, input-dependent attention treats x and y differently
        softmax.blocks[0].attn.W_Q.mul_(6)
        softmax.blocks[0].attn.W_K.mul_(6)
    assert gradient_symmetricity(model_logit_fn(softmax, P), softmax.W_E.detach(), x, y, c) < 0.9


def test_the_rule_names_each_class():
    assert classify(0.99, 0.65) == "pizza" and classify(0.50, 0.86) == "clock"
    assert classify(0.9, 0.9) == "unclear" and classify(0.5, 0.5) == "unclear"


def test_a_real_run_is_classified_over_training_and_reported(grokked, tmp_path):
    run, analysis = grokked
    result = analysis["clock_pizza"]
    assert "clock_pizza" in analysis["families"] and result["kind"] in ("clock", "pizza", "unclear")
    assert 0 < result["distance_irrelevance"] <= 1.5 and -1 <= result["gradient_symmetricity"] <= 1
    assert set(result["pizza_correlation"]) == {str(k) for k in analysis["key_frequencies"]}
    progress = pd.read_parquet(run.paths.root / "progress.parquet")
    assert progress["gradient_symmetricity"].notna().all() and len(progress) == len(run.checkpoint_epochs)
    assert progress["distance_irrelevance"].iloc[-1] == result["distance_irrelevance"]
    assert any(line.startswith("clock or pizza: ") for line in analysis["findings"])
    page = build_report(run.paths.root, tmp_path / "page.html").read_text()
    assert "Clock or pizza?" in page and "Clock-or-pizza measures over training" in page


def test_clock_or_pizza_applies_to_one_layer_transformers_on_addition_and_subtraction():
    family = ClockOrPizza()
    assert family.applies_to(load_preset("nanda2023"))
    assert family.applies_to(load_preset("quick", ["task.op=sub"]))
    assert not family.applies_to(load_preset("quick", ["model.kind=mlp"]))
    assert not family.applies_to(load_preset("pow_sum33"))
