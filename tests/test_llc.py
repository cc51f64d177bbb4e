"""The LLC estimator: a regular model's known coefficient (d/2), and a real run's column and check."""

import math
import shutil

import pandas as pd
import torch
from typer.testing import CliRunner

from grokscope import load_run
from grokscope.analysis.llc import estimated_epochs, llc_per_chain
from grokscope.analysis.registry import analyze_run
from grokscope.cli import app
from grokscope.report import build_report
from grokscope.analysis.modular_records import SGLDSettings


class Table(torch.nn.Module):
    """logits = W[first token]: a regular model with rows * (classes - 1) identifiable parameters
    (each row's softmax ignores a shared shift, which the prior-free chains leave unconstrained)."""

    def __init__(self, W):
        super().__init__()
        self.W = torch.nn.Parameter(W)

    def forward(self, tokens, query):
        return self.W[tokens[:, 0]][:, None, :]  # [n, 1, classes]


def test_a_regular_model_has_coefficient_half_its_dimension():
    rows, classes, n = 4, 3, 1000
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(rows, (n, 1), generator=g)
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.34, 0.33, 0.33], [0.1, 0.1, 0.8]])
    labels = torch.multinomial(probs[tokens[:, 0]], 1, generator=g)  # [n, 1]
    counts = torch.zeros(rows, classes).index_put_((tokens[:, 0], labels[:, 0]), torch.ones(n), accumulate=True)
    mle = (counts / counts.sum(1, keepdim=True)).log()  # the minimum of the training loss
    settings = SGLDSettings(chains=2, draws=1500, burn_in=300, batch_size=n, lr=5e-3, localization=0.0, seed=0)
    chains = llc_per_chain(Table(mle.double()), tokens, labels, torch.tensor([0]), settings)
    estimate = sum(chains) / len(chains)
    assert abs(estimate - rows * (classes - 1) / 2) < 0.25 * 4, (estimate, chains)


def test_the_estimated_checkpoints_are_spread_and_keep_the_ends():
    epochs = list(range(0, 10_001, 100))
    picked = estimated_epochs(epochs, 20)
    assert len(picked) == 20 and picked[0] == 0 and picked[-1] == 10_000 and picked == sorted(picked)
    assert estimated_epochs(epochs[:5], 20) == epochs[:5]


def test_a_real_run_has_an_llc_column_and_a_stability_check(grokked, tmp_path):
    run, plain = grokked
    assert "llc" not in plain["families"]  # optional: only when asked for
    copy = tmp_path / "run"
    shutil.copytree(run.paths.root, copy)
    analysis = analyze_run(load_run(copy), requested=["llc"])
    result = analysis["llc"]
    assert analysis["families"].index("llc") < analysis["families"].index("lead_times")
    assert analysis["lead_times"]["lead"].get("llc") is not None or analysis["lead_times"]["crossing"].get("llc") is None
    progress = pd.read_parquet(copy / "progress.parquet")
    estimated = progress.dropna(subset=["llc"])
    assert estimated["epoch"].tolist() == result["epochs"] and len(result["epochs"]) <= 20
    assert all(math.isfinite(v) for v in estimated["llc"]) and result["final"] == estimated["llc"].iloc[-1]
    assert (estimated["llc_chain_spread"] >= 0).all()
    assert result["stable"] == (abs(result["final"] - result["final_check"])
                                <= result["tolerance"] * abs(result["final"] + result["final_check"]) / 2)
    assert result["settings"]["lr"] == 1e-4 and result["nbeta"] > 0
    page = build_report(copy).read_text()
    assert "Local learning coefficient" in page and "--with llc</code>" not in page


def test_an_unknown_optional_analysis_is_refused_before_anything_is_written(grokked, tmp_path):
    run, _ = grokked
    copy = tmp_path / "run"
    shutil.copytree(run.paths.root, copy)
    before = (copy / "analysis.json").read_bytes()
    result = CliRunner().invoke(app, ["analyze", str(copy), "--with", "nonsense"])
    assert result.exit_code == 2 and "no optional analysis named nonsense (optional analyses: llc)" in result.stderr
    assert (copy / "analysis.json").read_bytes() == before
