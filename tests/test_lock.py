"""One writer per run directory: a second process is refused, naming the holder; the lock
of a killed process is taken over."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from grokscope import GrokscopeError
from grokscope.cli import app
from grokscope.lock import LOCK_NAME, run_lock


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_is_exclusive_and_released(tmp_path):
    with run_lock(tmp_path, "first"):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["command"] == "first"
        with pytest.raises(GrokscopeError, match=f"in use by first \\(pid {os.getpid()} on "):
            with run_lock(tmp_path, "second"):
                pass
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path, capsys):
    import socket

    pid = dead_pid()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "command": "old",
                                                  "since": "then"}))
    with run_lock(tmp_path, "new"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["command"] == "new"
    assert f"taking over the stale lock of {tmp_path} (pid {pid}" in capsys.readouterr().err
    assert not (tmp_path / LOCK_NAME).exists()


def test_two_trainings_on_one_directory_and_a_killed_holder(tmp_path):
    out = tmp_path / "run"
    tiny = ["task.p=7", "model.d_model=16", "model.d_head=8", "model.d_mlp=32"]  # ~1 ms per epoch
    args = ["train", "--preset", "quick", "--out", str(out), *[a for o in tiny for a in ("--set", o)],
            "--set", "train.epochs=4000"]
    first = subprocess.Popen([sys.executable, "-m", "grokscope", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (out / "checkpoints" / "epoch_000100.safetensors").exists():
            assert time.time() < deadline and first.poll() is None, "the first training did not start"
            time.sleep(0.1)
        refused = CliRunner().invoke(app, args)
        assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert refused.stderr.startswith(f"error: {out} is in use by grokscope train (pid {first.pid} on ")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / LOCK_NAME).exists()  # a killed process leaves its lock behind
    resumed = CliRunner().invoke(app, args[:-2] + ["--set", "train.epochs=4000"])
    assert resumed.exit_code == 0, resumed.output
    assert "taking over the stale lock" in resumed.stderr and (out / "summary.json").is_file()
    assert not (out / LOCK_NAME).exists()
