"""Sizes are checked before anything is allocated or written."""

import pytest
from typer.testing import CliRunner

from grokscope import GrokscopeError, load_preset, preset_names, train_run
from grokscope.cli import app
from grokscope.sizing import estimate_memory, parse_size


def test_an_impossible_task_is_refused_with_an_estimate_and_leaves_no_directory(tmp_path):
    result = CliRunner().invoke(app, ["train", "--set", "task.p=1000000", "--out", str(tmp_path / "big")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: this run needs about ") and "GiB" in result.stderr
    assert not (tmp_path / "big").exists()


def test_max_memory_is_honoured_everywhere(tmp_path):
    result = CliRunner().invoke(app, ["run", "--preset", "quick", "--max-memory", "1M", "--out", str(tmp_path / "q")])
    assert result.exit_code == 2 and "the limit is 1 MiB (--max-memory)" in result.stderr
    with pytest.raises(GrokscopeError, match="needs about"):
        train_run(load_preset("quick"), tmp_path / "q", max_memory=2**20)
    assert not (tmp_path / "q").exists()
    assert parse_size("8G") == 8 * 2**30 and parse_size("512M") == 512 * 2**20 and parse_size("1.5GiB") == 3 * 2**29
    with pytest.raises(GrokscopeError, match="--max-memory must be a size"):
        parse_size("lots")


def test_estimates_are_of_the_right_size():
    canonical = estimate_memory(load_preset("nanda2023"))
    # benchmarks/bench_memory.py measured a 195 MB step working set for the plain reference at p = 113
    assert 150e6 < canonical.activations < 400e6
    assert canonical.weights == 16 * 227_313  # weights, gradients, two AdamW moments, float32
    assert estimate_memory(load_preset("nanda2023", ["task.p=226"])).analysis > 4 * canonical.analysis  # p^2 (p + d_mlp)
    for name in preset_names():  # every shipped preset fits a laptop
        assert estimate_memory(load_preset(name)).total < 4 * 2**30, name
