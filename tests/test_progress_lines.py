"""Without a terminal, progress is a plain line every few seconds, not a silent bar."""

from typer.testing import CliRunner

from grokscope.cli import app
from grokscope.progress_lines import PlainProgress


def test_plain_lines_carry_count_rate_time_left_and_stats():
    lines = []
    with PlainProgress("training", "epochs", lines.append, every=0) as progress:
        task = progress.add_task("train", total=200, stats="")
        progress.update(task, completed=50, stats="train loss 0.5")
        progress.advance(task, 50)
    assert lines[0].startswith("training: 50/200 epochs (25.0%) | ") and "epochs/s" in lines[0]
    assert "elapsed, ~" in lines[0] and "left" in lines[0] and lines[0].endswith("| train loss 0.5")
    assert lines[-1].startswith("training: 100/200 epochs (50.0%)")


def test_lines_are_spaced_in_time():
    lines = []
    with PlainProgress("sweep", "members", lines.append, every=3600) as progress:
        task = progress.add_task("sweep", total=3)
        for _ in range(3):
            progress.advance(task)
    assert lines == [lines[-1]] and lines[-1].startswith("sweep: 3/3 members (100.0%)")  # only the final line


def test_training_without_a_terminal_prints_plain_progress(tmp_path):
    result = CliRunner().invoke(app, ["train", "--preset", "quick", "--set", "task.p=7", "--set", "train.epochs=50",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "training: 50/50 epochs (100.0%)" in result.stdout and "train loss" in result.stdout
