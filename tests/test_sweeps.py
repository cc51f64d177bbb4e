import json
import re
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from grokscope.cli import app
from grokscope.sweeps import SweepSpec, run_local, summarize
from grokscope.sweeps.local import bisection_ahead

SPEC = """
preset = "quick"
[set]
"task.p" = 7
"task.frac_train" = 0.5
"model.d_model" = 16
"model.d_head" = 8
"model.d_mlp" = 32
"train.epochs" = 30
"train.checkpoint_every" = 10
[axes]
"train.seed" = [0, 1]
"train.weight_decay" = [1.0, 0.3]
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(SPEC)
    return path


def test_spec_is_the_product_of_its_axes(spec_file):
    members = SweepSpec.from_toml(spec_file).members()
    assert [m.values for m in members] == [
        {"train.seed": 0, "train.weight_decay": 1.0}, {"train.seed": 0, "train.weight_decay": 0.3},
        {"train.seed": 1, "train.weight_decay": 1.0}, {"train.seed": 1, "train.weight_decay": 0.3}]
    assert members[1].name == "train.seed=0,train.weight_decay=0.3"
    assert members[3].config.train.weight_decay == 0.3 and members[3].config.task.p == 7
    assert all(m.config.train.threads == 1 for m in members)


@pytest.mark.parametrize("text, message", [
    ('preset = "nope"', "unknown preset"),
    ('[axes]\n"train.seed" = []', "non-empty list"),
    ('[axes]\n"task.colour" = [1]', "unknown config key 'task.colour'"),
    ('[set]\n"task.p" = 1', "task.p must be at least 2"),
    ('presets = "quick"', "unknown sweep spec key"),
    ('[axes\n', "not valid TOML"),
])
def test_bad_specs_fail_before_anything_runs(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=None) as err:
        SweepSpec.from_toml(path)
    assert message in str(err.value)


def test_local_sweep_summary_skip_and_failure(spec_file, tmp_path):
    out = tmp_path / "sweep"
    spec = SweepSpec.from_toml(spec_file)
    assert run_local(spec, out, workers=1) == {}
    table = summarize(out)
    assert len(table) == 4 and set(table["status"]) == {"done"}
    assert {"train.seed", "train.weight_decay", "grokking_epoch", "test_acc", "key_frequencies",
            "implements_fourier_multiplication"} <= set(table.columns)
    assert (out / "summary.parquet").is_file() and (out / "summary.csv").is_file()

    # an interrupted member is finished on the next run; finished ones are left alone
    done = out / spec.members()[0].name
    stamp = os.path.getmtime(done / "metrics.parquet")
    interrupted = out / spec.members()[3].name
    (interrupted / "summary.json").unlink()
    # a member whose directory holds a different run fails, and the rest completes
    broken = out / spec.members()[2].name
    config = json.loads((broken / "config.json").read_text())
    config["train"]["lr"] = 0.5
    (broken / "config.json").write_text(json.dumps(config))
    failures = run_local(spec, out, workers=2)
    assert list(failures) == [spec.members()[2].name] and "different config" in failures[spec.members()[2].name]
    assert (interrupted / "summary.json").is_file()
    assert os.path.getmtime(done / "metrics.parquet") == stamp
    table = summarize(out).set_index("member")
    assert table.loc[spec.members()[2].name, "status"] == "failed"


def test_points_are_crossed_with_the_axes(tmp_path):
    path = tmp_path / "points.toml"
    points = 'points = [{ "task.op" = "add" }, { "task.op" = "sub", "task.p" = 11 }]\n'
    path.write_text(points + SPEC.split("[axes]")[0] + '[axes]\n"train.seed" = [0, 1]\n')
    members = SweepSpec.from_toml(path).members()
    assert [m.values for m in members] == [
        {"task.op": "add", "train.seed": 0}, {"task.op": "add", "train.seed": 1},
        {"task.op": "sub", "task.p": 11, "train.seed": 0}, {"task.op": "sub", "task.p": 11, "train.seed": 1}]
    assert members[2].config.task.p == 11 and members[0].config.task.p == 7
    path.write_text('points = [{ "train.seed" = 0 }]\n[axes]\n"train.seed" = [1]\n')
    with pytest.raises(ValueError, match="both in points and in axes"):
        SweepSpec.from_toml(path)


@pytest.mark.parametrize("name", ["fraction", "weight_decay", "precision", "pow_sum", "seeds", "add_vs_sub",
                                  "digit_bisect"])
def test_shipped_sweeps_load_by_name(name):
    spec = SweepSpec.load(name)
    members = spec.members() if spec.bisect is None else [spec.member_at(spec.bisect["low"])]
    assert spec.description and (len(members) >= 2 or spec.bisect is not None)
    assert all(m.config.train.threads == 1 for m in members)


def test_a_killed_sweep_finishes_only_its_missing_members(tmp_path):
    """SIGKILL the sweep while its second member trains; the re-run leaves the first alone,
    resumes the second from its checkpoint and runs the third."""
    spec = tmp_path / "kill.toml"
    spec.write_text(SPEC.split("[axes]")[0].replace('"train.epochs" = 30', '"train.epochs" = 4000')
                    .replace('"train.checkpoint_every" = 10', '"train.checkpoint_every" = 100')
                    + '[axes]\n"train.seed" = [0, 1, 2]\n')
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "grokscope", "sweep", str(spec), "--out", str(out), "--workers", "1", "--no-batch"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first, second, third = (out / f"train.seed={s}" for s in range(3))
    deadline = time.time() + 120
    while not (second / "resume.safetensors").is_file() and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (first / "summary.json").is_file() and not (second / "summary.json").is_file()
    assert not (third / "config.json").exists()
    stamp = os.path.getmtime(first / "summary.json")
    resumed_from = json.loads(__import__("safetensors").safe_open(
        str(second / "resume.safetensors"), "pt").metadata()["epoch"])

    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "3 of 3 members done" in result.stdout
    assert os.path.getmtime(first / "summary.json") == stamp
    assert resumed_from > 0 and all((d / "summary.json").is_file() for d in (second, third))


def test_sweep_cli(spec_file, tmp_path):
    runner = CliRunner()
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(spec_file), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "4 of 4 members done" in result.stdout
    result = runner.invoke(app, ["sweep", "summary", str(out)])
    assert result.exit_code == 0 and "train.seed=1,train.weight_decay=0.3" in result.stdout
    result = runner.invoke(app, ["sweep", "report", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "Phase diagram" in page and page.count('class="plotly-graph-div"') >= 2
    assert "train.weight_decay" in page and "<script src=" not in page
    assert "Clock or pizza, member by member" in page  # the families' own sweep sections (registry.sweep_sections)
    result = runner.invoke(app, ["sweep", "summary", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and result.stderr.startswith("error: no sweep directory")

    # publish: the summary and each member's small files, never a checkpoint
    docs = tmp_path / "docs" / "results" / "tiny"
    result = runner.invoke(app, ["sweep", "publish", str(out), "--to", str(docs)])
    assert result.exit_code == 0, result.output
    assert (docs / "summary.csv").read_text() == (out / "summary.csv").read_text()
    member = docs / "train.seed=1,train.weight_decay=0.3"
    assert {p.name for p in member.iterdir()} == {"config.json", "summary.json", "analysis.json", "metrics.parquet"}
    assert not list(docs.rglob("*.safetensors"))
    published = (member / "analysis.json").read_text()  # the same document, without indentation
    assert json.loads(published) == json.loads((out / member.name / "analysis.json").read_text()) and "\n  " not in published
    for name in ("summary.parquet", "train.seed=1,train.weight_decay=0.3/metrics.parquet"):  # re-encoded, not changed
        import pyarrow.parquet as pq
        assert pq.read_table(docs / name).equals(pq.read_table(out / name))
        assert pq.ParquetFile(docs / name).metadata.row_group(0).column(1).compression == "ZSTD"
    # a published member that kept only its summary and analysis still has a summary row
    (member / "metrics.parquet").unlink()
    table = summarize(docs).set_index("member")
    assert table.loc[member.name, "grokking_epoch"] == json.loads((member / "summary.json").read_text())["grokking_epoch"]
    assert pd.isna(table.loc[member.name, "train_loss_spikes"])
    assert table.drop(member.name)["train_loss_spikes"].notna().all()


@pytest.mark.ray
@pytest.mark.skipif(not os.environ.get("CI") and __import__("importlib").util.find_spec("ray") is None,
                    reason="needs the ray extra")
def test_ray_backend_gives_the_local_summary(spec_file, tmp_path):
    """A local Ray instance (loopback, started and stopped here) runs the same members to the
    same summary table as the local backend."""
    from grokscope.sweeps.ray_backend import run_ray

    spec = SweepSpec.from_toml(spec_file)
    assert run_local(spec, tmp_path / "local", workers=1) == {}
    import shutil
    import tempfile

    temp = tempfile.mkdtemp(prefix="gs-ray-", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    try:
        assert run_ray(spec, tmp_path / "ray", num_cpus=2, temp_dir=temp) == {}
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    columns = lambda t: t.drop(columns=["wall_seconds"]).set_index("member").sort_index()  # noqa: E731
    a, b = columns(summarize(tmp_path / "local")), columns(summarize(tmp_path / "ray"))
    import pandas as pd

    pd.testing.assert_frame_equal(a, b)


def test_bisection_ahead_lists_the_next_rounds_midpoints_breadth_first():
    assert bisection_ahead(200, 4000, 1) == [2100]
    assert bisection_ahead(200, 4000, 3) == [2100, 1150, 3050, 675, 1625, 2575, 3525]
    assert bisection_ahead(10, 13, 3) == [11, 12]  # a bracket of width 1 is not split


def test_bisection_brackets_the_epochs_needed_to_grok(tmp_path):
    """Bisect train.epochs for the quick run (it groks at ~1,730 epochs): each round's outcome
    moves one end. With 2 workers the next rounds' candidates train beside each midpoint (1,150
    beside 2,100, and 3,050 once 1,150 ends), with the same rounds as one worker; one that the
    bracket leaves behind is stopped unfinished (3,050, once 2,100 groks). A re-run, on one
    worker or two, trains nothing new and starts no candidate."""
    path = tmp_path / "bisect.toml"
    path.write_text('preset = "quick"\n[bisect]\nkey = "train.epochs"\nlow = 200\nhigh = 4000\nrounds = 3\n')
    runner = CliRunner()
    out = tmp_path / "b"
    result = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    b = json.loads((out / "bisection.json").read_text())
    assert [r["value"] for r in b["rounds"]] == [2100, 1150, 1625]
    assert [r["grokked"] for r in b["rounds"]] == [True, False, False]
    assert (b["not_grokked_at"], b["grokked_at"]) == (1625, 2100)
    assert "grokked at 2100, not at 1625" in result.stdout
    stopped = re.findall(r"train\.epochs=\d+", result.stdout.split("resumable):", 1)[1].split("bisection of", 1)[0])
    assert stopped == ["train.epochs=3050"] and not (out / "train.epochs=675").exists()
    assert not any((out / name / "summary.json").exists() for name in stopped)
    stamp = os.path.getmtime(out / "train.epochs=1150" / "summary.json")
    for workers in ("1", "2"):  # a re-run decides every round from the finished members, and starts nothing
        again = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--workers", workers])
        assert again.exit_code == 0 and "grokked at 2100, not at 1625" in again.stdout
        assert "stopped unfinished" not in again.stdout and not (out / "train.epochs=675").exists()
    assert os.path.getmtime(out / "train.epochs=1150" / "summary.json") == stamp
    report = runner.invoke(app, ["sweep", "report", str(out)])  # the bisected key is the report's axis
    page = (out / "report.html").read_text()
    assert report.exit_code == 0 and "Axes: train.epochs." in page
    assert "<h2>Phase diagram</h2>" in page and "<h2>Test accuracy by train.epochs</h2>" in page
    path.write_text('preset = "quick"\n[bisect]\nkey = "train.epochs"\nlow = 200\nhigh = 100\nrounds = 3\n')
    result = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "0 < low < high" in result.stderr


def test_a_sweep_of_a_sequence_task_is_summarised_and_reported(tmp_path):
    path = tmp_path / "seq.toml"
    path.write_text('preset = "digit_add5"\n[set]\n"task.n_digits" = 2\n"task.n_train" = 200\n"task.n_test" = 50\n'
                    '"model.d_model" = 16\n"model.n_heads" = 2\n"model.d_head" = 8\n"model.d_mlp" = 32\n'
                    '"train.batch_size" = 16\n"train.epochs" = 30\n"train.checkpoint_every" = 10\n'
                    '[axes]\n"train.seed" = [0, 1]\n')
    runner = CliRunner()
    out = tmp_path / "s"
    result = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    table = summarize(out)
    assert set(table["status"]) == {"done"} and "phase_change_digit0" in table.columns
    assert all(h.startswith("digit_add:") for h in table["headline"])
    result = runner.invoke(app, ["sweep", "report", str(out)])
    assert result.exit_code == 0, result.output
