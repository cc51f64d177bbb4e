"""train.device: auto picks what the machine has and records it; a device the machine lacks is
one clear error; the device is not part of a run's identity."""

import json

import pandas as pd
import pytest
from conftest import train_interrupted
import torch
from typer.testing import CliRunner

from grokscope import load_preset, load_run, train_run
from grokscope.cli import app
from grokscope.devices import resolve_device

TINY = ["--set", "task.p=7", "--set", "model.d_model=16", "--set", "model.d_head=8", "--set", "model.d_mlp=32",
        "--set", "train.epochs=30"]


def test_cpu_and_auto_train_and_record_the_device(tmp_path):
    for device in ("cpu", "auto"):
        result = CliRunner().invoke(app, ["train", "--preset", "quick", *TINY, "--device", device,
                                          "--out", str(tmp_path / device)])
        assert result.exit_code == 0, result.output
        execution = json.loads((tmp_path / device / "summary.json").read_text())["execution"]
        expected = "cuda" if torch.cuda.is_available() else "cpu"
        assert execution["device"].startswith(expected if device == "auto" else "cpu") and execution["hardware"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_the_machine_lacks_is_one_clear_error(tmp_path):
    for device in ("cuda", "cuda:1"):
        result = CliRunner().invoke(app, ["train", "--preset", "quick", "--device", device, "--out", str(tmp_path / "r")])
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
        assert "has no usable CUDA device" in result.stderr and not (tmp_path / "r").exists()
    result = CliRunner().invoke(app, ["train", "--preset", "quick", "--device", "tpu", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "train.device must be auto, cpu, cuda, cuda:N or mps" in result.stderr


def test_a_run_resumes_on_another_device_setting(tmp_path):
    """Started with device=cpu, resumed with device=auto: one run, the metrics of an uninterrupted
    run (here both are the CPU; a GPU resumes from the same CPU-written checkpoints)."""
    config = load_preset("quick", ["task.p=7", "model.d_model=16", "model.d_head=8", "model.d_mlp=32",
                                   "train.epochs=40", "train.checkpoint_every=10", "train.device=cpu"])
    train_run(config, tmp_path / "whole")

    train_interrupted(config, tmp_path / "moved", 25, config.with_overrides(["train.device=auto"]))
    pd.testing.assert_frame_equal(load_run(tmp_path / "whole").metrics, load_run(tmp_path / "moved").metrics,
                                  check_exact=True)
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


def test_a_sweep_trains_its_members_on_the_device_asked_for(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text('preset = "quick"\n[set]\n"task.p" = 7\n"model.d_model" = 16\n"model.d_head" = 8\n'
                    '"model.d_mlp" = 32\n"train.epochs" = 20\n[axes]\n"train.seed" = [0]\n')
    result = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "s"), "--workers", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    member = next(p for p in (tmp_path / "s").iterdir() if (p / "summary.json").is_file())
    assert json.loads((member / "summary.json").read_text())["execution"]["device"] == "cpu"
    if not torch.cuda.is_available():
        result = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "t"), "--device", "cuda"])
        assert result.exit_code == 2 and "no usable CUDA device" in result.stderr and not (tmp_path / "t").exists()
