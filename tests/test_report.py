"""The report page: built from the analysis, honest when there is nothing to show, rendered in Chromium."""

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grokscope import GrokscopeError
from grokscope.cli import app
from grokscope.report import build_report

SECTIONS = ["Memorisation, then grokking", "Progress measures", "The embedding becomes sparse", "Neurons cluster",
            "What a neuron computes", "The logits are cos(w(x + y", "on circles", "Attention from", "Ablations",
            "Clock or pizza?", "Clock-or-pizza measures over training", "Which measure moved first"]
FIGURES = 12  # the modular family's 9, clock or pizza's 2, the lead times' 1


def test_report_of_a_grokked_run(grokked, tmp_path):
    run, analysis = grokked
    path = build_report(run.paths.root, tmp_path / "report.html")
    page = path.read_text()
    for title in SECTIONS:
        assert title in page, title
    assert page.count('class="plotly-graph-div"') == FIGURES
    assert page.count('class="na"') == 1 and "--with llc</code>" in page  # the one optional analysis not asked for
    assert "implements the Fourier-multiplication algorithm" in page
    assert f"passed 99% at epoch {analysis['grokking_epoch']:,}" in page
    assert "<script src=" not in page and "<link " not in page  # offline: plotly.js is inline, nothing loaded
    assert path.stat().st_size < 15e6


def test_report_of_a_run_that_did_not_grok_says_so(memorising, tmp_path):
    run, _ = memorising
    page = build_report(run.paths.root, tmp_path / "report.html").read_text()
    assert "It did not grok" in page and "does not (yet) implement" in page
    assert 'class="na"' in page  # mechanism sections carry a warning or say why they are empty


def test_report_needs_an_analysis(tmp_path, tiny_config):
    from grokscope import train_run

    train_run(tiny_config, tmp_path / "run")
    with pytest.raises(GrokscopeError, match="no analysis.json"):
        build_report(tmp_path / "run")
    (tmp_path / "run" / "analysis.json").write_text("{}")
    with pytest.raises(GrokscopeError, match="incomplete or corrupt"):
        build_report(tmp_path / "run")
    result = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and result.stderr.startswith("error: no run directory")


def browser_available() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return bool(os.environ.get("GROKSCOPE_CHROMIUM") or shutil.which("chromium"))


@pytest.mark.browser
@pytest.mark.skipif(not browser_available() and not os.environ.get("CI"), reason="needs Playwright and Chromium")
def test_report_renders_in_chromium(grokked, tmp_path):
    """Headless Chromium opens the page: every figure is drawn as SVG, no JavaScript errors."""
    from grokscope.report.browser import check_page, export_pngs

    run, _ = grokked
    path = build_report(run.paths.root, tmp_path / "report.html")
    shots = Path(os.environ.get("GROKSCOPE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    check = check_page(path, shots / "report.png")
    assert check.figures == FIGURES and check.rendered == FIGURES
    assert check.errors == []
    assert check.blocked_requests == []  # the page asked for nothing beyond its own file
    assert (shots / "report.png").stat().st_size > 50_000
    pngs = export_pngs(path, tmp_path / "figures")
    assert len(pngs) == FIGURES and all(p.stat().st_size > 5_000 for p in pngs)


def test_a_one_axis_phase_diagram_shows_members_ranges_and_how_many_grokked():
    """Known table: at 0.2 nobody groks, at 0.3 two of three do (epochs 6,000 and 12,000), at
    0.5 all do (500, 800, 1,100); a member still training counts nowhere."""
    import pandas as pd

    from grokscope.report.sweep import phase_diagram

    rows = [(0.2, None, 0.01), (0.2, None, 0.02), (0.2, None, 0.01),
            (0.3, 6000, 1.0), (0.3, 12000, 1.0), (0.3, None, 0.4),
            (0.5, 500, 1.0), (0.5, 800, 1.0), (0.5, 1100, 1.0)]
    table = pd.DataFrame([{"task.frac_train": f, "grokking_epoch": g, "test_acc": a, "status": "done"} for f, g, a in rows]
                         + [{"task.frac_train": 0.5, "grokking_epoch": None, "test_acc": 0.3, "status": "running"}])
    fig = phase_diagram(table, ["task.frac_train"])
    members, means, acc_members, acc_means = fig.data
    assert list(members.x) == ["0.2"] * 3 + ["0.3"] * 3 + ["0.5"] * 3  # the running member is left out
    assert list(means.x) == ["0.2", "0.3", "0.5"]
    assert means.y[1] == 9000 and means.y[2] == 800 and pd.isna(means.y[0])
    assert list(means.error_y.array)[1:] == [3000, 300] and list(means.error_y.arrayminus)[1:] == [3000, 300]
    assert max(m + up for m, up in zip(acc_means.y, acc_means.error_y.array)) == 1.0  # a range never passes 1
    assert sorted(a.text for a in fig.layout.annotations if a.text.endswith("/3 grokked")) == ["0/3 grokked", "2/3 grokked"]
    assert fig.layout.yaxis.type == "log"  # 500 to 12,000: more than 20x
    assert fig.layout.yaxis2.type != "log"


def test_listed_points_become_a_categorical_axis_of_the_phase_diagram():
    """pow_sum's rows are points, crossed with seeds: each member is named by every key a point
    sets, and the phase diagram draws one category per row with its seeds aggregated."""
    import pandas as pd

    from grokscope.report.sweep import POINT, phase_diagram, with_point_axis
    from grokscope.sweeps.spec import SweepSpec

    spec = SweepSpec.from_text('points = [{ "task.a" = 3, "task.b" = 4 }, { "task.a" = 7, "task.b" = 7, "task.p" = 101 }]\n'
                                    '[set]\n"task.op" = "pow_sum"\n[axes]\n"train.seed" = [0, 1]\n', "test")
    table = pd.DataFrame([{"task.a": a, "task.b": b, "task.p": p, "train.seed": s, "grokking_epoch": g, "test_acc": 1.0,
                           "status": "done"} for a, b, p, s, g in [(3, 4, 113, 0, 5000), (3, 4, 113, 1, 7000),
                                                                   (7, 7, 101, 0, 2000), (7, 7, 101, 1, None)]])
    named = with_point_axis(table, spec)
    assert list(named[POINT]) == ["a=3, b=4, p=113"] * 2 + ["a=7, b=7, p=101"] * 2
    means = phase_diagram(named, [POINT]).data[1]
    assert list(means.x) == ["a=3, b=4, p=113", "a=7, b=7, p=101"] and list(means.y) == [6000, 2000]
