"""Report sections for clock-or-pizza (Zhong et al., 2023): they draw what analysis/clock_pizza.py stored."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokscope.analysis.modular_records import ClockPizza
from grokscope.analysis.registry import Section
from grokscope.report import figures
from grokscope.report.figures import TEMPLATE, NotApplicable
from grokscope.runs import Run


def correct_logit(result: ClockPizza, arrays: dict, sign: int) -> go.Figure:
    """The correct-class logit over (answer, distance), and its mean at each distance beside
    ``|cos(w_k d / 2)|`` for each key frequency (scaled to the mean's range)."""
    if "clock_pizza.correct_logit" not in arrays:
        raise NotApplicable("The analysis stored no correct-logit grid for this run.")
    L = arrays["clock_pizza.correct_logit"]  # [answer s, distance d]
    p = L.shape[0]
    answer, distance = ("x + y", "x − y") if sign > 0 else ("x − y", "x + y")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.1, subplot_titles=(
        f"correct logit over answer ({answer}) and distance ({distance})", "mean correct logit at each distance"))
    fig.add_heatmap(z=L, colorscale="Viridis", colorbar=dict(title="logit", x=0.43),
                    hovertemplate="answer %{y}, distance %{x}: %{z:.2f}<extra></extra>", row=1, col=1)
    fig.update_xaxes(title_text=f"distance ({distance}) mod {p}", row=1, col=1)
    fig.update_yaxes(title_text=f"answer ({answer}) mod {p}", autorange="reversed", row=1, col=1)
    profile = L.mean(0)
    d = list(range(p))
    fig.add_scatter(x=d, y=profile, mode="lines", name="mean over answers", line_color="black", row=1, col=2)
    low, high = float(profile.min()), float(profile.max())
    for i, (k, r) in enumerate(result.pizza_correlation.items()):
        wave = [abs(math.cos(math.pi * k * j / p)) for j in d]
        fig.add_scatter(x=d, y=[low + (high - low) * w for w in wave], mode="lines", line=dict(dash="dot", width=1),
                        line_color=figures.PALETTE[(i + 1) % len(figures.PALETTE)],
                        name=f"|cos(w_{k} d / 2)| (corr {r:.2f})", row=1, col=2)
    fig.update_xaxes(title_text="distance d", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=460, legend_orientation="h", legend_y=-0.2)
    return fig


def measures_over_training(progress: pd.DataFrame, grok: int | None) -> go.Figure:
    """Gradient symmetricity and distance irrelevance at every checkpoint, the classes' thresholds dashed."""
    if "gradient_symmetricity" not in progress.columns:
        raise NotApplicable("The progress table has no clock-or-pizza columns (analysed by an older grokscope).")
    fig = go.Figure()
    fig.add_scatter(x=progress["epoch"], y=progress["gradient_symmetricity"], name="gradient symmetricity",
                    line_color=figures.TEST)
    fig.add_scatter(x=progress["epoch"], y=progress["distance_irrelevance"], name="distance irrelevance",
                    line_color=figures.TRAIN)
    fig.add_hline(y=0.75, line_dash="dash", line_color="#999")
    if grok is not None:
        fig.add_vline(x=grok, line_dash="dash", line_color="black", annotation_text=f"grokked @ {grok:,}")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(range=[-0.05, 1.05])
    fig.update_layout(template=TEMPLATE, height=380, legend_orientation="h", legend_y=-0.2)
    return fig


def sections(run: Run, result: ClockPizza, progress: pd.DataFrame) -> list[Section]:
    arrays = figures.load_arrays(run.paths.root / "analysis.safetensors")
    sign = 1 if run.config.task.op == "add" else -1
    grok = run.summary["grokking_epoch"]
    return [
        (f"Clock or pizza? {result.kind}",
         f"Zhong et al. (2023) found two algorithms for modular addition. The clock (Fourier multiplication) gives "
         f"the correct class the same logit whatever the distance between the inputs; the pizza adds the two "
         f"embeddings first, so its correct logit follows |cos(w_k d / 2)|. Here: distance irrelevance "
         f"{result.distance_irrelevance:.2f}, gradient symmetricity {result.gradient_symmetricity:.2f} "
         f"({result.samples} sampled triples). Rule: {result.rule}.",
         lambda: correct_logit(result, arrays, sign)),
        ("Clock-or-pizza measures over training",
         "Both measures at every checkpoint. The dashed line is the rule's threshold (0.75) on each.",
         lambda: measures_over_training(progress, grok)),
    ]


PAPER_MEDIANS = {"pizza (Zhong et al.)": (0.99, 0.65), "clock (Zhong et al.)": (0.50, 0.86)}


def sweep_scatter(table: pd.DataFrame, axes: list[str]) -> go.Figure:
    """Every member's gradient symmetricity against its distance irrelevance, coloured by the first
    axis that is not a seed, with the rule's thresholds and the paper's medians."""
    done = table.dropna(subset=["gradient_symmetricity", "distance_irrelevance"])
    axis = next((a for a in axes if "seed" not in a), None)
    fig = go.Figure()
    groups = done.groupby(axis) if axis else [("members", done)]
    for i, (value, rows) in enumerate(groups):
        fig.add_scatter(x=rows["gradient_symmetricity"], y=rows["distance_irrelevance"], mode="markers",
                        marker=dict(size=11, color=figures.PALETTE[i % len(figures.PALETTE)]),
                        name=f"{axis} = {value}" if axis else str(value), text=rows["member"],
                        hovertemplate="%{text}: symmetricity %{x:.2f}, irrelevance %{y:.2f}<extra></extra>")
    for name, (x, y) in PAPER_MEDIANS.items():
        fig.add_scatter(x=[x], y=[y], mode="markers+text", marker=dict(symbol="x", size=12, color="black"),
                        text=[name], textposition="bottom center", showlegend=False)
    fig.add_vline(x=0.75, line_dash="dash", line_color="#999")
    fig.add_hline(y=0.75, line_dash="dash", line_color="#999")
    fig.update_xaxes(title_text="gradient symmetricity", range=[-0.05, 1.05])
    fig.update_yaxes(title_text="distance irrelevance", range=[-0.05, 1.05])
    fig.update_layout(template=TEMPLATE, height=480, legend_orientation="h", legend_y=-0.2)
    return fig
