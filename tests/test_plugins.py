"""Tasks and presets from outside the package: an entry-point task (tests/plugin_example, a
distribution on the path) is listed, trained, analysed and reported; presets come from a file
or from GROKSCOPE_PRESETS."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grokscope.cli import app
from grokscope.config import load_preset, preset_names

PLUGIN = Path(__file__).parent / "plugin_example"
PRESET = """description = "an outside task"
[task]
name = "square_sum"
p = 13
frac_train = 0.5
[model]
kind = "transformer"
d_model = 16
n_heads = 2
d_head = 8
d_mlp = 32
[train]
kind = "full_batch"
epochs = 40
checkpoint_every = 20
"""


def grokscope(*args, cwd, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(PLUGIN), **(env_extra or {})}
    return subprocess.run([str(Path(sys.executable).parent / "grokscope"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_an_entry_point_task_is_listed_trained_analysed_and_reported(tmp_path):
    listed = grokscope("tasks", cwd=tmp_path)
    assert listed.returncode == 0 and "square_sum" in listed.stdout, listed.stderr
    (tmp_path / "square.toml").write_text(PRESET)
    result = grokscope("run", "--preset", "square.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "runs" / "square"
    assert (run / "summary.json").is_file() and (run / "analysis.json").is_file() and (run / "report.html").is_file()


def test_presets_come_from_a_file_or_the_search_path(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text('[task]\nname = "modular"\np = 7\n[model]\nkind = "transformer"\n'
                                        '[train]\nkind = "full_batch"\nepochs = 3\n')
    assert load_preset(str(tmp_path / "mine.toml")).task.p == 7
    monkeypatch.setenv("GROKSCOPE_PRESETS", str(tmp_path))
    assert "mine" in preset_names() and load_preset("mine", ["train.epochs=5"]).train.epochs == 5
    (tmp_path / "broken.toml").write_text("[task\n")
    result = CliRunner().invoke(app, ["train", "--preset", str(tmp_path / "broken.toml"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "is not valid TOML" in result.stderr and not (tmp_path / "r").exists()
    result = CliRunner().invoke(app, ["train", "--preset", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "no preset file at" in result.stderr


def test_a_broken_plugin_is_named_in_one_line(tmp_path):
    dist = tmp_path / "bad-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bad\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[grokscope.tasks]\nbad = no_such_module_here\n")
    result = grokscope("tasks", cwd=tmp_path, env_extra={"PYTHONPATH": f"{PLUGIN}{os.pathsep}{tmp_path}"})
    assert result.returncode == 2 and "entry point 'bad' (no_such_module_here) failed to load" in result.stderr
    assert "Traceback" not in result.stderr
