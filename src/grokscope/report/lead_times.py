"""The report's lead-time section: when each progress measure moved, against grokking."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from grokscope.analysis.modular_records import LeadTimes
from grokscope.analysis.registry import Section
from grokscope.report import figures
from grokscope.report.figures import TEMPLATE, NotApplicable


def lead_chart(result: LeadTimes) -> go.Figure:
    """One bar per measure: epochs before grokking at which it crossed half of its move."""
    moved = {m: v for m, v in result.lead.items() if v is not None}
    if not moved:
        raise NotApplicable("No measure has a lead: the run did not grok, or no measure moved after memorisation.")
    order = sorted(moved, key=moved.get, reverse=True)
    fig = go.Figure(go.Bar(x=[moved[m] for m in order], y=order, orientation="h",
                           marker_color=[figures.TRAIN if moved[m] >= 0 else figures.TEST for m in order],
                           hovertemplate="%{y}: %{x:,} epochs before grokking<extra></extra>"))
    fig.update_xaxes(title_text=f"epochs before grokking (epoch {result.grokking_epoch:,})")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(template=TEMPLATE, height=120 + 30 * len(order))
    return fig


def sections(result: LeadTimes) -> list[Section]:
    return [("Which measure moved first",
             f"Each progress measure's lead over grokking (blue: before, red: after). Rule: {result.rule}; "
             f"measured from epoch {result.start_epoch} (the end of memorisation).",
             lambda: lead_chart(result))]


def sweep_leads(table: pd.DataFrame) -> go.Figure:
    """Each measure's lead over grokking, one point per member, measures ordered by their median."""
    columns = [c for c in table.columns if c.startswith("lead_") and table[c].notna().any()]
    order = sorted(columns, key=lambda c: table[c].median(), reverse=True)
    fig = go.Figure()
    for c in order:
        values = table[c].dropna()
        fig.add_box(x=values, name=c[len("lead_"):], boxpoints="all", jitter=0.3, pointpos=0,
                    marker_color=figures.TRAIN, line_color=figures.TRAIN, orientation="h", showlegend=False)
    fig.add_vline(x=0, line_dash="dash", line_color="black")
    fig.update_xaxes(title_text="epochs before grokking (the member's own grokking epoch)")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(template=TEMPLATE, height=140 + 40 * len(order))
    return fig
