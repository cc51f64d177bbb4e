"""The sequence tasks: encodings, pools, the minibatch trainer with fresh data, and their analysis."""

import math
import pandas as pd
import pytest
from conftest import train_interrupted
import torch

from grokscope import load_preset, load_run, train_run
from grokscope.analysis.registry import analyze_run
from grokscope.errors import GrokscopeError
from grokscope.report import build_report
from grokscope.tasks import IGNORE, TASKS, DigitAdditionConfig, MaxElementConfig, RepeatedSubsequenceConfig, SortConfig


@pytest.mark.parametrize("reverse, tokens, labels", [
    (False, [1, 3, 4, 5, 2, 10, 5, 8, 3, 2, 1, 11, 0, 7, 1, 7, 7], [0, 7, 1, 7, 7, 3]),
    (True, [2, 5, 4, 3, 1, 10, 1, 2, 3, 8, 5, 11, 3, 7, 7, 1, 7], [3, 7, 7, 1, 7, 0]),
])
def test_digit_addition_encoding(reverse, tokens, labels):
    """13452 + 58321 = 071773, the write-up's example, written both ways."""
    task = DigitAdditionConfig(reverse=reverse, n_train=10, n_test=10).build()
    assert task.digits(torch.tensor([13452]), 5).tolist() == [tokens[:5]]
    x, y = task.sample(500, torch.Generator().manual_seed(1))
    assert x.shape == (500, 17) and y.shape == (500, 6) and task.target_positions == tuple(range(11, 17))
    value = lambda d: sum(int(v) * 10 ** i for i, v in enumerate(d if reverse else reversed(d)))  # noqa: E731
    for row, answer in zip(x[:50], y[:50]):
        assert value(row[:5]) + value(row[6:11]) == value(answer)
        assert torch.equal(row[12:], answer[:-1])  # teacher forcing: the answer so far is in the input


def test_max_element_and_sort_encodings():
    g = torch.Generator().manual_seed(0)
    x, y = MaxElementConfig(length=6, n_values=5).build().sample(400, g)
    lists = x[:, 1:-1]
    assert (x[:, 0] == 5).all() and (x[:, -1] == 6).all() and torch.equal(lists.max(1).values, y[:, 0])
    assert ((lists == y).sum(1) == 1).all()  # one maximum
    for repeats in (False, True):
        x, y = SortConfig(length=5, n_values=9, repeats=repeats).build().sample(300, g)
        lists = x[:, 1:6]
        assert torch.equal(lists.sort(1).values, y) and (x[:, 6] == 10).all() and torch.equal(x[:, 7:], y[:, :-1])
        distinct = torch.tensor([len(set(r.tolist())) for r in lists])
        assert (distinct == 5).all() if not repeats else (distinct < 5).any()


def test_repeated_subsequence_scores_only_the_predictable_tokens():
    task = RepeatedSubsequenceConfig(length=16, n_values=7, sub_length=4).build()
    x, y = task.sample(300, torch.Generator().manual_seed(0))
    scored = y != IGNORE
    assert (scored.sum(1) == 3).all()  # sub_length - 1 predictable tokens each
    pos = torch.nonzero(scored)
    assert torch.equal(y[scored], x[pos[:, 0], pos[:, 1] + 1])  # the label is the next token
    for row, labels in zip(x[:30], y[:30]):  # ... and that token occurred earlier after the same token
        start = int(torch.nonzero(labels != IGNORE)[0])
        copy = row[start:start + 4].tolist()
        assert any(row[i:i + 4].tolist() == copy for i in range(0, start - 3))


@pytest.mark.parametrize("name", ["digit_add", "max_element", "sort", "repeated_subsequence"])
def test_pools_are_distinct_seeded_and_split(name):
    config = TASKS.get(name)(n_train=200, n_test=50, seed=3)
    task = config.build()
    data, split = task.dataset(), task.split()
    assert len(data.tokens) == 250 and len({tuple(r) for r in data.tokens.tolist()}) == 250
    assert split.train.tolist() == list(range(200)) and split.test.tolist() == list(range(200, 250))
    assert torch.equal(TASKS.get(name)(n_train=200, n_test=50, seed=3).build().dataset().tokens, data.tokens)


@pytest.mark.parametrize("overrides, message", [
    (["task.n_digits=0"], "task.n_digits must be in 1..18"),
    (["task.n_train=0"], "must be at least 1"),
])
def test_bad_sequence_configs(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_preset("digit_add5", overrides)
    with pytest.raises(ValueError, match="needs task.repeats=true"):
        load_preset("sort", ["task.length=40"])


def test_incompatible_trainer_or_model_is_refused_before_writing(tmp_path):
    with pytest.raises(GrokscopeError, match="fresh_data needs a task that samples"):
        train_run(load_preset("quick", ["train.kind=minibatch", "train.fresh_data=true"]), tmp_path / "a")
    with pytest.raises(GrokscopeError, match="model.kind=mlp predicts one answer"):
        train_run(load_preset("digit_add5", ["model.kind=mlp"]), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


TINY_DIGITS = ["task.n_digits=2", "task.n_train=300", "task.n_test=100", "model.d_model=32", "model.n_heads=2",
               "model.d_head=16", "model.d_mlp=64", "train.batch_size=32", "train.epochs=60",
               "train.checkpoint_every=20", "train.eval_every=5"]


def test_fresh_data_training_records_each_digit_and_resumes_exactly(tmp_path):
    config = load_preset("digit_add5", TINY_DIGITS)
    train_run(config, tmp_path / "straight")

    train_interrupted(config, tmp_path / "resumed", 35)
    straight, resumed = load_run(tmp_path / "straight"), load_run(tmp_path / "resumed")
    pd.testing.assert_frame_equal(straight.metrics, resumed.metrics)
    columns = set(straight.metrics.columns)
    assert {f"train_loss_digit{i}" for i in range(3)} | {f"test_loss_digit{i}" for i in range(3)} <= columns
    m = straight.metrics
    assert m["test_loss_digit0"].notna().sum() == 13  # every 5 epochs, 0..60
    # the per-digit losses average to the overall loss (every target is scored)
    mean = m[[f"train_loss_digit{i}" for i in range(3)]].mean(axis=1)
    assert (mean - m["train_loss"]).abs().max() < 1e-9


def test_minibatches_from_the_pool_differ_by_step():
    from grokscope.training.loop import batch_source

    config = load_preset("digit_add5", TINY_DIGITS + ["train.fresh_data=false"])
    task = config.task.build()
    data = task.dataset()
    draw = batch_source(config.train, task, data.tokens[:300], data.labels[:300])
    a, b = draw(0), draw(1)
    assert a[0].shape == (32, 8) and not torch.equal(a[0], b[0]) and torch.equal(draw(0)[0], a[0])


def test_max_element_learns_skip_trigrams_and_is_reported(tmp_path):
    """A real 1-layer attention-only model on the max element: END attends to the maximum and the
    OV circuit copies; the analysis says so and the report renders."""
    config = load_preset("max_element", ["task.length=5", "task.n_values=8", "model.d_model=32", "model.d_head=16",
                                         "train.epochs=400", "train.checkpoint_every=100"])
    train_run(config, tmp_path / "max")
    run = load_run(tmp_path / "max")
    a = analyze_run(run)
    assert a["final"]["test_acc"] > 0.95
    assert a["skip_trigrams"]["end_attends_to_max"] > 0.9
    assert max(h["copying"] for h in a["heads"].values()) > 0.8
    page = build_report(run.paths.root).read_text()
    assert "What the heads do" in page and page.count('class="plotly-graph-div"') >= 3


@pytest.mark.slow
def test_repeated_subsequences_form_an_induction_head_in_a_phase_change(tmp_path):
    """The shipped preset (~3 min): a layer-1 head's induction score rises from chance within a few
    hundred steps, together with a layer-0 previous-token head, at the train loss's phase change."""
    train_run(load_preset("repeated_subsequence"), tmp_path / "rep")
    a = analyze_run(load_run(tmp_path / "rep"))
    head = a["induction_head"]
    assert head.startswith("L1") and a["heads"][head]["induction"] > 0.4
    assert max(h["prev"] for name, h in a["heads"].items() if name.startswith("L0")) > 0.4
    rise_ = a["induction_rise"]
    assert rise_["epoch_90"] - rise_["epoch_10"] <= 1000
    assert rise_["epoch_10"] - 200 <= a["train_loss_phase_change"] <= rise_["epoch_90"] + 200


@pytest.mark.slow
def test_five_digit_addition_has_a_phase_change_per_digit(tmp_path):
    """The shipped preset (~3 min): most answer digits show their own phase change, at several distinct epochs."""
    train_run(load_preset("digit_add5"), tmp_path / "d5")
    a = analyze_run(load_run(tmp_path / "d5"))
    found = [e for e in a["target_phase_changes"].values() if e is not None]
    assert len(found) >= 4 and len(set(found)) >= 3 and max(found) - min(found) >= 100


def test_number_tasks_against_plain_python():
    from math import gcd

    from grokscope.tasks import GCDConfig, PrimalityConfig

    task = PrimalityConfig(n_max=64, base=2).build()
    data = task.dataset()
    assert task.n_ctx == 7 and data.tokens[37].tolist() == [1, 0, 0, 1, 0, 1, 2]  # 37 = 100101b, then '='
    primes = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61}
    assert [n for n in range(64) if data.labels[n, 0] == 1] == sorted(primes)
    split = task.split()
    assert not torch.equal(split.train, torch.arange(len(split.train)))  # random, not a range
    task = GCDConfig(n_max=30).build()
    data = task.dataset()
    row = (12 - 1) * 29 + (18 - 1)
    assert data.tokens[row].tolist() == [1, 2, 10, 1, 8, 11] and data.labels[row, 0] == 6
    assert all(int(z) == gcd(int(f"{t[0]}{t[1]}"), int(f"{t[3]}{t[4]}")) for t, (z,) in
               zip(data.tokens.tolist()[::37], data.labels.tolist()[::37]))


def test_fibonacci_add_sub_and_permute_encodings():
    from grokscope.tasks import AddSubConfig, FibonacciConfig, PermuteConfig

    data = FibonacciConfig(p=53, length=6).build().dataset()
    row = 3 * 53 + 5
    assert data.tokens[row].tolist() == [3, 5, 8, 13, 21] and data.labels[row].tolist() == [8, 13, 21, 34]
    assert data.target_positions == (1, 2, 3, 4)
    data = AddSubConfig(p=59).build().dataset()
    add, sub = 5 * 59 + 9, 59 * 59 + 5 * 59 + 9
    assert data.tokens[add].tolist() == [5, 59, 9, 61] and data.labels[add, 0] == 14
    assert data.tokens[sub].tolist() == [5, 60, 9, 61] and data.labels[sub, 0] == 55
    task = PermuteConfig(length=5, n_values=7).build()
    x, y = task.sample(50, torch.Generator().manual_seed(0))
    assert torch.equal(y, x[:, 1:6][:, task.sigma]) and torch.equal(x[:, 7:], y[:, :-1])
    assert sorted(task.sigma.tolist()) == list(range(5))


@pytest.mark.parametrize("name", __import__("grokscope").config.preset_names())
def test_every_preset_trains(name, tmp_path):
    """`grokscope train --preset NAME` works for every shipped preset (three epochs here)."""
    config = load_preset(name, ["train.epochs=3", "train.threads=1"])
    summary = train_run(config, tmp_path / name)
    assert summary.final_epoch == 3 and (tmp_path / name / "summary.json").is_file()
    metrics = load_run(tmp_path / name).metrics
    assert metrics["train_loss"].map(math.isfinite).all() and metrics["train_loss"].iloc[-1] != metrics["train_loss"].iloc[0]
    assert math.isfinite(summary.test_loss) and 0 <= summary.test_acc <= 1


def test_tasks_command_lists_every_task_with_parameters():
    from typer.testing import CliRunner

    from grokscope.cli import app

    out = CliRunner().invoke(app, ["tasks"]).stdout
    for name in ["modular", "digit_add", "repeated_subsequence", "max_element", "sort", "permute", "primality",
                 "gcd", "fibonacci", "add_sub"]:
        assert f"{name}:" in out
    assert "task.n_digits" in out and "task.sub_length" in out and "random" in out


def test_variable_length_sort_pads_and_scores_only_the_sorted_entries():
    task = SortConfig(length=6, n_values=10, min_length=2, repeats=True).build()
    x, y = task.sample(300, torch.Generator().manual_seed(2))
    assert x.shape == (300, 13) and y.shape == (300, 13) and task.target_positions == tuple(range(13))
    pad, mid = 12, 11
    lengths = set()
    for tokens, labels in zip(x.tolist(), y.tolist()):
        k = tokens.index(mid) - 1
        lengths.add(k)
        items = tokens[1:k + 1]
        assert [v for v in labels if v != IGNORE] == sorted(items)  # the k sorted entries, nothing else
        assert labels.index(sorted(items)[0]) == k + 1  # the first is read at MID
        assert tokens[k + 2:2 * k + 1] == sorted(items)[:-1] and set(tokens[2 * k + 1:]) <= {pad}
    assert lengths == set(range(2, 7))


def test_an_mlp_on_a_sequence_task_is_analysed_without_heads(tmp_path):
    config = load_preset("primality", ["model.kind=mlp", "task.n_max=64", "model.d_model=16", "model.d_mlp=32",
                                       "train.epochs=30", "train.checkpoint_every=10"])
    train_run(config, tmp_path / "mlp")
    a = analyze_run(load_run(tmp_path / "mlp"))
    assert a["heads"] == {} and "no attention heads" in a["findings"][-1]
    assert "This model has no attention" in build_report(tmp_path / "mlp").read_text()


def test_gcd_runs_are_analysed_although_outputs_outnumber_tokens(tmp_path):
    """GCD has 20 output classes but 12 input tokens: the induction probe draws only tokens."""
    config = load_preset("gcd", ["task.n_max=20", "model.d_model=16", "model.n_heads=2", "model.d_head=8",
                                 "model.d_mlp=32", "train.epochs=20", "train.checkpoint_every=10"])
    train_run(config, tmp_path / "gcd")
    a = analyze_run(load_run(tmp_path / "gcd"))
    assert set(a["heads"]) == {"L0H0", "L0H1"}
