"""Crash consistency: SIGKILL at several points of train, analyze and report. Afterwards a
run directory either resumes to the result of an uninterrupted run or is reported
incomplete; no half-written file is read as complete. (A killed sweep: test_sweeps.py.)"""

import json
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from grokscope.cli import app

TINY = ["task.p=11", "model.d_model=16", "model.d_head=8", "model.d_mlp=32", "train.epochs=1500",
        "train.checkpoint_every=100"]
SETS = [a for o in TINY for a in ("--set", o)]
DELAYS = [0.0, 0.15, 0.6, 1.5]  # seconds after the command's first file appears


def run_cli(*args):
    return CliRunner().invoke(app, list(args))


def kill_after(args: list[str], appears, delay: float) -> None:
    """Start ``grokscope ARGS``, wait for the path ``appears`` (or the process to end), wait
    ``delay`` seconds more, and SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-m", "grokscope", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not appears.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert run_cli("train", "--preset", "quick", *SETS, "--out", str(out)).exit_code == 0
    assert run_cli("analyze", str(out)).exit_code == 0
    return out


def same_analysis(a, b) -> bool:
    drop = lambda d: {k: v for k, v in d.items() if k != "seconds"}  # noqa: E731
    return drop(json.loads(a.read_text())) == drop(json.loads(b.read_text()))


@pytest.mark.parametrize("delay", DELAYS)
def test_train_killed_then_every_command_agrees(reference, tmp_path, delay):
    out = tmp_path / "run"
    kill_after(["train", "--preset", "quick", *SETS, "--out", str(out)], out / "config.json", delay)
    if not (out / "summary.json").exists():  # incomplete: said so by analyze and report
        for command in ("analyze", "report"):
            result = run_cli(command, str(out))
            assert result.exit_code == 2 and "incomplete" in result.stderr, (command, result.stderr)
    result = run_cli("train", "--preset", "quick", *SETS, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "metrics.parquet").read_bytes() == (reference / "metrics.parquet").read_bytes()


@pytest.mark.parametrize("delay", DELAYS)
def test_analyze_killed_then_report_refuses_or_reads_a_whole_analysis(reference, tmp_path, delay):
    out = tmp_path / "run"
    subprocess.run(["cp", "-r", str(reference), str(out)], check=True)
    for name in ("analysis.json", "progress.parquet", "analysis.safetensors"):
        (out / name).unlink()
    kill_after(["analyze", str(out)], out / ".lock", delay)
    result = run_cli("report", str(out))
    if (out / "analysis.json").exists():
        assert same_analysis(out / "analysis.json", reference / "analysis.json")  # never half-written
    else:
        assert result.exit_code == 2 and "no analysis.json" in result.stderr
    assert run_cli("analyze", str(out)).exit_code == 0
    assert same_analysis(out / "analysis.json", reference / "analysis.json")


@pytest.mark.parametrize("delay", DELAYS[:3])
def test_report_killed_leaves_no_half_page(reference, tmp_path, delay):
    out = tmp_path / "run"
    subprocess.run(["cp", "-r", str(reference), str(out)], check=True)
    (out / "report.html").unlink(missing_ok=True)
    kill_after(["report", str(out)], out / ".lock", delay)
    if (out / "report.html").exists():
        assert (out / "report.html").read_text().rstrip().endswith("</html>")
    assert run_cli("report", str(out)).exit_code == 0
    assert (out / "report.html").read_text().rstrip().endswith("</html>")
