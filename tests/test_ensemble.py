"""Ensembles: members trained as one stacked model get exactly their solo runs, write ordinary
run directories, resume, and sweeps batch them to the same summary as one at a time."""

import json

import numpy as np
import pandas as pd
import pytest

from grokscope import load_preset, load_run, train_run
from grokscope.analysis.registry import analyze_run
from grokscope.errors import GrokscopeError
from grokscope.sweeps import SweepSpec, run_local, summarize
from grokscope.sweeps.batching import ensemble_batches
from grokscope.training.ensemble import train_ensemble

# (x + y) mod 23 at 80 %, narrow: seeds 1 and 2 grok within a few hundred epochs
SMALL = ["task.p=23", "task.frac_train=0.8", "model.d_model=32", "model.d_head=8", "model.d_mlp=64",
         "train.lr=5e-3", "train.epochs=450", "train.stop_after_grok=30"]
TINY = ["task.p=7", "task.frac_train=0.6", "model.d_model=16", "model.n_heads=2", "model.d_head=8",
        "model.d_mlp=32", "train.epochs=60", "train.checkpoint_every=20", "train.eval_every=5"]
LOSSES = ["train_loss", "test_loss"]


def assert_same_metrics(solo: pd.DataFrame, member: pd.DataFrame) -> None:
    """A member's metrics against its solo run's: the same epochs evaluated, the same values to
    float32 rounding at first, and close after (batched and single matmuls may round
    differently, by the kernel the library picks for each shape and batch count, and training
    amplifies it: on the AMD EPYC here the canonical shapes gave identical bits, d_model 32 did not)."""
    assert list(solo.columns) == list(member.columns) and len(solo) == len(member)
    pd.testing.assert_series_equal(solo["epoch"], member["epoch"])
    pd.testing.assert_frame_equal(solo.isna(), member.isna())
    early = solo["epoch"] < 20
    for column in [c for c in solo.columns if "loss" in c]:
        np.testing.assert_allclose(member.loc[early, column], solo.loc[early, column], rtol=1e-5)
        np.testing.assert_allclose(member[column], solo[column], rtol=5e-2)
    for column in [c for c in solo.columns if c.endswith("_acc")]:
        np.testing.assert_allclose(member[column], solo[column], atol=0.03)


def assert_members_match_solo_runs(configs: list, tmp_path) -> None:
    """Train each config alone and all as one ensemble; compare every member with its solo run."""
    for i, c in enumerate(configs):
        train_run(c, tmp_path / f"solo{i}")
    train_ensemble(configs, [tmp_path / f"member{i}" for i in range(len(configs))])
    for i in range(len(configs)):
        assert_same_metrics(load_run(tmp_path / f"solo{i}").metrics, load_run(tmp_path / f"member{i}").metrics)


def files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != ".lock")


def test_an_ensemble_of_four_gives_each_member_its_solo_run(tmp_path):
    """Members differ in seed, weight decay, learning rate and data split (another split seed
    and a smaller training fraction, so the batch is padded); each member stops at its own
    epoch (grokked plus patience) and leaves the stack."""
    variants = [["train.seed=2"], ["train.seed=1", "train.weight_decay=0.5"], ["train.seed=2", "train.lr=4e-3"],
                ["train.seed=1", "task.frac_train=0.7", "task.seed=1"]]
    configs = [load_preset("quick", SMALL + v) for v in variants]
    solos = [train_run(c, tmp_path / f"solo{i}") for i, c in enumerate(configs)]
    members = train_ensemble(configs, [tmp_path / f"member{i}" for i in range(4)])

    assert sum(s.grokking_epoch is not None for s in solos) >= 2  # the hard case: grokking, then stopping early
    assert len({s.final_epoch for s in solos}) > 1
    for i, (solo, member) in enumerate(zip(solos, members)):
        assert member.grokking_epoch == solo.grokking_epoch and member.final_epoch == solo.final_epoch
        assert member.stopped == solo.stopped and member.execution.ensemble == 4 and solo.execution.ensemble == 1
        assert_same_metrics(load_run(tmp_path / f"solo{i}").metrics, load_run(tmp_path / f"member{i}").metrics)
        assert files(tmp_path / f"solo{i}") == files(tmp_path / f"member{i}")  # the same run directory

    grokked = next(i for i, s in enumerate(solos) if s.grokking_epoch is not None)
    solo_doc, member_doc = (analyze_run(load_run(tmp_path / f"{k}{grokked}")) for k in ("solo", "member"))
    for key in ("key_frequencies", "verdict"):
        assert solo_doc[key] == member_doc[key]


MLP = ["model.kind=mlp", "model.d_model=16", "model.d_mlp=32"]


@pytest.mark.parametrize("model", [["train.folded=false"], ["model.normalization_type=LN"], MLP])
def test_models_without_the_folded_path_train_as_an_ensemble_through_vmap(tmp_path, model):
    """Through vmap of the model's own forward, one member with a padded batch."""
    variants = [["train.seed=0"], ["train.seed=1", "train.weight_decay=0.3"], ["train.seed=2", "task.frac_train=0.5"]]
    base = TINY if model is not MLP else [o for o in TINY if not o.startswith("model.")]
    assert_members_match_solo_runs([load_preset("quick", base + model + v) for v in variants], tmp_path)


def test_each_member_keeps_its_own_filter_and_gradient_rule(tmp_path):
    """Grokfast (ema, ma) and ⊥Grad per member, beside a plain member: each its solo run."""
    variants = [["train.grokfast=ema"], ["train.grokfast=ma", "train.grokfast_window=5", "train.seed=1"],
                ["train.orthograd=true", "train.seed=2"], ["train.seed=3"]]
    assert_members_match_solo_runs([load_preset("quick", TINY + v) for v in variants], tmp_path)


def test_an_interrupted_ensemble_resumes_exactly_and_a_member_may_finish_alone(tmp_path):
    """Killed at epoch 25 (a Ctrl-C), the ensemble resumes from its members' checkpoints with
    the uninterrupted ensemble's bits; a member of it can also be finished by a solo run."""
    configs = [load_preset("quick", TINY + [f"train.seed={s}"]) for s in range(3)]
    whole = [tmp_path / f"whole{i}" for i in range(3)]
    train_ensemble(configs, whole)

    def interrupt(i, row):
        if row["epoch"] == 25:
            raise KeyboardInterrupt

    for name in ("cut", "alone"):
        with pytest.raises(KeyboardInterrupt):
            train_ensemble(configs, [tmp_path / f"{name}{i}" for i in range(3)], on_epoch=interrupt)
    cut = [tmp_path / f"cut{i}" for i in range(3)]
    assert not any((c / "summary.json").exists() for c in cut) and not any((c / ".lock").exists() for c in cut)
    assert [s.final_epoch for s in train_ensemble(configs, cut)] == [60] * 3
    for a, b in zip(whole, cut):
        pd.testing.assert_frame_equal(load_run(a).metrics, load_run(b).metrics, check_exact=True)
    train_run(configs[2], tmp_path / "alone2")
    assert_same_metrics(load_run(whole[2]).metrics, load_run(tmp_path / "alone2").metrics)


def test_members_that_cannot_train_together_are_refused_before_anything_is_written(tmp_path):
    a, b = load_preset("quick", TINY), load_preset("quick", TINY + ["model.d_model=32"])
    with pytest.raises(GrokscopeError, match="differ in model.d_model"):
        train_ensemble([a, b], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(GrokscopeError, match="same output directory"):
        train_ensemble([a, a], [tmp_path / "a", tmp_path / "a"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(GrokscopeError, match="not a grokscope run directory"):
        train_ensemble([a, a.with_overrides(["train.seed=1"])], [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists()


def test_sweep_members_are_batched_by_shared_settings():
    spec = SweepSpec.from_text('preset = "quick"\n[axes]\n"task.p" = [7, 11]\n"train.seed" = [0, 1, 2]\n', "t")
    batches = ensemble_batches(spec.members(), None, workers=2)
    assert [[m.values for m in b] for b in batches] == [
        [{"task.p": 7, "train.seed": 0}, {"task.p": 7, "train.seed": 1}], [{"task.p": 7, "train.seed": 2}],
        [{"task.p": 11, "train.seed": 0}, {"task.p": 11, "train.seed": 1}], [{"task.p": 11, "train.seed": 2}]]
    assert all(len(b) == 1 for b in ensemble_batches(spec.members(), 1, workers=2))


def test_a_sweep_of_eight_seeds_gives_the_same_summary_batched_and_one_at_a_time(tmp_path):
    overrides = "".join(f'"{k}" = {v}\n' for k, v in (o.split("=") for o in SMALL))
    text = f'preset = "quick"\n[set]\n{overrides}[axes]\n"train.seed" = [0, 1, 2, 3, 4, 5, 6, 7]\n'
    spec = SweepSpec.from_text(text, "eight")
    assert run_local(spec, tmp_path / "batched", workers=1, batch=True) == {}
    assert run_local(spec, tmp_path / "alone", workers=1, batch=False) == {}
    batched, alone = (summarize(tmp_path / d).set_index("member") for d in ("batched", "alone"))
    assert batched["grokking_epoch"].notna().sum() >= 2
    pd.testing.assert_series_equal(batched["grokking_epoch"], alone["grokking_epoch"])
    pd.testing.assert_series_equal(batched["key_frequencies"], alone["key_frequencies"])
    pd.testing.assert_series_equal(batched["final_epoch"], alone["final_epoch"])
    # a grokked run's last test loss is the most sensitive figure (0.38 against 0.41 seen here)
    np.testing.assert_allclose(batched["test_loss"], alone["test_loss"], rtol=0.15)
    np.testing.assert_allclose(batched["test_acc"], alone["test_acc"], atol=0.03)
    ensembles = {json.loads((tmp_path / "batched" / m / "summary.json").read_text())["execution"]["ensemble"]
                 for m in batched.index}
    assert ensembles == {8}


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_an_ensemble_on_cuda_matches_its_members_solo_runs_on_the_cpu(tmp_path):
    """The same batched path on a GPU: each member within rounding of its CPU solo run, and its
    directory resumable on the CPU."""
    variants = [["train.seed=0"], ["train.seed=1", "task.frac_train=0.5"]]
    cpu = [load_preset("quick", TINY + v + ["train.device=cpu"]) for v in variants]
    for i, c in enumerate(cpu):
        train_run(c, tmp_path / f"solo{i}")
    gpu = [c.with_overrides(["train.device=cuda"]) for c in cpu]
    summaries = train_ensemble(gpu, [tmp_path / f"member{i}" for i in range(2)])
    assert all(s.execution.device.startswith("cuda") for s in summaries)
    for i in range(2):
        assert_same_metrics(load_run(tmp_path / f"solo{i}").metrics, load_run(tmp_path / f"member{i}").metrics)
