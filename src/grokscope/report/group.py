"""The report page of a group-composition run: per-irrep shares over training, the key
representations and the character fit. It draws what the analysis stored; nothing is computed here."""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokscope.analysis.group_records import GroupAnalysis
from grokscope.report import figures
from grokscope.report.figures import TEMPLATE
from grokscope.runs import Run

SHARES = [("embed_share", "W_E: share of non-trivial energy"), ("unembed_share", "W_U: share of non-trivial energy"),
          ("logit_share", "logits: variance explained by χ(a·b·c⁻¹)")]


def irrep_shares(progress: pd.DataFrame, analysis: GroupAnalysis) -> go.Figure:
    """Each non-trivial irrep's share of W_E, W_U and the logits at every checkpoint; key ones drawn solid."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in SHARES], horizontal_spacing=0.06)
    for col, (prefix, _) in enumerate(SHARES, start=1):
        for i, irrep in enumerate(analysis.irreps[1:]):
            key = irrep.name in analysis.key_representations
            fig.add_scatter(x=progress["epoch"], y=progress[f"{prefix}_{irrep.name}"], name=f"{irrep.name} ({irrep.dim}-d)",
                            legendgroup=irrep.name, showlegend=col == 1,
                            line=dict(color=figures.PALETTE[i % len(figures.PALETTE)], dash="solid" if key else "dot",
                                      width=2.5 if key else 1.2), row=1, col=col)
        fig.update_yaxes(range=[0, 1.02], row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_layout(template=TEMPLATE, height=430, legend_orientation="h", legend_y=-0.25)
    return fig


def irrep_table(analysis: GroupAnalysis) -> go.Figure:
    """The last checkpoint's measures of every irrep, as a bar chart of the three shares."""
    names = [f"{r.name} ({r.dim}-d)" for r in analysis.irreps[1:]]
    fig = go.Figure()
    for (attr, label), colour in zip([("embed_share", "W_E"), ("unembed_share", "W_U"), ("logit_share", "logits χ fit")],
                                     figures.PALETTE):
        fig.add_bar(x=names, y=[getattr(r, attr) for r in analysis.irreps[1:]], name=label, marker_color=colour)
    fig.update_layout(template=TEMPLATE, height=380, barmode="group", yaxis_title="share", legend_orientation="h",
                      legend_y=-0.25)
    return fig


def key_losses(progress: pd.DataFrame, metrics: pd.DataFrame) -> go.Figure:
    """Test loss, restricted test loss (key a·b terms only) and excluded train loss over training."""
    fig = go.Figure()
    fig.add_scatter(x=progress["epoch"], y=progress["test_loss"], name="test loss", line_color=figures.PALETTE[0])
    fig.add_scatter(x=progress["epoch"], y=progress["restricted_loss_test"], name="restricted test loss",
                    line_color=figures.PALETTE[1])
    fig.add_scatter(x=progress["epoch"], y=progress["excluded_loss_train"], name="excluded train loss",
                    line_color=figures.PALETTE[2])
    fig.add_scatter(x=progress["epoch"], y=progress["train_loss"], name="train loss", line_color=figures.PALETTE[3])
    fig.update_yaxes(type="log", exponentformat="power", title_text="loss (nats)")
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(template=TEMPLATE, height=420, legend_orientation="h", legend_y=-0.2)
    return fig


def group_page(run: Run, analysis: GroupAnalysis, progress: pd.DataFrame) -> tuple[str, list, dict[str, str]]:
    """The page of a group-composition run."""
    yes = analysis.verdict.implements_composition
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in analysis.verdict.reasons)
    head = html.escape(analysis.headline)
    c = run.config
    rows = [("task", f"a·b in {c.task.group} (order {analysis.order}), {c.task.frac_train:.0%} of pairs for training "
                     f"(split seed {c.task.seed})"),
            ("model", c.model.summary()),
            ("training", f"AdamW lr {c.train.lr:g}, weight decay {c.train.weight_decay:g}, "
                         f"{run.summary['final_epoch']:,} epochs, seed {c.train.seed}"),
            ("irreps (real)", ", ".join(f"{r.name} ({r.dim}-d)" for r in analysis.irreps)),
            ("key representations by method",
             "; ".join(f"{m}: {v}" for m, v in analysis.key_representations_by_method.items())),
            ("rule", analysis.key_representation_rules["combined"])]
    if analysis.key_representation_disagreements:
        rows.append(("disagreements", "; ".join(analysis.key_representation_disagreements)))
    facts = '<table class="facts">' + "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows) + "</table>"
    intro = f'<div class="verdict {"yes" if yes else "no"}"><b>{head}.</b><ul>{reasons}</ul></div>{facts}'
    metrics = run.metrics
    sections = [
        ("Training curves", "Loss (log scale) and accuracy on the training pairs and the held-out pairs.",
         lambda: figures.training_curves(metrics, analysis.grokking_epoch)),
        ("Representations over training",
         "Each non-trivial irreducible representation's share of the embedding W_E (rows: the group's elements), of "
         "the unembedding W_U (columns), and of the logits' variance explained by its character χ(a·b·c⁻¹), at every "
         "checkpoint. Solid: the key representations.",
         lambda: irrep_shares(progress, analysis)),
        ("The last checkpoint, irrep by irrep", "The same three shares at the end of training.",
         lambda: irrep_table(analysis)),
        ("Restricted and excluded loss",
         "Restricted: the logits kept to the key representations' a·b terms (and the constant), on the test pairs. "
         "Excluded: the logits without those terms, on the training pairs. A model that composes through the key "
         "representations keeps a low restricted loss and cannot fit its own training data without them.",
         lambda: key_losses(progress, metrics)),
    ]
    return intro, sections, {}
