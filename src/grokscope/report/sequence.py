"""Report sections for the sequence tasks: per-target phase changes and what the heads do."""

from __future__ import annotations

from typing import Callable

import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from grokscope.analysis.attention_scores import ov_circuits
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
    if "prev_L0H0" not in progress.columns:
        raise NotApplicable("This model has no attention heads.")
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
    if run.config.model.kind != "transformer":
        raise NotApplicable("This model has no attention.")
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


@torch.no_grad()
def ov_circuit(run: Run, analysis: dict) -> go.Figure:
    """The most copying head's OV circuit ``W_E W_V W_O W_U`` over the values (final weights)."""
    head = max(analysis["heads"], key=lambda h: analysis["heads"][h]["copying"])
    layer, index = int(head[1:head.index("H")]), int(head[head.index("H") + 1:])
    model = run.model()
    attn = model.blocks[layer].attn
    ov = ov_circuits(model.W_E, attn.W_V, attn.W_O, model.W_U)[index]
    fig = go.Figure(go.Heatmap(z=ov.numpy(), colorscale="RdBu", zmid=0, colorbar_title="logit"))
    fig.update_layout(template=TEMPLATE, height=520, width=600, title_text=f"{head}: token attended to (rows) -> logit of each output (columns)")
    fig.update_yaxes(autorange="reversed", title_text="token attended to")
    fig.update_xaxes(title_text="output")
    return fig


@torch.no_grad()
def end_attention_by_value(run: Run) -> go.Figure:
    """Max element: END's attention to a list entry (summed over heads) against the entry's value,
    and against its rank in the list."""
    data, split = run.task.dataset(), run.task.split()
    tokens = data.tokens[split.test][:512]
    model = run.model()
    _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    to_entries = cache["blocks.0.attn.hook_pattern"][:, :, -1, 1:-1].sum(1)  # [batch, entry]
    values = tokens[:, 1:-1]
    rank = values.argsort(1, descending=True).argsort(1)  # 0 = the maximum
    frame = pd.DataFrame({"value": values.flatten(), "rank": rank.flatten(), "attention": to_entries.flatten()})
    fig = make_subplots(rows=1, cols=2, subplot_titles=("by the entry's value", "by its rank in the list (0 = max)"))
    for col, key in enumerate(("value", "rank"), start=1):
        mean = frame.groupby(key)["attention"].mean()
        fig.add_bar(x=mean.index, y=mean.values, marker_color=figures.TRAIN, showlegend=False, row=1, col=col)
        fig.update_xaxes(title_text=key, row=1, col=col)
    fig.update_yaxes(title_text="END's attention (sum over heads)", row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=400)
    return fig


def copying_sections(run: Run, analysis: dict) -> list[Section]:
    return [("The OV circuit copies",
             "What attending to a token does to the logits, for the head with the highest copying score: a bright "
             "diagonal means attending to v raises the logit of v. Sorting and permuting then only need the right "
             "attention pattern.", lambda: ov_circuit(run, analysis))]


def skip_trigram_sections(run: Run, analysis: dict) -> list[Section]:
    return [("Skip trigrams: END attends to the largest entry",
             "END's attention to each list entry: it grows with the entry's value and goes to the maximum, and the OV "
             "circuit (below) turns 'attend to v' into 'predict v': one skip trigram v .. END -> v per value.",
             lambda: end_attention_by_value(run)), *copying_sections(run, analysis)]


TASK_SECTIONS: dict[str, Callable[[Run, dict], list[Section]]] = {
    "max_element": skip_trigram_sections, "sort": copying_sections, "permute": copying_sections,
}


def sections(run: Run, analysis: dict, metrics: pd.DataFrame, progress: pd.DataFrame) -> list[Section]:
    """The sequence-task report, figure by figure: the generic sections, then the task's own
    (``TASK_SECTIONS``)."""
    task_sections = TASK_SECTIONS.get(run.config.task.kind, lambda run, analysis: [])(run, analysis)
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
        *task_sections,
    ]
