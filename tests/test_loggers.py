"""--log tensorboard streams every evaluated epoch, the summary and the progress measures to
TensorBoard event files, read back here with TensorBoard's own reader."""

import sys

import pytest
from typer.testing import CliRunner

from grokscope import GrokscopeError, load_preset, train_run
from grokscope.cli import app

TINY = ["--set", "task.p=11", "--set", "model.d_model=16", "--set", "model.d_head=8", "--set", "model.d_mlp=32",
        "--set", "train.epochs=60"]


def test_a_run_logged_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--preset", "quick", *TINY, "--log", "tensorboard", "--out", str(out)])
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "train/acc", "test/loss", "test/acc"} <= set(scalars)
    assert [e.step for e in events.Scalars("test/acc")] == list(range(0, 61, 10))  # every evaluated epoch
    assert "progress/ssw_total" in scalars and "config/text_summary" in events.Tags()["tensors"]
    assert "verdict/text_summary" in events.Tags()["tensors"]
    assert (out / "tensorboard" / "hparams").is_dir()  # the summary, as hyper-parameters and results


def test_a_missing_logger_library_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(GrokscopeError, match=r"pip install 'grokscope\[tensorboard\]'"):
        train_run(load_preset("quick", ["train.log=tensorboard"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_run_logged_to_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from wandb_records import run_contents

    monkeypatch.setenv("WANDB_MODE", "offline")  # nothing reaches the network
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--preset", "quick", *TINY, "--log", "wandb", "--out", str(out)])
    assert result.exit_code == 0, result.output
    training, analysis = sorted(out.glob("wandb/offline-run-*/run-*.wandb"), key=lambda p: p.stat().st_mtime)
    config, history, summary = run_contents(training)
    assert config["task.p"] == 11 and config["hardware"]
    evaluated = [row for row in history if "test/acc" in row]
    assert [row["_step"] for row in evaluated] == list(range(0, 61, 10))  # every evaluated epoch, at its epoch
    assert {"train/loss", "train/acc", "test/loss"} <= set(evaluated[-1]) and summary["final_epoch"] == 60
    _, progress, after = run_contents(analysis)  # the analysis continues the same run with the progress measures
    assert any("progress/ssw_total" in row and "checkpoint_epoch" in row for row in progress)
    assert after["verdict"].startswith("verdict: ")


def test_sweep_members_share_a_wandb_group(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from wandb_records import records

    monkeypatch.setenv("WANDB_MODE", "offline")
    spec = tmp_path / "sweep.toml"
    spec.write_text('preset = "quick"\n[set]\n"task.p" = 7\n"model.d_model" = 16\n"model.d_head" = 8\n'
                    '"model.d_mlp" = 32\n"train.epochs" = 20\n[axes]\n"train.seed" = [0, 1]\n')
    result = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "wd"), "--workers", "1", "--log", "wandb"])
    assert result.exit_code == 0, result.output
    groups = {r.run.run_group for f in (tmp_path / "wd").glob("*/wandb/offline-run-*/run-*.wandb")
              for r in records(f) if r.WhichOneof("record_type") == "run"}
    assert groups == {"wd"}
    assert len(list((tmp_path / "wd").glob("*/tensorboard"))) == 0  # only the logger asked for
