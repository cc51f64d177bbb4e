"""Report sections for the sequence tasks: per-target phase changes and what the heads do.
They draw what the analysis stored (analysis.json, analysis.safetensors); nothing is computed here."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokscope.analysis.registry import Section
from grokscope.analysis.sequence_records import OVCircuit, SequenceAnalysis, SkipTrigramEvidence
from grokscope.report import figures
from grokscope.report.figures import TEMPLATE, NotApplicable
from grokscope.runs import Run


def target_losses(metrics: pd.DataFrame, analysis: SequenceAnalysis) -> go.Figure:
    """Train loss of each named target (log scale, smoothed over 20 epochs), phase changes marked."""
    changes = analysis.target_phase_changes
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


def attention_example(arrays: dict) -> go.Figure:
    """Each head's attention pattern on the first held-out example (final weights), from the
    analysis's arrays."""
    if "example_tokens" not in arrays:
        raise NotApplicable("This model has no attention heads.")
    panels = [(name[len("pattern_"):], arrays[name]) for name in arrays if name.startswith("pattern_")]
    labels = [f"{i}:{int(t)}" for i, t in enumerate(arrays["example_tokens"].tolist())]
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.04, vertical_spacing=0.08)
    for i, (_, pattern) in enumerate(panels):
        fig.add_heatmap(z=pattern, x=labels, y=labels, coloraxis="coloraxis", row=i // cols + 1, col=i % cols + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(template=TEMPLATE, height=330 * rows, coloraxis=dict(colorscale="Blues", cmin=0, cmax=1),
                      title_text="query position (rows) attends to key position (columns); labels are position:token")
    return fig


def ov_circuit(circuit: OVCircuit) -> go.Figure:
    """The most copying head's OV circuit ``W_E W_V W_O W_U`` over the values (final weights)."""
    fig = go.Figure(go.Heatmap(z=circuit.ov, colorscale="RdBu", zmid=0, colorbar_title="logit"))
    fig.update_layout(template=TEMPLATE, height=520, width=600,
                      title_text=f"{circuit.head}: token attended to (rows) -> logit of each output (columns)")
    fig.update_yaxes(autorange="reversed", title_text="token attended to")
    fig.update_xaxes(title_text="output")
    return fig


def end_attention_by_value(evidence: SkipTrigramEvidence) -> go.Figure:
    """Max element: END's mean attention to a list entry (summed over heads) against the entry's
    value, and against its rank in the list."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("by the entry's value", "by its rank in the list (0 = max)"))
    for col, (key, mean) in enumerate((("value", evidence.attention_by_value), ("rank", evidence.attention_by_rank)),
                                      start=1):
        fig.add_bar(x=list(mean), y=list(mean.values()), marker_color=figures.TRAIN, showlegend=False, row=1, col=col)
        fig.update_xaxes(title_text=key, row=1, col=col)
    fig.update_yaxes(title_text="END's attention (sum over heads)", row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=400)
    return fig


def copying_sections(circuit: OVCircuit) -> list[Section]:
    return [("The OV circuit copies",
             "What attending to a token does to the logits, for the head with the highest copying score: a bright "
             "diagonal means attending to v raises the logit of v. Sorting and permuting then only need the right "
             "attention pattern.", lambda: ov_circuit(circuit))]


def skip_trigram_sections(evidence: SkipTrigramEvidence) -> list[Section]:
    return [("Skip trigrams: END attends to the largest entry",
             "END's attention to each list entry: it grows with the entry's value and goes to the maximum, and the OV "
             "circuit (above) turns 'attend to v' into 'predict v': one skip trigram v .. END -> v per value.",
             lambda: end_attention_by_value(evidence))]


def sections(run: Run, analysis: SequenceAnalysis, metrics: pd.DataFrame, progress: pd.DataFrame) -> list[Section]:
    """The sequence-task report, figure by figure (the extensions' sections follow, added by the
    report from the analysis registry)."""
    arrays = figures.load_arrays(run.paths.root / "analysis.safetensors")
    return [
        ("Training curves", "Loss (log scale) and accuracy on the training batches and the held-out examples.",
         lambda: figures.training_curves(metrics, analysis.grokking_epoch)),
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
         lambda: attention_example(arrays)),
    ]
