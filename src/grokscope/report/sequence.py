"""Report sections for the sequence tasks: per-target phase changes and what the heads do."""

from __future__ import annotations

from typing import Callable

import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from grokscope.report import figures
from grokscope.report.figures import TEMPLATE, NotApplicable
from grokscope.runs import Run

Section = tuple[str, str, Callable[[], go.Figure]]


def target_losses(metrics: pd.DataFrame, analysis: dict) -> go.Figure:
    """Train loss of each named target (log scale, smoothed over 20 epochs), phase changes marked."""
    changes = analysis["target_phase_changes"]
    if not changes:
        raise NotApplicable("This task scores its targets together; there are no per-target curves.")
    fig = go.Figure()
    for i, (name, epoch) in enumerate(changes.items()):
        colour = figures.PALETTE[i % len(figures.PALETTE)]
        smooth = metrics[f"train_loss_{name}"].rolling(20, center=True, min_periods=1).median()
        fig.add_scatter(x=metrics["epoch"], y=smooth, name=name, line_color=colour)
        if epoch is not None:
            fig.add_vline(x=epoch, line_dash="dot", line_color=colour)
    fig.update_yaxes(type="log", exponentformat="power", title_text="train loss")
    fig.update_xaxes(title_text="epoch (optimizer step)")
    fig.update_layout(template=TEMPLATE, height=460, legend_orientation="h", legend_y=-0.18)
    return fig


def head_scores(progress: pd.DataFrame) -> go.Figure:
    """Every head's previous-token, induction and copying score over the checkpoints."""
    kinds = [("prev", "previous-token score"), ("induction", "induction score"), ("copying", "copying score (OV)")]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in kinds], horizontal_spacing=0.06)
    heads = [c[len("prev_"):] for c in progress.columns if c.startswith("prev_")]
    for col, (kind, _) in enumerate(kinds, start=1):
        for i, head in enumerate(heads):
            fig.add_scatter(x=progress["epoch"], y=progress[f"{kind}_{head}"], name=head, legendgroup=head,
                            showlegend=col == 1, line_color=figures.PALETTE[i % len(figures.PALETTE)], row=1, col=col)
        fig.update_yaxes(range=[0, 1.02], row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_layout(template=TEMPLATE, height=420, legend_orientation="h", legend_y=-0.25)
    return fig


@torch.no_grad()
def attention_example(run: Run) -> go.Figure:
    """Each head's attention pattern on the first test example (final weights)."""
    data, split = run.task.dataset(), run.task.split()
    tokens = data.tokens[split.test][:1]
    model = run.model()
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(len(model.blocks))]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    panels = [(f"L{layer}H{h}", cache[n][0, h]) for layer, n in enumerate(names) for h in range(cache[n].shape[1])]
    labels = [f"{i}:{t}" for i, t in enumerate(tokens[0].tolist())]
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.04, vertical_spacing=0.08)
    for i, (_, pattern) in enumerate(panels):
        fig.add_heatmap(z=pattern.numpy(), x=labels, y=labels, coloraxis="coloraxis", row=i // cols + 1, col=i % cols + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(template=TEMPLATE, height=330 * rows, coloraxis=dict(colorscale="Blues", cmin=0, cmax=1),
                      title_text="query position (rows) attends to key position (columns); labels are position:token")
    return fig


def sections(run: Run, analysis: dict, metrics: pd.DataFrame, progress: pd.DataFrame) -> list[Section]:
    """The sequence-task report, figure by figure."""
    return [
        ("Training curves", "Loss (log scale) and accuracy on the training batches and the held-out examples.",
         lambda: figures.training_curves(metrics, analysis)),
        ("A phase change per target",
         "The train loss of each answer position separately. Each falls in its own reverse S: a plateau, a sudden "
         "drop, a levelling off. Dotted: the phase change located by the rule in analysis.json.",
         lambda: target_losses(metrics, analysis)),
        ("What the heads do, over training",
         "Previous-token score: attention to the position before, on test examples. Induction score: on a random "
         "sequence repeated twice, attention from the second copy to the token after the earlier occurrence of the "
         "current token. Copying score: share of the OV circuit W_E W_V W_O W_U's eigenvalues (by magnitude) that "
         "are positive: attending to a token raises that token's logit.",
         lambda: head_scores(progress)),
        ("Attention on one example", "The final model's attention patterns on the first held-out example.",
         lambda: attention_example(run)),
    ]
