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
    assert (out / "tensorboard" / "hparams").is_dir()  # the summary, as hyper-parameters and results


def test_a_missing_logger_library_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(GrokscopeError, match=r"pip install 'grokscope\[tensorboard\]'"):
        train_run(load_preset("quick", ["train.log=tensorboard"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()
