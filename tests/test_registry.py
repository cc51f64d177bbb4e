"""The analysis registry: a family registered from outside the package reaches analysis.json,
the report and the sweep summary with no edit to the package; the report only draws."""

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import pytest

import grokscope
from grokscope import load_preset, load_run, train_run
from grokscope.analysis import registry
from grokscope.report import build_report
from grokscope.sweeps import SweepSpec, run_local, summarize


@dataclass(frozen=True)
class WeightCountResult:
    parameters: int  # trainable parameters
    final_train_loss: float  # from the primary family's record
    by_matrix: dict[str, int]  # parameters per weight name


class WeightCount(registry.AnalysisFamily):
    """A toy extension: the number of trained parameters and the final train loss, with a bar."""

    name = "toy_weight_count"
    record = WeightCountResult

    def applies_to(self, config):
        return config.task.kind == "modular"

    def compute(self, run, prior, on_checkpoint=None):
        model = run.model()
        params = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
        return registry.Computed(WeightCountResult(sum(params.values()), prior.primary.final.train_loss, params))

    def findings(self, result):
        return [f"toy: {result.parameters:,} trainable parameters"]

    def sections(self, run, analysis, progress):
        result = analysis.extensions[self.name]
        return [("Toy: parameter count", "A bar of the trainable parameters.",
                 lambda: go.Figure(go.Bar(x=list(result.by_matrix), y=list(result.by_matrix.values()))))]

    def summary_row(self, analysis):
        return {"toy_parameters": analysis.extensions[self.name].parameters}


@pytest.fixture
def toy_family():
    registry.register(WeightCount)
    yield WeightCount
    registry.unregister(WeightCount.name)


def test_a_family_registered_outside_the_package_is_analysed_reported_and_summarised(toy_family, tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text('preset = "quick"\n[set]\n"task.p" = 7\n"model.d_model" = 16\n"model.d_head" = 8\n'
                    '"model.d_mlp" = 32\n"train.epochs" = 30\n[axes]\n"train.seed" = [0]\n')
    out = tmp_path / "sweep"
    assert run_local(SweepSpec.from_toml(spec), out, workers=1) == {}
    member = next(p for p in out.iterdir() if (p / "config.json").is_file())
    analysis = json.loads((member / "analysis.json").read_text())
    assert analysis["families"][0] == "modular"  # the primary, then the extensions
    assert set(analysis["families"][1:]) == {"clock_pizza", "lead_times", "toy_weight_count"}
    assert analysis["toy_weight_count"]["parameters"] > 0 and "verdict" in analysis  # the primary's keys are kept
    assert any(line.startswith("toy: ") for line in analysis["findings"])
    stored = grokscope.load_analysis(member)  # read back as records, the toy's own included
    assert stored.extensions["toy_weight_count"] == WeightCountResult(**analysis["toy_weight_count"])
    assert stored.primary.final.train_loss == analysis["toy_weight_count"]["final_train_loss"]
    page = build_report(member).read_text()
    assert "Toy: parameter count" in page and "The embedding becomes sparse" in page
    assert summarize(out)["toy_parameters"].iloc[0] == analysis["toy_weight_count"]["parameters"]


def test_an_analysis_written_before_the_registry_still_reports(grokked, tmp_path):
    run, analysis = grokked
    old = {k: v for k, v in analysis.items() if k != "families"}  # analysis.json of version 1 had no "families"
    (run.paths.root / "analysis.json").write_text(json.dumps(old))
    try:
        assert "Neurons cluster by frequency" in build_report(run.paths.root, tmp_path / "old.html").read_text()
    finally:
        (run.paths.root / "analysis.json").write_text(json.dumps(analysis))


def test_only_one_primary_family_applies_to_each_shipped_preset():
    for name in grokscope.preset_names():
        families = registry.applicable(load_preset(name))
        assert sum(f.primary for f in families) == 1, name


def test_no_report_module_imports_torch_or_loads_a_checkpoint():
    report = Path(grokscope.__file__).parent / "report"
    for path in report.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m == "torch" or m.startswith(("torch.", "safetensors.torch"))}, path.name
        calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        assert not calls & {"model", "load_weights", "run_with_cache"}, path.name


def test_a_sweep_summary_survives_an_analysis_it_cannot_read(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text('preset = "quick"\n[set]\n"task.p" = 7\n"model.d_model" = 16\n"model.d_head" = 8\n'
                    '"model.d_mlp" = 32\n"train.epochs" = 20\n[axes]\n"train.seed" = [0, 1]\n')
    out = tmp_path / "sweep"
    assert run_local(SweepSpec.from_toml(spec), out, workers=1) == {}
    foreign = next(p for p in sorted(out.iterdir()) if (p / "analysis.json").is_file())
    (foreign / "analysis.json").write_text(json.dumps({"format": "someone-else/9"}))
    table = summarize(out).set_index("member")
    assert table.loc[foreign.name, "headline"].startswith("analysis not read: analysis format 'someone-else/9'")
    assert table["status"].tolist() == ["done", "done"]


def test_records_read_back_the_stored_document_exactly(grokked):
    """``read_analysis`` then ``to_json`` gives the document written: the records hold every key."""
    from grokscope.analysis.records import to_json

    run, _ = grokked
    document = json.loads((run.paths.root / "analysis.json").read_text())
    stored = registry.read_analysis(document)
    again = json.loads(json.dumps(registry._finite(to_json(stored.primary))))
    extensions = document["families"][1:]
    assert again == {k: v for k, v in document.items() if k != "families" and k not in extensions}
    for name in extensions:
        assert json.loads(json.dumps(registry._finite(to_json(stored.extensions[name])))) == document[name], name
    assert stored.primary.neurons.cluster_sizes and all(isinstance(k, int) for k in stored.primary.neurons.cluster_sizes)
    assert all(isinstance(k, int) and isinstance(loss, float) for k, loss in stored.primary.ablations.top_k)


def test_a_document_missing_a_required_result_is_refused_by_name(grokked, tmp_path):
    run, analysis = grokked
    broken = {k: v for k, v in analysis.items() if k != "final"}
    with pytest.raises(grokscope.GrokscopeError, match=r"modular\.final is missing"):
        registry.read_analysis(broken)
