"""The canonical run end to end (`make test-slow`; about 6 minutes on 2 idle cores, not in the default suite)."""

import pytest

from grokscope import load_preset, load_run, train_run
from grokscope.analysis.registry import analyze_run
from grokscope.report import build_report

pytestmark = pytest.mark.slow


def test_canonical_run_groks_and_is_reverse_engineered(tmp_path):
    config = load_preset("nanda2023", ["train.stop_after_grok=2000"])
    summary = train_run(config, tmp_path / "run")
    assert summary.grokking_epoch is not None and summary.test_acc >= 0.99
    analysis = analyze_run(load_run(tmp_path / "run"))
    final = analysis["final"]
    assert analysis["verdict"]["implements_fourier_multiplication"], analysis["verdict"]["reasons"]
    assert 3 <= len(analysis["key_frequencies"]) <= 7
    assert final["logit_fve"] >= 0.9
    assert final["restricted_loss_test"] < final["test_loss"]
    assert final["excluded_loss_train"] > 1000 * final["train_loss"]
    phases = analysis["phases"]
    assert phases["memorisation_end"] < phases["circuit_formation_end"] <= phases["cleanup_end"]
    assert build_report(tmp_path / "run").stat().st_size < 15e6
