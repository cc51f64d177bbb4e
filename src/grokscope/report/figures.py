"""Plotly figures of a run: each function draws data the analysis already computed.

Every builder returns a ``Figure`` or raises ``NotApplicable`` with a sentence saying why the
figure would mislead for this run (the page prints that sentence instead).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokscope.analysis.modular_records import ModularAnalysis, Phases

TEMPLATE = "plotly_white"
TRAIN, TEST, THIRD, FOURTH = "#1f77b4", "#d62728", "#2ca02c", "#9467bd"
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
PHASE_COLOURS = {"memorisation": "rgba(31,119,180,0.08)", "circuit formation": "rgba(255,127,14,0.10)",
                 "clean-up": "rgba(44,160,44,0.10)"}


def add_frequency_bars(fig: go.Figure, ks: list[int], values: list[float], key: set[int], hover: str, **where) -> None:
    """Bars per frequency, the key frequencies in red."""
    fig.add_bar(x=ks, y=values, marker_color=[TEST if k in key else "#999" for k in ks], showlegend=False,
                hovertemplate=hover, **where)


class NotApplicable(Exception):
    """This figure does not apply to the run; the message says why."""


def _phase_spans(phases: Phases | None, last_epoch: int) -> list[tuple[str, float, float]]:
    if phases is None:
        return []
    bounds = [0, phases.memorisation_end, phases.circuit_formation_end, phases.cleanup_end]
    spans = []
    for name, start, end in zip(PHASE_COLOURS, bounds, bounds[1:]):
        if start is None:
            break
        spans.append((name, start, end if end is not None else last_epoch))
        if end is None:
            break
    return spans


def _mark_phases(fig: go.Figure, grok: int | None, phases: Phases | None, last_epoch: int, rows: int) -> None:
    for row in range(1, rows + 1):
        labelled = row == 1  # name the phases once, on the top panel
        for name, start, end in _phase_spans(phases, last_epoch):
            label = dict(annotation_text=name, annotation_position="top left", annotation_font_size=11) if labelled else {}
            fig.add_vrect(x0=start, x1=end, fillcolor=PHASE_COLOURS[name], line_width=0, layer="below",
                          row=row, col=1, **label)
        if grok is not None:
            label = dict(annotation_text=f"grokked @ {grok:,}", annotation_position="bottom right") if labelled else {}
            fig.add_vline(x=grok, line_dash="dash", line_color="black", row=row, col=1, **label)


def training_curves(metrics: pd.DataFrame, grok: int | None, phases: Phases | None = None) -> go.Figure:
    """Train and test loss (log scale) and accuracy over epochs, phases shaded, the grokking epoch marked."""
    evaluated = metrics.dropna(subset=["test_loss"])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("loss (log scale)", "accuracy"))
    fig.add_scatter(x=metrics["epoch"], y=metrics["train_loss"], name="train loss", line_color=TRAIN, row=1, col=1)
    fig.add_scatter(x=evaluated["epoch"], y=evaluated["test_loss"], name="test loss", line_color=TEST, row=1, col=1)
    fig.add_scatter(x=evaluated["epoch"], y=evaluated["train_acc"], name="train accuracy", line_color=TRAIN,
                    line_dash="dot", row=2, col=1)
    fig.add_scatter(x=evaluated["epoch"], y=evaluated["test_acc"], name="test accuracy", line_color=TEST,
                    line_dash="dot", row=2, col=1)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=2, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    _mark_phases(fig, grok, phases, int(metrics["epoch"].iloc[-1]), rows=2)
    fig.update_layout(template=TEMPLATE, height=560, legend_orientation="h", legend_y=-0.12)
    return fig


def progress_measures(progress: pd.DataFrame, analysis: ModularAnalysis) -> go.Figure:
    """Excluded and restricted loss, weights, Gini and softmax collapse over checkpoints."""
    if not analysis.key_frequencies:
        raise NotApplicable("No key frequencies were found, so excluded and restricted loss have nothing to remove or keep.")
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.1, vertical_spacing=0.14, subplot_titles=(
        "loss with and without the key frequencies (log)", "sum of squared weights",
        "Gini of W_E's Fourier norms (sparsity)", "train examples with float32 p(correct) = 1"))
    e = progress["epoch"]
    for column, name, colour, dash in [
        ("train_loss", "train loss", TRAIN, "solid"), ("test_loss", "test loss", TEST, "solid"),
        ("excluded_loss_train", "excluded loss (train)", FOURTH, "solid"),
        ("restricted_loss_train", "restricted loss (train)", THIRD, "dash"),
        ("restricted_loss_test", "restricted loss (test)", THIRD, "dot")]:
        fig.add_scatter(x=e, y=progress[column], name=name, line=dict(color=colour, dash=dash), row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    matrices = [c for c in progress.columns if c.startswith("ssw_W_")]
    fig.add_scatter(x=e, y=progress["ssw_total"], name="all weights", line_color="black", row=1, col=2)
    for c in matrices:
        fig.add_scatter(x=e, y=progress[c], name=c[4:], line_width=1, row=1, col=2)
    fig.add_scatter(x=e, y=progress["embed_fourier_gini"], name="Gini", line_color=THIRD, showlegend=False, row=2, col=1)
    fig.add_scatter(x=e, y=progress["softmax_collapse_train"], name="softmax collapse", line_color=TEST,
                    showlegend=False, row=2, col=2)
    fig.update_yaxes(tickformat=".0%", row=2, col=2)
    for r in (1, 2):
        for c in (1, 2):
            fig.update_xaxes(title_text="epoch", row=r, col=c)
    fig.update_layout(template=TEMPLATE, height=700, legend_orientation="h", legend_y=-0.12)
    return fig


def marginal_waves(analysis: ModularAnalysis, progress: pd.DataFrame) -> go.Figure:
    """The norm of the logits' mean over one input's waves, per coset, over checkpoints (log epochs)."""
    rise = analysis.coordinates.marginal_rise
    if rise is None:
        raise NotApplicable("Only pow_sum with exactly one bijective power has a one-input part to follow.")
    means = {c.least: c.wave_mean for p in analysis.coordinates.power_cosets for c in p.cosets}
    fig = go.Figure()
    epochs = progress["epoch"].clip(lower=1)  # epoch 0 on a log axis
    for i, least in enumerate(rise.cosets):
        fig.add_scatter(x=epochs, y=progress[f"marginal_wave_coset{least}"], line_color=PALETTE[i % len(PALETTE)],
                        name=f"{least}·G (wave mean {means.get(least, math.nan):.3f})")
    marks = [(rise.epoch, "dot", "grey", "half its peak")]
    if analysis.grokking_epoch is not None:
        marks.append((analysis.grokking_epoch, "dash", "black", f"grokked @ {analysis.grokking_epoch:,}"))
    for epoch, dash, colour, text in marks:  # on a log axis a line takes the epoch, its annotation log10 of it
        fig.add_vline(x=max(epoch, 1), line_dash=dash, line_color=colour)
        fig.add_annotation(x=math.log10(max(epoch, 1)), y=1, yref="paper", text=text, showarrow=False,
                           xanchor="left", yanchor="bottom")
    fig.update_xaxes(type="log", title_text="epoch (log)")
    fig.update_yaxes(title_text=f"norm of the waves cos(w(k)({rise.waves})) (logits)")
    fig.update_layout(template=TEMPLATE, height=420, legend_title_text="coset of k")
    return fig


def embedding_norms(analysis: ModularAnalysis, progress: pd.DataFrame) -> go.Figure:
    """W_E's Fourier norm per frequency at the end, and its evolution over checkpoints."""
    norms = analysis.embedding_frequency_norms
    ks = list(range(1, len(norms) + 1))
    key = set(analysis.key_frequencies)
    columns = [f"embed_norm_k{k}" for k in ks]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6], horizontal_spacing=0.1,
                        subplot_titles=("final checkpoint", "over training"))
    add_frequency_bars(fig, ks, norms, key, "frequency %{x}: norm %{y:.2f}<extra></extra>", row=1, col=1)
    fig.add_heatmap(x=progress["epoch"], y=ks, z=progress[columns].to_numpy().T, colorscale="Viridis",
                    colorbar=dict(title="norm", x=1.0), hovertemplate="epoch %{x}, k=%{y}: %{z:.2f}<extra></extra>",
                    row=1, col=2)
    fig.update_xaxes(title_text="frequency k", row=1, col=1)
    fig.update_xaxes(title_text="epoch", row=1, col=2)
    fig.update_yaxes(title_text="frequency k", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=420)
    return fig


def neuron_clusters(analysis: ModularAnalysis) -> go.Figure:
    """Cluster sizes per frequency and the histogram of each neuron's best-frequency FVE."""
    neurons = analysis.neurons
    if neurons is None:
        raise NotApplicable("This model has no MLP neurons.")
    sizes = neurons.cluster_sizes
    key = set(analysis.key_frequencies)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        f"neurons per frequency (FVE >= {neurons.threshold:.2f})", "fraction of each neuron's variance its best frequency explains"))
    ks = sorted(sizes)
    add_frequency_bars(fig, ks, [sizes[k] for k in ks], key, "frequency %{x}: %{y} neurons<extra></extra>", row=1, col=1)
    fig.add_histogram(x=neurons.fve, nbinsx=40, marker_color=TRAIN, showlegend=False, row=1, col=2)
    fig.add_vline(x=neurons.threshold, line_dash="dash", row=1, col=2)
    fig.update_xaxes(title_text="frequency k", type="category", row=1, col=1)
    fig.update_xaxes(title_text="FVE", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=380)
    return fig


def neuron_examples(analysis: ModularAnalysis, arrays: dict) -> go.Figure:
    """Example neurons over the (x, y) grid beside their single-frequency approximations."""
    meta = analysis.neuron_examples
    if not meta or "neuron_examples" not in arrays:
        raise NotApplicable("No neuron is well explained by a single key frequency, so there is no clean example to show.")
    rows = len(meta)
    x, y = analysis.axes
    titles = []
    for m in meta:
        titles += [f"neuron {m.neuron} (frequency {m.frequency})", f"its frequency-{m.frequency} terms (FVE {m.fve:.0%})"]
    fig = make_subplots(rows=rows, cols=2, subplot_titles=titles, vertical_spacing=0.3 / rows, horizontal_spacing=0.08)
    for i in range(rows):
        for j, name in enumerate(("neuron_examples", "neuron_examples_approx")):
            fig.add_heatmap(z=arrays[name][i], colorscale="RdBu", zmid=0, showscale=False,
                            hovertemplate=f"{x}=%{{y}}, {y}=%{{x}}: %{{z:.2f}}<extra></extra>", row=i + 1, col=j + 1)
            fig.update_xaxes(title_text=y, row=i + 1, col=j + 1)
            fig.update_yaxes(title_text=x, autorange="reversed", row=i + 1, col=j + 1)
    fig.update_layout(template=TEMPLATE, height=300 * rows)
    return fig


def logit_structure(analysis: ModularAnalysis, arrays: dict, labels: list[str]) -> go.Figure:
    """The logits' 2-D Fourier spectrum over (x, y) and the cos(w(x+y-z)) fit per frequency."""
    share = analysis.logit_frequency_share
    ks = list(range(1, len(share) + 1))
    key = set(analysis.key_frequencies)
    sign = "+" if analysis.sign > 0 else "-"
    x, y = analysis.axes
    wx, wy = analysis.wave_axes
    fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.12, subplot_titles=(
        "norm of the centred logits' 2-D Fourier terms", f"variance explained by cos(w_k({wx} {sign} {wy} - z))"))
    fig.add_heatmap(z=arrays["logits_spectrum_2d"], x=labels, y=labels, colorscale="Viridis", showscale=False,
                    hovertemplate=f"%{{y}} ({x}) * %{{x}} ({y}): %{{z:.1f}}<extra></extra>", row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    add_frequency_bars(fig, ks, share, key, "k=%{x}: %{y:.1%}<extra></extra>", row=1, col=2)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_xaxes(title_text="frequency k", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=520)
    return fig


def embedding_circles(analysis: ModularAnalysis, arrays: dict) -> go.Figure:
    """W_E projected on the cos/sin directions of each key frequency: points on a circle."""
    freqs = analysis.key_frequencies
    if not freqs or "embedding_circles" not in arrays:
        raise NotApplicable("No key frequencies, so there is no circle to draw.")
    circles = arrays["embedding_circles"]
    p = circles.shape[1]
    fig = make_subplots(rows=1, cols=len(freqs), subplot_titles=[f"k = {k}" for k in freqs], horizontal_spacing=0.04)
    for i, k in enumerate(freqs):
        fig.add_scatter(x=circles[i, :, 0], y=circles[i, :, 1], mode="markers+text", text=[str(x) for x in range(p)],
                        textposition="top center", textfont_size=7,
                        marker=dict(color=[(x * k) % p for x in range(p)], colorscale="HSV", size=6),
                        showlegend=False, hovertemplate="x=%{text}<extra></extra>", row=1, col=i + 1)
        fig.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", showticklabels=False, row=1, col=i + 1)
        fig.update_xaxes(showticklabels=False, row=1, col=i + 1)
    fig.update_layout(template=TEMPLATE, height=360)
    return fig


def attention_patterns(arrays: dict) -> go.Figure:
    """Attention paid by '=' to x, per head, over the (x, y) grid (to y is one minus it, less '=')."""
    if "attention_to_x" not in arrays:
        raise NotApplicable("This model has no attention.")
    to_x = arrays["attention_to_x"]
    heads = to_x.shape[0]
    fig = make_subplots(rows=1, cols=heads, subplot_titles=[f"head {h}: '=' attends to x" for h in range(heads)],
                        horizontal_spacing=0.03)
    for h in range(heads):
        fig.add_heatmap(z=to_x[h], zmin=0, zmax=1, colorscale="Blues", showscale=h == heads - 1,
                        hovertemplate="x=%{y}, y=%{x}: %{z:.2f}<extra></extra>", row=1, col=h + 1)
        fig.update_yaxes(autorange="reversed", title_text="x" if h == 0 else None, row=1, col=h + 1)
        fig.update_xaxes(title_text="y", row=1, col=h + 1)
    fig.update_layout(template=TEMPLATE, height=330)
    return fig


def ablation_curve(analysis: ModularAnalysis) -> go.Figure:
    """Loss after mean-ablating the k most important neurons, with the other ablations as lines."""
    ab = analysis.ablations
    if ab is None:
        raise NotApplicable("This model has no MLP neurons to ablate.")
    ks, losses = zip(*ab.top_k)
    fig = go.Figure()
    fig.add_scatter(x=ks, y=losses, mode="lines+markers", name="top-k neurons mean-ablated", line_color=TEST)
    span = [ks[0], ks[-1]]  # reference levels as legend entries (annotations misplace on log axes)
    fig.add_scatter(x=span, y=[ab.base_loss] * 2, mode="lines", name="no ablation", line=dict(color=TRAIN, dash="dash"))
    fig.add_scatter(x=span, y=[ab.single_frequency_approximation] * 2, mode="lines",
                    name="every neuron replaced by its single-frequency approximation", line=dict(color=THIRD, dash="dot"))
    fig.update_xaxes(type="log", title_text="neurons ablated (most important first)")
    fig.update_yaxes(type="log", exponentformat="power", title_text="loss over all pairs")
    fig.update_layout(template=TEMPLATE, height=400, legend_orientation="h", legend_y=-0.25)
    return fig


def ablation_rows(analysis: ModularAnalysis) -> list[tuple[str, str]]:
    """(ablation, loss) rows for the page's table."""
    ab = analysis.ablations
    if ab is None:
        return []
    fmt = lambda v: f"{v:.3g}" if v is not None and math.isfinite(v) else "n/a"  # noqa: E731
    rows = [("none (the trained model)", fmt(ab.base_loss))]
    rows += [(f"cluster of frequency {k} mean-ablated", fmt(v)) for k, v in ab.clusters.items()]
    rows += [(f"frequency {k}'s terms removed from every neuron", fmt(v)) for k, v in ab.frequency_directions.items()]
    rows.append(("every neuron replaced by its single-frequency approximation", fmt(ab.single_frequency_approximation)))
    rows.append(("clustered neurons replaced by their approximation", fmt(ab.clustered_single_frequency_approximation)))
    return rows


def load_arrays(path) -> dict:
    """The analysis's figure arrays (``analysis.safetensors``) as float64 numpy arrays; {} if there are none."""
    from safetensors.numpy import load_file

    if not Path(path).is_file():
        return {}
    return {k: v.astype("float64") for k, v in load_file(str(path)).items()}
