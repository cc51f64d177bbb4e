import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import train_interrupted
import torch

from grokscope import GrokscopeError, load_preset, load_run, train_run
from grokscope.config import TrainConfig
from grokscope.training.loop import checkpoint_schedule
from grokscope.training.loss import cross_entropy
from grokscope.training.optim import lr_at, make_optimizer


def test_warmup_matches_the_papers_lambda_lr():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10)
    assert [lr_at(s, cfg) for s in (0, 1, 5, 10, 500)] == pytest.approx([0, 1e-4, 5e-4, 1e-3, 1e-3])
    assert lr_at(0, TrainConfig(warmup_steps=0)) == TrainConfig().lr


def test_optimizer_decays_by_name(tiny_config):
    model = tiny_config.model.build(8, 7, 3)
    opt = make_optimizer(model, TrainConfig(weight_decay=0.5, decay_params="W_in,W_out"))
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {g["name"]: (g["weight_decay"], sorted(names[id(p)] for p in g["params"])) for g in opt.param_groups}
    assert groups["decay"] == (0.5, ["blocks.0.mlp.W_in", "blocks.0.mlp.W_out"])
    assert groups["no_decay"][0] == 0.0 and "embed.W_E" in groups["no_decay"][1]
    assert not any(".b_" in n for n in groups["no_decay"][1])  # frozen biases are not optimised


def test_loss_dtype_is_honoured():
    logits = torch.randn(5, 1, 7)
    labels = torch.randint(0, 7, (5, 1))
    assert cross_entropy(logits, labels, "float64").dtype == torch.float64
    assert cross_entropy(logits, labels, "float32").dtype == torch.float32
    ref = torch.nn.functional.cross_entropy(logits[:, 0].double(), labels[:, 0])
    torch.testing.assert_close(cross_entropy(logits, labels), ref)
    # float32 rounds a confident correct prediction's loss to exactly 0; float64 does not
    sure = torch.tensor([[[20.0, 0.0]]])  # true loss ~2e-9, below float32 resolution at 20
    assert cross_entropy(sure, torch.tensor([[0]]), "float32").item() == 0.0
    assert cross_entropy(sure, torch.tensor([[0]]), "float64").item() > 0.0


def test_checkpoint_schedule_sees_early_epochs():
    s = checkpoint_schedule(1000, 100)
    assert s[:8] == [0, 1, 2, 3, 5, 7, 10, 15] and 100 in s and 1000 in s and s == sorted(set(s))
    assert checkpoint_schedule(250, 100)[-1] == 250


def test_run_directory_layout(tiny_config, tmp_path):
    summary = train_run(tiny_config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.complete and run.summary["final_epoch"] == 40 == summary.final_epoch
    assert run.config == tiny_config
    m = run.metrics
    assert list(m.columns) == ["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]
    assert m["epoch"].tolist() == list(range(41))
    assert m["test_acc"].notna().tolist() == [e % 5 == 0 for e in range(41)]
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names[0] == "epoch_000000.safetensors" and names[-1] == "epoch_000040.safetensors"
    assert run.checkpoint_epochs == [0, 1, 2, 3, 5, 7, 10, 15, 20, 40]
    # a saved model reproduces the logged metrics at its epoch
    task = run.task
    data, split = task.dataset(), task.split()
    for epoch in (0, 20, 40):
        model = run.model(epoch)
        with torch.no_grad():
            logits = model(data.tokens[split.test])[:, 2:]
        loss = cross_entropy(logits, data.labels[split.test]).item()
        assert loss == pytest.approx(m.loc[epoch, "test_loss"], rel=1e-5)


def test_same_seed_same_metrics(tiny_config, tmp_path):
    train_run(tiny_config, tmp_path / "a")
    train_run(tiny_config, tmp_path / "b")
    pd.testing.assert_frame_equal(load_run(tmp_path / "a").metrics, load_run(tmp_path / "b").metrics)
    other = tiny_config.with_overrides(["train.seed=1"])
    train_run(other, tmp_path / "c")
    assert not load_run(tmp_path / "a").metrics.equals(load_run(tmp_path / "c").metrics)


def test_same_seed_same_metrics_on_two_threads(tmp_path):
    """The canonical shapes on two threads (where some CPU kernels are not deterministic by
    default) still repeat bit for bit."""
    config = load_preset("nanda2023", ["train.epochs=20", "train.threads=2", "train.checkpoint_every=10"])
    train_run(config, tmp_path / "a")
    train_run(config, tmp_path / "b")
    pd.testing.assert_frame_equal(load_run(tmp_path / "a").metrics, load_run(tmp_path / "b").metrics, check_exact=True)


def test_a_run_resumes_with_another_thread_count(tmp_path):
    """Threads (and the folded path) are how a run executes, not what it is: a run started on
    one thread resumes on two, ends with the metrics of a one-thread run, and summary.json
    records how the last session executed."""
    config = load_preset("nanda2023", ["train.epochs=20", "train.threads=1", "train.checkpoint_every=10"])
    train_run(config, tmp_path / "one")

    summary = train_interrupted(config, tmp_path / "resumed", 12, config.with_overrides(["train.threads=2"]))
    pd.testing.assert_frame_equal(load_run(tmp_path / "one").metrics, load_run(tmp_path / "resumed").metrics,
                                  check_exact=True)
    assert summary.execution.threads == 2 and summary.execution.folded
    assert load_run(tmp_path / "resumed").config.train.threads == 1  # config.json: as started
    recorded = json.loads((tmp_path / "resumed" / "summary.json").read_text())["execution"]
    assert recorded["threads"] == 2 and recorded["cpu"] and recorded["torch"] == torch.__version__


def test_finished_run_is_not_retrained(tiny_config, tmp_path):
    first = train_run(tiny_config, tmp_path / "run")
    before = os.path.getmtime(tmp_path / "run" / "metrics.parquet")
    assert train_run(tiny_config, tmp_path / "run") == first
    assert os.path.getmtime(tmp_path / "run" / "metrics.parquet") == before


def test_different_config_in_output_dir_is_refused(tiny_config, tmp_path):
    train_run(tiny_config, tmp_path / "run")
    with pytest.raises(GrokscopeError, match="different config.*train.lr"):
        train_run(tiny_config.with_overrides(["train.lr=0.01"]), tmp_path / "run")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(GrokscopeError, match="not a grokscope run directory"):
        train_run(tiny_config, tmp_path / "other")


def test_corrupt_and_mismatched_checkpoints_fail_clearly(tiny_config, tmp_path):
    train_run(tiny_config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    path = run.paths.checkpoint(20, tiny_config.train.epochs)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GrokscopeError, match="corrupt"):
        run.model(20)
    with pytest.raises(GrokscopeError, match="no checkpoint at epoch 21"):
        run.model(21)
    wide = tiny_config.with_overrides(["model.d_model=24"])
    train_run(wide, tmp_path / "wide")
    path.write_bytes(load_run(tmp_path / "wide").paths.checkpoint(20, 40).read_bytes())
    with pytest.raises(GrokscopeError, match="does not match the model"):
        run.model(20)


def test_corrupt_resume_state_fails_clearly(tiny_config, tmp_path):
    cfg = tiny_config
    train_run(cfg, tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()  # as if killed before the end
    (tmp_path / "run" / "resume.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(GrokscopeError, match="corrupt"):
        train_run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_load_run_errors(tmp_path):
    with pytest.raises(GrokscopeError, match="no run directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GrokscopeError, match="not a grokscope run directory"):
        load_run(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"task": {"name": "modular", "p": 1}}')
    with pytest.raises(GrokscopeError, match="not a valid run config"):
        load_run(tmp_path / "bad")


KILL_OVERRIDES = ["train.epochs=600", "train.checkpoint_every=50", "train.eval_every=10"]


def test_sigkill_then_resume_gives_identical_metrics(tmp_path):
    """Kill a training process with SIGKILL mid-way; re-running finishes with the same metrics
    and weights as an uninterrupted run."""
    cmd = [sys.executable, "-m", "grokscope.cli", "train", "--preset", "quick", "--out", str(tmp_path / "killed")]
    for o in KILL_OVERRIDES:
        cmd += ["--set", o]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = tmp_path / "killed" / "checkpoints" / "epoch_000250.safetensors"
    deadline = time.time() + 120
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.exists(), "training did not reach epoch 250"
    killed = load_run(tmp_path / "killed")
    assert not killed.complete and killed.checkpoint_epochs[-1] < 600
    config = load_preset("quick", KILL_OVERRIDES)
    train_run(config, tmp_path / "killed")
    train_run(config, tmp_path / "straight")
    resumed, straight = load_run(tmp_path / "killed"), load_run(tmp_path / "straight")
    pd.testing.assert_frame_equal(resumed.metrics, straight.metrics)
    assert resumed.checkpoint_epochs == straight.checkpoint_epochs
    for name, tensor in straight.model(600).state_dict().items():
        assert torch.equal(resumed.model(600).state_dict()[name], tensor), name
    assert resumed.summary["grokking_epoch"] == straight.summary["grokking_epoch"]


def test_small_modular_addition_groks(tmp_path):
    """Integration: (x + y) mod 31 memorises, then generalises; training stops after grokking."""
    config = load_preset("quick", ["train.stop_after_grok=100"])
    summary = train_run(config, tmp_path / "run")
    m = load_run(tmp_path / "run").metrics
    assert summary.grokking_epoch is not None and summary.stopped == "grokked"
    assert summary.test_acc >= 0.99 and summary.final_epoch == summary.grokking_epoch + 100
    evaluated = m.dropna()
    memorised = evaluated[evaluated["train_acc"] == 1.0]["epoch"].min()
    # memorisation comes first, with test accuracy still low, and generalisation much later
    assert evaluated.set_index("epoch").loc[memorised, "test_acc"] < 0.5
    assert summary.grokking_epoch > 2 * memorised
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["grokking_epoch"] == summary.grokking_epoch
