"""A sweep's page: phase diagrams over its axes (seeds aggregated), curves by axis value, and
the key frequencies across members. Draws ``summary.parquet`` and the members' metrics only."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from grokscope.analysis import registry
from grokscope.errors import GrokscopeError
from grokscope.report.html import STYLE
from grokscope.atomic import atomic_write_text
from grokscope.runs import load_run
from grokscope.sweeps.spec import SweepSpec
from grokscope.sweeps.summary import summary_table

SEED_AXES = {"train.seed", "task.seed"}
POINT = "point"  # the column naming each member's point, for a sweep of listed points


def with_point_axis(table: pd.DataFrame, spec: SweepSpec) -> pd.DataFrame:
    """The table with a ``point`` column naming each member's point of ``spec.points`` by every
    key any point sets (``a=7, b=7, p=101``), so that listed points can be a categorical axis."""
    keys = list(dict.fromkeys(k for point in spec.points for k in point))
    name = lambda row: ", ".join(f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in keys)  # noqa: E731
    return table.assign(**{POINT: table.apply(name, axis=1)})


def _aggregate(table: pd.DataFrame, axes: list[str], column: str) -> pd.DataFrame:
    """Mean, spread, range and counts of ``column`` over members sharing the same values of
    ``axes``: ``count`` members with a value (a grokking epoch: those that grokked) of ``members``."""
    groups = table.groupby(axes, dropna=False)
    agg = groups[column].agg(["mean", "std", "min", "max", "count"])
    return agg.assign(members=groups.size()).reset_index()


LOG_SPAN = 20  # a phase diagram's grokking epochs spanning more than this ratio are drawn on a log axis


def phase_diagram(table: pd.DataFrame, axes: list[str]) -> go.Figure:
    """Grokking epoch and final test accuracy over one or two axes, seeds aggregated. Over one
    axis: every member as a point, the mean as a line, bars from the lowest to the highest
    member (a range, so an accuracy bar never passes 1), and under the grokking epochs how
    many members grokked where not all did; over two: heatmaps of the means. Finished members only."""
    titles = (("grokking epoch (points: members; line: mean of those that grokked; bars: range)",
               "final test accuracy (points: members; line: mean; bars: range)") if len(axes) == 1 else
              ("grokking epoch (mean over seeds; blank: never grokked)", "final test accuracy (mean)"))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.15, subplot_titles=titles)
    table = table[table["status"] == "done"]  # a member still training has neither grokked nor failed to
    for col, column in enumerate(["grokking_epoch", "test_acc"], start=1):
        values = table.assign(**{column: pd.to_numeric(table[column], errors="coerce")})
        agg = _aggregate(values, axes, column)
        axis = str(col) if col > 1 else ""  # plotly's name for this subplot's axes: x, x2
        if agg["mean"].isna().all():
            fig.add_annotation(text="no member grokked", showarrow=False, xref=f"x{axis} domain", yref=f"y{axis} domain",
                               x=0.5, y=0.5, font_size=16)
        hover = [f"{m:.4g} ± {s:.2g}, range {lo:.4g}-{hi:.4g} ({n} of {k} members)"
                 for m, s, lo, hi, n, k in zip(agg["mean"], agg["std"].fillna(0), agg["min"], agg["max"], agg["count"], agg["members"])]
        if len(axes) == 1:
            x = agg[axes[0]].astype(str)
            fig.add_scatter(x=values[axes[0]].astype(str), y=values[column], mode="markers", marker=dict(color="#999", size=7),
                            hovertemplate="%{x}: %{y:.4g}<extra>a member</extra>", showlegend=False, row=1, col=col)
            fig.add_scatter(x=x, y=agg["mean"], mode="lines+markers", text=hover, line_color="#1f77b4", hovertemplate="%{x}: %{text}<extra></extra>",
                            error_y=dict(type="data", symmetric=False, array=agg["max"] - agg["mean"],
                                         arrayminus=agg["mean"] - agg["min"]),
                            showlegend=False, row=1, col=col)
            if column == "grokking_epoch":
                for i, (n, k) in enumerate(zip(agg["count"], agg["members"])):
                    if n < k:  # at the foot of the axis (a log scale has no y = 0); x: the category's index
                        fig.add_annotation(x=i, y=0, xref=f"x{axis}", yref=f"y{axis} domain", yanchor="bottom", showarrow=False,
                                           text=f"{n}/{k} grokked", font_size=11)
                epochs = values[column].dropna()
                if len(epochs) and epochs.min() > 0 and epochs.max() / epochs.min() > LOG_SPAN:
                    fig.update_yaxes(type="log", dtick=1, row=1, col=col)  # a tick per decade
            fig.update_xaxes(title_text=axes[0], type="category", row=1, col=col)
        else:
            grid = agg.pivot(index=axes[0], columns=axes[1], values="mean")
            fig.add_heatmap(z=grid.to_numpy(), x=[str(c) for c in grid.columns], y=[str(i) for i in grid.index],
                            colorscale="Viridis", showscale=False, texttemplate="%{z:.3g}",
                            hovertemplate=f"{axes[0]}=%{{y}}, {axes[1]}=%{{x}}: %{{z:.4g}}<extra></extra>", row=1, col=col)
            fig.update_xaxes(title_text=axes[1], type="category", row=1, col=col)
            fig.update_yaxes(title_text=axes[0], type="category", row=1, col=col)
    fig.update_layout(template="plotly_white", height=420)
    return fig


def curves_by_axis(out: Path, table: pd.DataFrame, axis: str) -> go.Figure:
    """Every member's test accuracy over epochs, coloured by its value of ``axis`` (members
    without metrics are left out)."""
    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    values = sorted(table[axis].astype(str).unique())
    shown = set()
    for _, row in table[table["status"] == "done"].iterrows():
        metrics = load_run(out / row["member"]).metrics.dropna(subset=["test_acc"])
        if metrics.empty:  # a published member that kept only its summary
            continue
        value = str(row[axis])
        fig.add_scatter(x=metrics["epoch"], y=metrics["test_acc"], mode="lines", name=f"{axis}={value}",
                        legendgroup=value, showlegend=value not in shown, opacity=0.7,
                        line_color=palette[values.index(value) % len(palette)])
        shown.add(value)
    fig.update_yaxes(title_text="test accuracy", tickformat=".0%")
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(template="plotly_white", height=420)
    return fig


def key_frequency_counts(table: pd.DataFrame) -> go.Figure:
    """How often each frequency is a key frequency, over members with a positive verdict."""
    counts: dict[int, int] = {}
    positive = table[table.get("implements_fourier_multiplication", pd.Series(False, index=table.index)) == True]  # noqa: E712
    for text in positive.get("key_frequencies", pd.Series(dtype=str)).dropna():
        for k in str(text).split():
            counts[int(k)] = counts.get(int(k), 0) + 1
    if not counts:
        raise GrokscopeError("no member implements the Fourier-multiplication algorithm, so there are no key frequencies to count")
    ks = sorted(counts)
    fig = go.Figure(go.Bar(x=[str(k) for k in ks], y=[counts[k] for k in ks], marker_color="#d62728"))
    fig.update_xaxes(title_text="frequency k", type="category")
    fig.update_yaxes(title_text="members using it")
    fig.update_layout(template="plotly_white", height=360)
    return fig


def build_sweep_report(out: str | Path) -> Path:
    """Write ``DIR/report.html`` for a sweep directory and return its path."""
    out = Path(out)
    table = summary_table(out)
    spec_path = out / "sweep.toml"
    spec = SweepSpec.from_toml(spec_path) if spec_path.is_file() else None
    axes = list(spec.axes) if spec else []
    if spec and spec.bisect:  # a bisection's members differ in its key alone
        axes = [spec.bisect["key"]]
    if spec and spec.points:  # listed points (Table 1's rows) form the first axis
        table = with_point_axis(table, spec)
        axes = [POINT] + axes
    grid_axes = [a for a in axes if a not in SEED_AXES][:2] or axes[:1]
    sections = []
    if grid_axes:
        sections.append(("Phase diagram", f"Seeds aggregated over {', '.join(a for a in axes if a in SEED_AXES) or 'nothing'}; "
                         "hover for mean ± standard deviation, the range and the number of members.", phase_diagram(table, grid_axes)))
        sections.append(("Test accuracy by " + grid_axes[0], "Each member's test accuracy; colour: its value of the axis.",
                         curves_by_axis(out, table, grid_axes[0])))
    for family in registry.all_families():  # the families' own views of their summary columns
        sections += [(title, caption, build()) for title, caption, build in family.sweep_sections(table, axes)]
    body = []
    for i, (title, caption, fig) in enumerate(sections):
        body.append(f"<h2>{html.escape(title)}</h2><p class='caption'>{html.escape(caption)}</p>")
        body.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{i}"))
    body.append("<h2>Key frequencies across members</h2><p class='caption'>Members whose verdict is positive; "
                "the paper finds the frequencies differ from seed to seed.</p>")
    try:
        fig = key_frequency_counts(table)
        body.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{len(sections)}"))
    except GrokscopeError as e:
        body.append(f"<p class='na'>{html.escape(str(e))}.</p>")
    done = int((table["status"] == "done").sum())
    columns = [c for c in ["member", "status", "grokking_epoch", "test_acc", "key_frequencies",
                           "implements_fourier_multiplication", "error"] if c in table.columns]
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>grokscope sweep: {html.escape(out.name)}</title>
<style>{STYLE}</style><script type="text/javascript">{get_plotlyjs()}</script></head><body>
<h1>Sweep: {html.escape(out.name)}</h1><p>{done} of {len(table)} members finished. Axes: {html.escape(', '.join(axes) or 'none')}.</p>
{''.join(body)}<h2>Members</h2>{table[columns].to_html(index=False, na_rep='')}</body></html>
"""
    path = out / "report.html"
    atomic_write_text(path, page)
    return path
