"""pow_sum with a power that is not a bijection mod p: W_E fitted by least squares as waves over
the power's values, on planted embeddings (the real run is tests/test_value_grid.py's)."""

import math

import pytest
import torch

from grokscope.analysis.value_waves import select_waves
from grokscope.tasks.modular import power_values


def test_a_planted_embedding_of_waves_over_t4_needs_one_frequency_there_and_many_over_t():
    """p = 29: t^4 takes 8 values. W_E[t] = waves of frequency 5 at t^4: a function of the values,
    explained by one frequency over them, by many over t."""
    p, k = 29, 5
    values = power_values(p, 4)
    assert values.unique().numel() == 8
    w = 2 * math.pi * k * values.double() / p
    W_E = torch.stack([torch.cos(w), torch.sin(w), 0.5 * torch.cos(w) - torch.sin(w)], dim=1)  # [token, d]
    over_values = select_waves(W_E, values, p)
    over_t = select_waves(W_E, torch.arange(p), p)
    assert over_values.fve == pytest.approx(1.0) and over_values.frequencies[:1] == [k] and over_values.needed == 1
    assert over_t.fve == pytest.approx(1.0) and over_t.needed > 3


def test_waves_over_the_token_itself_are_found_in_the_token():
    p = 29
    t = torch.arange(p).double()
    W_E = torch.stack([torch.cos(2 * math.pi * 3 * t / p), torch.sin(2 * math.pi * 11 * t / p)], dim=1)
    sel = select_waves(W_E, torch.arange(p), p)
    assert sorted(sel.frequencies[:2]) == [3, 11] and sel.needed == 2
    assert select_waves(W_E, power_values(p, 4), p).fve < 0.5  # not a function of t^4
