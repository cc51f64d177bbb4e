"""grokscope runs and grokscope query over a folder of runs."""

import pytest
from typer.testing import CliRunner

from grokscope import load_preset, train_run
from grokscope.analysis.registry import analyze_run
from grokscope.catalog import query, summaries
from grokscope.cli import app
from grokscope.runs import load_run



@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    tiny = ["task.p=7", "model.d_model=16", "model.d_head=8", "model.d_mlp=32", "train.epochs=30"]
    train_run(load_preset("quick", tiny), root / "a")
    analyze_run(load_run(root / "a"))
    train_run(load_preset("quick", [*tiny, "train.seed=1"]), root / "group" / "b")
    train_run(load_preset("sort", ["train.epochs=20"]), root / "c")
    return root


def test_runs_are_found_at_any_depth_and_tabulated(folder):
    table = summaries(folder)
    assert table["run"].tolist() == ["a", "c", "group/b"]
    assert table["status"].tolist() == ["done", "done", "done"]
    result = CliRunner().invoke(app, ["runs", str(folder)])
    assert result.exit_code == 0 and "group/b" in result.stdout and "verdict" in result.stdout


def test_sql_over_summaries_metrics_and_progress(folder):
    pytest.importorskip("duckdb")
    counts = query(folder, "SELECT task, count(*) AS n FROM summaries GROUP BY task ORDER BY task")
    assert counts.to_dict("records") == [{"task": "modular", "n": 2}, {"task": "sort", "n": 1}]
    epochs = query(folder, "SELECT run, max(epoch) AS last FROM metrics GROUP BY run ORDER BY run")
    assert epochs["last"].tolist() == [30, 20, 30]
    assert query(folder, "SELECT DISTINCT run FROM progress")["run"].tolist() == ["a"]  # only a was analysed
    result = CliRunner().invoke(app, ["query", str(folder), "SELECT task, count(*) FROM summaries GROUP BY task"])
    assert result.exit_code == 0 and "modular" in result.stdout


def test_bad_sql_and_empty_folders_get_one_clear_line(folder, tmp_path):
    pytest.importorskip("duckdb")
    result = CliRunner().invoke(app, ["query", str(folder), "SELEKT nonsense"])
    assert result.exit_code == 2 and result.stderr.startswith("error: the query failed: ")
    assert len(result.stderr.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["runs", str(tmp_path)])
    assert result.exit_code == 2 and "holds no grokscope runs" in result.stderr
