import subprocess
import sys

import pytest
from typer.testing import CliRunner

from grokscope.cli import app

runner = CliRunner()
TINY = ["--set", "task.p=7", "--set", "task.frac_train=0.5", "--set", "model.d_model=16",
        "--set", "model.d_head=8", "--set", "model.d_mlp=32", "--set", "train.epochs=30"]


def test_tasks_lists_the_modular_family_with_parameters():
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0
    for text in ("modular", "task.op", "add|sub|mul|div|pow_sum", "task.p", "task.frac_train", "task.seed"):
        assert text in result.stdout


def test_presets_one_per_line_name_first():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0
    names = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert "nanda2023" in names and "quick" in names


def test_train_writes_a_run_and_prints_a_summary(tmp_path):
    result = runner.invoke(app, ["train", "--preset", "quick", *TINY, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "stopped at epoch 30" in result.stdout and str(tmp_path / "run") in result.stdout
    assert (tmp_path / "run" / "summary.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["train", "--preset", "nope"], "unknown preset 'nope'"),
    (["train", "--set", "task.name=sorting"], "unknown task 'sorting'"),
    (["train", "--set", "task.nope=1"], "unknown config key 'task.nope'"),
    (["train", "--set", "task.p=1"], "task.p must be at least 2"),
    (["train", "--set", "task.op=div", "--set", "task.p=100"], "needs a prime p"),
    (["train", "--set", "task.frac_train=0"], "task.frac_train must be in (0, 1)"),
    (["train", "--set", "task.frac_train=1.2"], "task.frac_train must be in (0, 1)"),
    (["train", "--set", "train.epochs=0"], "train.epochs must be positive"),
    (["run", "--set", "train.epochs=-1"], "train.epochs must be positive"),
])
def test_bad_input_gives_one_line_and_no_run_dir(tmp_path, args, message):
    out = tmp_path / "run"
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_different_config_in_out_dir_refused(tmp_path):
    out = str(tmp_path / "run")
    assert runner.invoke(app, ["train", "--preset", "quick", *TINY, "--out", out]).exit_code == 0
    result = runner.invoke(app, ["train", "--preset", "quick", *TINY, "--set", "train.lr=0.1", "--out", out])
    assert result.exit_code == 2 and "holds a run with a different config" in result.stderr


def test_corrupt_resume_state_via_the_real_command(tmp_path):
    """The installed entry point prints one line, no traceback, for a corrupt checkpoint."""
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", "--preset", "quick", *TINY, "--out", str(out)]).exit_code == 0
    (out / "summary.json").unlink()
    (out / "resume.safetensors").write_bytes(b"garbage")
    proc = subprocess.run([sys.executable, "-m", "grokscope.cli", "train", "--preset", "quick", *TINY,
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: checkpoint") and "corrupt" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (out / "summary.json").exists()
