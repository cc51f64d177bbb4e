"""Divergence is an outcome: non-finite hyper-parameters are refused, a run whose loss,
gradient or weights become non-finite stops within one step, keeps finite checkpoints, and
every command says so."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from grokscope import load_preset, load_run, train_run
from grokscope.cli import DIVERGED_EXIT, app
from grokscope.sweeps import SweepSpec, run_local, summarize
from grokscope.training import checkpoint

QUICK_TINY = ["task.p=7", "model.d_model=16", "model.d_head=8", "model.d_mlp=32", "train.eval_every=10"]


@pytest.mark.parametrize("override", ["train.lr=inf", "train.lr=nan", "train.weight_decay=-inf", "train.betas=0.9,nan",
                                      "task.frac_train=nan", "train.grokfast_lamb=inf"])
def test_non_finite_hyper_parameters_are_refused_before_anything_is_written(override, tmp_path):
    result = CliRunner().invoke(app, ["train", "--preset", "quick", "--set", override, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert "finite" in result.stderr and not (tmp_path / "r").exists()


@pytest.mark.parametrize("lr, quantity", [("1e3", "train_loss"), ("1e300", "weight ")])
def test_a_diverging_run_stops_and_every_command_says_so(lr, quantity, tmp_path):
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--preset", "quick", "--set", f"train.lr={lr}", "--set", "train.epochs=300",
                                 *[a for o in QUICK_TINY for a in ("--set", o)], "--out", str(out)])
    assert result.exit_code == DIVERGED_EXIT, result.output
    assert "diverged at epoch" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == "diverged" and summary["diverged"]["quantity"].startswith(quantity)
    epoch = summary["diverged"]["epoch"]
    assert epoch < 10  # within one evaluation interval
    run = load_run(out)
    assert len(run.metrics) == epoch + 1
    for e in run.checkpoint_epochs:  # every checkpoint kept is finite
        model = run.config.model.build(run.task.d_vocab, run.task.d_vocab_out, run.task.n_ctx)
        checkpoint.load_weights(model, run.paths.checkpoint(e, run.config.train.epochs))
        assert all(torch.isfinite(p).all() for p in model.parameters()), e
    for command in (["analyze", str(out)], ["report", str(out)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and f"diverged at epoch {epoch}" in result.stderr, command
        assert len(result.stderr.strip().splitlines()) == 1
    assert train_run(run.config, out).stopped == "diverged"  # finished: not retrained


def test_float32_slingshots_are_finite_and_do_not_stop_a_run(tmp_path):
    config = load_preset("quick", ["train.loss_dtype=float32", "train.epochs=2500"])
    summary = train_run(config, tmp_path / "f32")
    assert summary.stopped != "diverged" and summary.diverged is None and math.isfinite(summary.train_loss)


def test_a_sweep_records_a_diverged_member_and_goes_on(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text('preset = "quick"\n[set]\n' + "".join(f'"{o.split("=")[0]}" = {o.split("=")[1]}\n' for o in QUICK_TINY)
                    + '"train.epochs" = 30\n[axes]\n"train.lr" = [3e-3, 1e3]\n')
    assert run_local(SweepSpec.from_toml(spec), tmp_path / "sweep", workers=1) == {}
    table = summarize(tmp_path / "sweep").set_index("train.lr")
    assert table.loc[1e3, "status"] == "diverged" and table.loc[3e-3, "status"] == "done"
