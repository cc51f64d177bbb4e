import math

import pandas as pd
import pytest
from conftest import train_interrupted
import torch
from torch import nn

from grokscope import load_run, train_run
from grokscope.training.grokfast import GradientFilter, orthogonalise_gradients
from grokscope.training.loss import cross_entropy


class One(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_x = nn.Parameter(torch.tensor([1.0, 2.0]))


def push(filt, model, grad):
    model.W_x.grad = torch.tensor(grad)
    filt.apply()
    return model.W_x.grad.clone()


def test_ema_filter_adds_the_amplified_running_average():
    model = One()
    filt = GradientFilter(model, "ema", alpha=0.5, lamb=2.0, window=1)
    assert push(filt, model, [1.0, 0.0]).tolist() == [3.0, 0.0]  # mu = g on the first step
    assert push(filt, model, [0.0, 1.0]).tolist() == [1.0, 2.0]  # mu = (0.5, 0.5)


def test_ma_filter_waits_for_a_full_window():
    model = One()
    filt = GradientFilter(model, "ma", alpha=0.0, lamb=1.0, window=2)
    assert push(filt, model, [1.0, 1.0]).tolist() == [1.0, 1.0]  # window not full: unchanged
    assert push(filt, model, [3.0, 1.0]).tolist() == [5.0, 2.0]  # + mean((1,1), (3,1))
    assert push(filt, model, [1.0, 1.0]).tolist() == [3.0, 2.0]  # + mean((3,1), (1,1))


def test_orthograd_removes_the_component_along_the_weight_and_keeps_the_norm():
    model = One()
    model.W_x.grad = torch.tensor([1.0, 1.0])
    orthogonalise_gradients(model)
    g = model.W_x.grad
    assert torch.dot(g, model.W_x.detach()).abs() < 1e-6
    assert g.norm().item() == pytest.approx(math.sqrt(2), rel=1e-6)


def test_stablemax_loss():
    logits = torch.tensor([[[0.0, 1.0, -1.0]]])  # s = (1, 2, 0.5)
    assert cross_entropy(logits, torch.tensor([[1]]), normaliser="stablemax").item() == pytest.approx(-math.log(2 / 3.5))
    sure = torch.tensor([[[20.0, 0.0]]])  # softmax rounds to 1 in float32 here; StableMax does not
    assert cross_entropy(sure, torch.tensor([[0]]), "float32", "stablemax").item() == pytest.approx(math.log(22 / 21), rel=1e-5)


@pytest.mark.parametrize("options", [["train.grokfast=ema"], ["train.grokfast=ma", "train.grokfast_window=7"],
                                     ["train.normaliser=stablemax", "train.orthograd=true"]])
def test_interrupted_runs_resume_exactly_with_training_options(tiny_config, tmp_path, options):
    config = tiny_config.with_overrides(options)
    train_run(config, tmp_path / "straight")

    train_interrupted(config, tmp_path / "cut", 33)  # resumes from epoch 20
    pd.testing.assert_frame_equal(load_run(tmp_path / "cut").metrics, load_run(tmp_path / "straight").metrics)
    plain = tiny_config
    train_run(plain, tmp_path / "plain")
    assert not load_run(tmp_path / "plain").metrics.equals(load_run(tmp_path / "straight").metrics)
