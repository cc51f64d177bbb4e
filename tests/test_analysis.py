"""The analysis pipeline on real trained runs (one that groks, one stopped while memorising)."""

from dataclasses import replace
import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from grokscope import GrokscopeError, load_preset, load_run, train_run
from grokscope.analysis.ablation import edited_logits
from grokscope.analysis.activations import grid_activations
from grokscope.analysis.circuits import W_L
from grokscope.analysis.dynamics import locate_phases
from grokscope.analysis.keys import combine_key_frequencies
from grokscope.analysis.modular_records import FinalMeasures, Phases
from grokscope.analysis.registry import analyze_run
from grokscope.analysis.verdict import decide
from grokscope.cli import app
from grokscope.tasks import ModularConfig


def test_output_contract(grokked):
    run, analysis = grokked
    saved = json.loads((run.paths.root / "analysis.json").read_text())
    for key in ("key_frequencies", "key_frequency_rule", "key_frequencies_by_method", "grokking_epoch",
                "phases", "final", "ablations", "verdict"):
        assert key in saved, key
    assert set(saved["key_frequencies_by_method"]) == {"embedding", "neurons", "logits"}
    assert set(saved["phases"]) == {"memorisation_end", "circuit_formation_end", "cleanup_end"}
    for key in ("train_loss", "test_loss", "restricted_loss_train", "restricted_loss_test", "excluded_loss_train",
                "logit_fve", "neuron_fve_mean", "frac_neurons_clustered"):
        assert isinstance(saved["final"][key], float), key
    assert set(saved["verdict"]) >= {"implements_fourier_multiplication", "reasons"}
    progress = pd.read_parquet(run.paths.root / "progress.parquet")
    assert progress["epoch"].tolist() == run.checkpoint_epochs
    for column in ("excluded_loss_train", "restricted_loss_train", "restricted_loss_test", "ssw_total", "ssw_W_E",
                   "embed_fourier_gini", "softmax_collapse_train", "restricted_neuron_loss_test"):
        assert column in progress.columns, column


def test_grokked_run_implements_fourier_multiplication(grokked):
    run, a = grokked
    final = a["final"]
    assert a["verdict"]["implements_fourier_multiplication"], a["verdict"]["reasons"]
    assert 1 <= len(a["key_frequencies"]) <= 7
    for method, found in a["key_frequencies_by_method"].items():  # agreement, or the difference is reported
        for k in set(found) ^ set(a["key_frequencies"]):
            assert any(d.startswith(f"frequency {k}:") for d in a["key_frequency_disagreements"]), (method, k)
    assert final["logit_fve"] >= 0.9
    assert final["restricted_loss_test"] < final["test_loss"]
    assert final["excluded_loss_train"] > 100 * final["train_loss"]
    assert final["frac_neurons_clustered"] >= 0.5
    phases = a["phases"]
    assert phases["memorisation_end"] < phases["circuit_formation_end"] <= phases["cleanup_end"]
    m = run.metrics.set_index("epoch")
    assert m.loc[phases["memorisation_end"], "train_acc"] == 1.0  # memorised by then
    assert a["grokking_epoch"] == run.summary["grokking_epoch"]
    # replacing every clustered neuron by its single-frequency approximation barely changes the loss
    ab = a["ablations"]
    assert ab["clustered_single_frequency_approximation"] < ab["base_loss"] + 0.05
    losses = [loss for _, loss in ab["top_k"]]
    assert losses[-1] > losses[0] and max(losses) > 1.0  # ablating many important neurons breaks the model
    for k in a["key_frequencies"]:
        assert ab["frequency_directions"][str(k)] > ab["base_loss"]


def test_memorising_run_gets_a_negative_verdict(memorising):
    run, a = memorising
    assert not a["verdict"]["implements_fourier_multiplication"]
    assert any(r.startswith("fail: final test accuracy") for r in a["verdict"]["reasons"])
    assert a["grokking_epoch"] is None


def test_multiplication_groks_without_fourier_addition_and_is_told_so(tmp_path):
    """x * y mod p is learned through other structure: the verdict is negative, with reasons."""
    train_run(load_preset("quick", ["task.op=mul", "train.stop_after_grok=200"]), tmp_path / "mul")
    a = analyze_run(load_run(tmp_path / "mul"))
    assert a["final"]["test_acc"] >= 0.99
    assert not a["verdict"]["implements_fourier_multiplication"]
    assert a["final"]["logit_fve"] < 0.1
    assert sum(r.startswith("fail") for r in a["verdict"]["reasons"]) >= 3


def test_ablation_by_W_L_equals_a_hooked_forward(grokked):
    run, _ = grokked
    model = run.model()
    acts = grid_activations(model, run.task, run.task.split().train)
    edited = acts.neurons.clone()
    edited[..., :10] = 0.0
    predicted = edited_logits(acts.logits, acts.neurons, edited, W_L(model.blocks[0].mlp.W_out, model.W_U))

    def zero_first_ten(activation, hook):
        activation = activation.clone()
        activation[..., :10] = 0.0
        return activation

    with torch.no_grad():
        hooked = model.run_with_hooks(run.task.dataset().tokens,
                                      fwd_hooks=[("blocks.0.mlp.hook_post", zero_first_ten)])[:, 2]
    p = run.config.task.p
    torch.testing.assert_close(predicted.float(), hooked.reshape(p, p, p), rtol=1e-4, atol=1e-4)


def test_combined_key_frequencies_and_disagreements():
    found = combine_key_frequencies({"embedding": [3, 5, 9], "neurons": [3, 5], "logits": [3, 5, 11]})
    assert found.key == [3, 5]
    assert found.disagreements == ["frequency 9: named by embedding, not by neurons, logits",
                                   "frequency 11: named by logits, not by embedding, neurons"]
    assert combine_key_frequencies({"embedding": [2], "logits": [2, 4]}).key == [2]  # two methods: both


def test_phases_from_synthetic_curves():
    epochs = list(range(0, 2501, 100))
    train = [4.0 * 0.01 ** min(e / 300, 4) for e in epochs]  # levels out at 4e-8 from epoch 1200
    restricted = [4.0 if e < 1000 else 4.0 * 0.1 ** ((e - 1000) / 200) for e in epochs]  # 0.1 nats at epoch 1320
    ssw = [1000.0 if e < 1300 else max(0.0, 1000.0 - 1.4 * (e - 1300)) for e in epochs]  # falls until ~2014
    progress = pd.DataFrame({"epoch": epochs, "train_loss": train, "restricted_loss_test": restricted, "ssw_total": ssw})
    metrics = pd.DataFrame({"epoch": epochs, "test_acc": [0.1 if e < 1500 else 1.0 for e in epochs]})
    d = locate_phases(metrics, progress, 0.99)
    assert d.grokking_epoch == 1500
    # memorised: 90% of the log fall by epoch 1100; restricted test loss <= 0.1 from epoch 1320;
    # the weights fall 1.4 per epoch from 1300, then 0.2 per epoch in [2000, 2100]
    assert d.phases == Phases(memorisation_end=1100, circuit_formation_end=1400, cleanup_end=2000)


PASSING = FinalMeasures(train_loss=1e-6, test_loss=1e-4, train_acc=1.0, test_acc=1.0, restricted_loss_train=1e-5,
                        restricted_loss_test=1e-3, excluded_loss_train=5.0, logit_fve=0.95,
                        restricted_neuron_loss_test=1e-3, frac_neurons_in_key_clusters=0.9)


def test_verdict_is_positive_only_when_every_criterion_holds():
    assert decide(PASSING, [1, 2, 3], 31).implements_fourier_multiplication
    failing = {  # one criterion broken at a time, each at its threshold's wrong side
        "accuracy": ({"test_acc": 0.985}, [1, 2, 3]), "no key": ({}, []), "too many keys": ({}, list(range(1, 9))),
        "logit fve": ({"logit_fve": 0.69}, [1, 2, 3]), "restricted": ({"restricted_loss_test": 0.11}, [1, 2, 3]),
        "excluded vs train": ({"excluded_loss_train": 9e-6}, [1, 2, 3]),
        "excluded floor": ({"excluded_loss_train": 0.09}, [1, 2, 3]),
        "neurons": ({"restricted_neuron_loss_test": 0.2}, [1, 2, 3]),
    }
    for name, (changes, freqs) in failing.items():
        v = decide(replace(PASSING, **changes), freqs, 31)
        assert not v.implements_fourier_multiplication, name
        assert sum(r.startswith("fail: ") for r in v.reasons) == 1, (name, v.reasons)
    several = replace(PASSING, logit_fve=0.2, restricted_loss_test=3.0, excluded_loss_train=0.01, restricted_neuron_loss_test=3.0)
    v = decide(several, [1, 2, 3], 31)
    assert not v.implements_fourier_multiplication and sum(r.startswith("fail") for r in v.reasons) == 4
    without_neurons = replace(PASSING, restricted_neuron_loss_test=None)  # a model with no MLP: five criteria
    assert len([r for r in decide(without_neurons, [1], 31).reasons if not r.startswith("note")]) == 5


def test_analyze_refuses_incomplete_or_missing_runs(tmp_path):
    config = load_preset("quick", ["train.epochs=20"])
    train_run(config, tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()
    with pytest.raises(GrokscopeError, match="incomplete"):
        analyze_run(load_run(tmp_path / "run"))
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "missing")])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: no run directory at {tmp_path / 'missing'}"
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "run")])
    assert result.exit_code == 2 and "incomplete" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_two_layer_mlp_groks_and_its_neurons_cluster_by_frequency(tmp_path):
    """The paper's 2-layer MLP on (x + y) mod 31: it groks, and the same Fourier tools find the
    algorithm in it: key frequencies agreed by every method, neurons clustered, W_L's waves."""
    train_run(load_preset("quick", ["model.kind=mlp", "train.stop_after_grok=1000"]), tmp_path / "mlp")
    run = load_run(tmp_path / "mlp")
    a = analyze_run(run)
    assert run.summary["grokking_epoch"] is not None
    assert a["verdict"]["implements_fourier_multiplication"], a["verdict"]["reasons"]
    assert a["attention"] is None and a["final"]["frac_neurons_clustered"] >= 0.8
    assert set(a["key_frequencies_by_method"]["neurons"]) == set(a["key_frequencies"])
    sizes = a["neurons"]["cluster_sizes"]
    assert all(sizes.get(str(k), 0) >= 5 for k in a["key_frequencies"])
    assert a["final"]["restricted_neuron_loss_test"] < 0.1


def test_pow_sum_is_analysed_in_its_natural_basis(tmp_path):
    """(x^3 + y^3) mod 29: x -> x^3 permutes Z_29, so in u = x^3, v = y^3 the task is addition.
    The model groks and the Fourier analysis, run over (u, v), finds the algorithm there, with
    W_E far sparser over u than over x."""
    task = ModularConfig(op="pow_sum", p=29, a=3, b=3, frac_train=0.6).build()
    x_of_u, y_of_v = task.natural_coordinates()
    assert [pow(int(x), 3, 29) for x in x_of_u] == list(range(29))
    acts = grid_activations(load_preset("quick", ["task.op=pow_sum", "task.a=3", "task.b=3", "task.p=29"]).model.build(
        30, 29, 3), task, task.split().train)
    r = torch.arange(29)
    assert torch.equal(acts.labels, (r[:, None] + r[None, :]) % 29)  # z = u + v on the re-indexed grid
    assert ModularConfig(op="pow_sum", p=31, a=3, b=3).build().natural_coordinates() is None  # 3 divides 30

    train_run(load_preset("quick", ["task.op=pow_sum", "task.a=3", "task.b=3", "task.p=29",
                                    "train.stop_after_grok=1000", "train.epochs=8000"]), tmp_path / "pow")
    a = analyze_run(load_run(tmp_path / "pow"))
    assert a["verdict"]["implements_fourier_multiplication"], a["verdict"]["reasons"]
    note = a["coordinates"]
    assert note["sparser"] == "u" and note["embedding_gini_u"] > note["embedding_gini_x"] + 0.2
    assert a["label_statistics"]["residues_hit"] == 29  # x^3 + y^3 hits every residue mod 29 evenly
