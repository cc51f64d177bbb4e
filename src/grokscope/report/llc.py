"""The report's LLC section: the local learning coefficient over training (analysis/llc.py)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from grokscope.analysis.modular_records import LearningCoefficient
from grokscope.analysis.registry import Section
from grokscope.report import figures
from grokscope.report.figures import TEMPLATE, NotApplicable


def llc_curve(result: LearningCoefficient, progress: pd.DataFrame, grok: int | None) -> go.Figure:
    """The LLC estimate at each estimated checkpoint, and the check setting's at the last."""
    if "llc" not in progress.columns:
        raise NotApplicable("The progress table has no LLC column (analysed by an older grokscope).")
    rows = progress.dropna(subset=["llc"])
    fig = go.Figure()
    fig.add_scatter(x=rows["epoch"], y=rows["llc"], mode="lines+markers", name="LLC", line_color=figures.FOURTH)
    fig.add_scatter(x=[result.epochs[-1]], y=[result.final_check], mode="markers", marker_symbol="x", marker_size=10,
                    name=f"check: {result.check_settings.chains} chains x {result.check_settings.draws} draws",
                    marker_color="black")
    if grok is not None:
        fig.add_vline(x=grok, line_dash="dash", line_color="black", annotation_text=f"grokked @ {grok:,}")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="local learning coefficient")
    fig.update_layout(template=TEMPLATE, height=380, legend_orientation="h", legend_y=-0.2)
    return fig


def sections(result: LearningCoefficient, progress: pd.DataFrame, grok: int | None) -> list[Section]:
    s = result.settings
    return [("Local learning coefficient",
             f"The LLC (Lau et al., 2023) estimates how many effective parameters the model uses near its current "
             f"weights; it is expected to fall as the memorising solution is replaced. SGLD: {s.chains} chains x "
             f"{s.draws} draws after {s.burn_in} burn-in steps, batch {s.batch_size}, step {s.lr:g}, localisation "
             f"{s.localization:g}, n·beta = {result.nbeta:.0f}. Estimate at the last checkpoint {result.final:.1f}, "
             f"check {result.final_check:.1f}: {'stable' if result.stable else 'not stable'} "
             f"(tolerance {result.tolerance:.0%}).",
             lambda: llc_curve(result, progress, grok))]
