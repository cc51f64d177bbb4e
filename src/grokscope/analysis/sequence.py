"""The sequence-task analysis families (n-digit addition, max element, sorting, repeated
subsequences): phase changes in the loss of each target, and what the attention heads do.

Per checkpoint (``progress.parquet``): every head's previous-token score (on the task's test
examples), induction score (on repeated random tokens) and copying score (its OV circuit).
Into ``analysis.json``: the phase change of each named target's train loss and of the train
loss itself (``curves.phase_change``), when the strongest induction head's score rose (10 % ->
90 % of its final value), the final scores; the extensions add the copying head's OV circuit
(sort, permute, max element) and the skip-trigram evidence (max element).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from grokscope.analysis.attention_scores import (
    copying_accuracy, copying_scores, induction_scores, ov_circuits, previous_token_scores, repeated_random_tokens,
)
from grokscope.analysis.curves import PHASE_CHANGE_RULE, phase_change, phase_changes
from grokscope.analysis.registry import AnalysisFamily, Computed, register
from grokscope.analysis.sequence_records import (
    FinalMetrics, HeadScores, OVCircuit, Rise, SequenceAnalysis, SkipTrigramEvidence,
)
from grokscope.runs import Run

FORMAT = "grokscope.sequence-analysis/1"
N_EXAMPLES = 256  # test examples (and repeated random sequences) the attention scores average over


def _patterns(model, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's attention pattern on ``tokens``: [layer] of [batch, head, pos, pos]."""
    names = model.pattern_hooks
    _, cache = model.run_with_cache(tokens, names_filter=names)
    return [cache[n] for n in names]


@torch.no_grad()
def head_scores(model, test_tokens: torch.Tensor, induction_tokens: torch.Tensor) -> dict[str, float]:
    """Previous-token, induction and copying score of every head, as ``{"prev_L0H1": ...}``."""
    row: dict[str, float] = {}
    for layer, (task_pattern, rep_pattern) in enumerate(zip(_patterns(model, test_tokens),
                                                           _patterns(model, induction_tokens))):
        attn = model.blocks[layer].attn
        scores = {"prev": previous_token_scores(task_pattern), "induction": induction_scores(rep_pattern),
                  "copying": copying_scores(ov_circuits(model.W_E, attn.W_V, attn.W_O, model.W_U))}
        for name, values in scores.items():
            for head, value in enumerate(values.tolist()):
                row[f"{name}_{head_label(layer, head)}"] = value
    return row


def rise(epochs: list[int], values: np.ndarray) -> Rise:
    """Epochs at which a rising score first reaches 10 % and 90 % of its final value."""
    final = values[-1]
    if not final > 0:
        return Rise(None, None)
    at = lambda share: next((int(e) for e, v in zip(epochs, values) if v >= share * final), None)  # noqa: E731
    return Rise(at(0.1), at(0.9))


def analyze_sequence_run(run: Run, on_checkpoint=None) -> Computed:
    """Analyse a model trained on a sequence task: the document, the per-checkpoint head
    scores, and the final model's attention patterns on one held-out example (arrays)."""
    attention = run.config.model.kind == "transformer"
    t0 = time.perf_counter()
    test_tokens = _test_tokens(run)
    induction_tokens = repeated_random_tokens(min(run.task.d_vocab, run.task.d_vocab_out), run.task.n_ctx, N_EXAMPLES)
    epochs = run.checkpoint_epochs
    rows = []
    for i, epoch in enumerate(epochs):
        model = run.model(epoch)
        scores = head_scores(model, test_tokens, induction_tokens) if attention else {}
        rows.append({"epoch": epoch, **scores})
        if on_checkpoint is not None:
            on_checkpoint(i + 1, len(epochs))
    progress = pd.DataFrame(rows)

    metrics = run.metrics
    names = run.task.target_names or []
    target_changes = phase_changes({n: metrics[f"train_loss_{n}"].to_numpy() for n in names})
    loss_change = phase_change(metrics["train_loss"].to_numpy())
    final = rows[-1]
    heads = [c[len("induction_"):] for c in progress.columns if c.startswith("induction_")]
    best = max(heads, key=lambda h: final[f"induction_{h}"]) if heads else None
    summary = run.summary
    heads_final = {h: HeadScores(**{s: final[f"{s}_{h}"] for s in ("prev", "induction", "copying")}) for h in heads}
    task, n_layers = run.config.task.kind, getattr(run.config.model, "n_layers", 0)
    final_metrics = FinalMetrics(**{k: summary[k] for k in ("train_loss", "test_loss", "train_acc", "test_acc")})
    induction_rise = rise(epochs, progress[f"induction_{best}"].to_numpy()) if heads else None
    result = SequenceAnalysis(
        format=FORMAT, task=task, n_layers=n_layers, epoch=epochs[-1], grokking_epoch=summary["grokking_epoch"],
        final=final_metrics, phase_change_rule=PHASE_CHANGE_RULE, train_loss_phase_change=loss_change,
        target_phase_changes=target_changes, heads=heads_final, induction_head=best, induction_rise=induction_rise,
        headline=headline(task, final_metrics, loss_change, target_changes),
        findings=findings(target_changes, heads_final, best, induction_rise, n_layers),
        seconds=time.perf_counter() - t0,
    )
    arrays = None
    if attention:  # the final model's patterns on the first held-out example
        example = test_tokens[:1]
        arrays = {"example_tokens": example[0].double()}
        for layer, pattern in enumerate(_patterns(model, example)):
            for head in range(pattern.shape[1]):
                arrays[f"pattern_{head_label(layer, head)}"] = pattern[0, head].double()  # [query pos, key pos]
    return Computed(result=result, progress=progress, arrays=arrays)


def _test_tokens(run: Run) -> torch.Tensor:
    """The first ``N_EXAMPLES`` held-out examples: [batch, pos]."""
    data, split = run.task.dataset(), run.task.split()
    return data.tokens[split.test][:N_EXAMPLES]


@register
class SequenceTask(AnalysisFamily):
    """Sequence tasks: phase changes in each target's loss, and what the attention heads do."""

    name = "sequence"
    record = SequenceAnalysis
    primary = True
    format = FORMAT

    def applies_to(self, config) -> bool:
        return config.task.kind not in ("modular", "group")

    def compute(self, run, prior, on_checkpoint=None) -> Computed:
        return analyze_sequence_run(run, on_checkpoint)

    def page(self, run, analysis, progress):
        from grokscope.report.html import sequence_page

        return sequence_page(run, analysis.primary, progress)

    def summary_row(self, analysis) -> dict[str, Any]:
        a: SequenceAnalysis = analysis.primary
        return {"train_loss_phase_change": a.train_loss_phase_change,
                **{f"phase_change_{n}": e for n, e in a.target_phase_changes.items()}}


@register
class CopyingCircuit(AnalysisFamily):
    """The OV circuit ``W_E W_V W_O W_U`` of the most copying head (final weights), for the
    tasks solved by copying: sorting, permuting, the max element."""

    name = "copying_circuit"
    record = OVCircuit

    def applies_to(self, config) -> bool:
        return config.task.kind in ("sort", "permute", "max_element") and config.model.kind == "transformer"

    def compute(self, run, prior, on_checkpoint=None) -> Computed:
        heads = prior.primary.heads
        head = max(heads, key=lambda h: heads[h].copying)
        model = run.model()
        layer, index = next((i, h) for i in range(len(model.blocks)) for h in range(model.blocks[i].attn.n_heads)
                            if head_label(i, h) == head)
        attn = model.blocks[layer].attn
        with torch.no_grad():
            ov = ov_circuits(model.W_E, attn.W_V, attn.W_O, model.W_U)[index]  # [token, output]
        return Computed(OVCircuit(head=head, layer=layer, head_index=index, ov=ov.tolist()))

    def sections(self, run, analysis, progress):
        from grokscope.report.sequence import copying_sections

        return copying_sections(analysis.extensions[self.name])


@register
class SkipTrigrams(AnalysisFamily):
    """Max element: how often END attends most (summed over heads) to the list's maximum, its
    mean attention by an entry's value and rank, and the share of values v whose OV circuit's
    largest output is v itself (the skip trigram ``v .. END -> v``)."""

    name = "skip_trigrams"
    record = SkipTrigramEvidence

    def applies_to(self, config) -> bool:
        return config.task.kind == "max_element" and config.model.kind == "transformer"

    def compute(self, run, prior, on_checkpoint=None) -> Computed:
        model = run.model()
        data, split = run.task.dataset(), run.task.split()
        tokens, labels = data.tokens[split.test][:N_EXAMPLES], data.labels[split.test][:N_EXAMPLES]
        with torch.no_grad():
            pattern = _patterns(model, tokens)[-1][:, :, -1, :].sum(1)  # [batch, pos]: END's attention
            attn = model.blocks[-1].attn
            ov_accuracy = copying_accuracy(ov_circuits(model.W_E, attn.W_V, attn.W_O, model.W_U))
        at_max = (tokens == labels).float()  # the maximum occurs once
        entries, values = pattern[:, 1:-1], tokens[:, 1:-1]  # the list, without START and END
        rank = values.argsort(1, descending=True).argsort(1)  # 0 = the maximum
        frame = pd.DataFrame({"value": values.flatten(), "rank": rank.flatten(), "attention": entries.flatten()})
        return Computed(SkipTrigramEvidence(
            end_attends_to_max=float((pattern.argmax(-1) == at_max.argmax(-1)).double().mean()),
            ov_copying_accuracy=ov_accuracy,
            attention_by_value={int(k): float(v) for k, v in frame.groupby("value")["attention"].mean().items()},
            attention_by_rank={int(k): float(v) for k, v in frame.groupby("rank")["attention"].mean().items()},
        ))

    def findings(self, result: SkipTrigramEvidence) -> list[str]:
        return [f"END attends most to the maximum in {result.end_attends_to_max:.1%} of test lists; the OV "
                f"circuit maps {result.ov_copying_accuracy:.1%} of values to themselves (skip trigrams v .. END -> v)"]

    def sections(self, run, analysis, progress):
        from grokscope.report.sequence import skip_trigram_sections

        return skip_trigram_sections(analysis.extensions[self.name])


def head_label(layer: int, head: int) -> str:
    """A head's name in the progress table and the document: ``L{layer}H{head}``."""
    return f"L{layer}H{head}"


def headline(task: str, final: FinalMetrics, loss_change: int | None, changes: dict[str, int | None]) -> str:
    """One line: final accuracy, when the loss fell, and the phase changes found."""
    found = {n: e for n, e in changes.items() if e is not None}
    text = (f"{task}: test accuracy {final.test_acc:.1%}; "
            + (f"train-loss phase change at epoch {loss_change}" if loss_change is not None
               else "no train-loss phase change by the rule"))
    if changes:
        text += f"; {len(found)} of {len(changes)} targets show a phase change"
        if found:
            text += f" at epochs {sorted(set(found.values()))}"
    return text


def findings(changes: dict[str, int | None], heads: dict[str, HeadScores], induction_head: str | None,
             induction_rise: Rise | None, n_layers: int) -> list[str]:
    """What the heads do, one line each."""
    lines = [f"{n}: phase change at epoch {e}" if e is not None else f"{n}: no phase change by the rule"
             for n, e in changes.items()]
    if not heads:
        return lines + ["this model has no attention heads to score"]
    if n_layers >= 2:  # an induction circuit needs two layers
        lines.append(f"strongest induction head {induction_head}: induction score {heads[induction_head].induction:.2f} "
                     f"(rose 10%->90% between epochs {induction_rise.epoch_10} and {induction_rise.epoch_90})")
    prev = max(heads, key=lambda k: heads[k].prev)
    lines.append(f"strongest previous-token head {prev}: score {heads[prev].prev:.2f}")
    copy = max(heads, key=lambda k: heads[k].copying)
    lines.append(f"most copying head {copy}: positive-eigenvalue share of its OV circuit {heads[copy].copying:.2f}")
    return lines
