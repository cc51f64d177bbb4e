"""One self-contained HTML page per run: the grokking story in figures, captions and a verdict.

plotly.js is embedded once in the page, so the file opens offline and can be shared alone.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
import pandas as pd
from plotly.offline import get_plotlyjs

from grokscope.analysis import registry
from grokscope.analysis.fourier import FourierBasis
from grokscope.analysis.modular_records import LabelStatistics, ModularAnalysis
from grokscope.analysis.sequence_records import SequenceAnalysis
from grokscope.errors import GrokscopeError
from grokscope.lock import run_lock
from grokscope.report import figures, sequence
from grokscope.atomic import atomic_write_text
from grokscope.runs import Run, load_run

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.caption { color: #444; max-width: 60em; } .na { color: #8a6d3b; background: #fcf8e3; padding: 0.6em 1em; border-radius: 4px; }
.verdict { font-size: 1.15em; padding: 0.8em 1em; border-radius: 6px; }
.yes { background: #e8f5e9; border: 1px solid #66bb6a; } .no { background: #fff3e0; border: 1px solid #ffa726; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; text-align: left; }
.facts td:first-child { color: #666; } code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _story(run: Run, analysis: ModularAnalysis) -> str:
    """The run in three or four sentences, from the numbers."""
    memorised = analysis.phases.memorisation_end
    parts = []
    if memorised is not None:
        parts.append(f"The model memorised its {len(run.task.split().train):,} training pairs by epoch {memorised:,}.")
    if analysis.grokking_epoch is not None:
        parts.append(f"Test accuracy passed 99% at epoch {analysis.grokking_epoch:,}: it grokked, long after memorising.")
    else:
        parts.append(f"It did not grok: final test accuracy {analysis.final.test_acc:.1%} after "
                     f"{run.summary['final_epoch']:,} epochs.")
    if analysis.key_frequencies:
        parts.append(f"It uses the frequencies {', '.join(map(str, analysis.key_frequencies))} "
                     f"(w_k = 2πk/{run.config.task.p}).")
    return " ".join(parts)


def _verdict_html(analysis: ModularAnalysis) -> str:
    yes = analysis.verdict.implements_fourier_multiplication
    head = ("The model implements the Fourier-multiplication algorithm" if yes
            else "The model does not (yet) implement the Fourier-multiplication algorithm")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in analysis.verdict.reasons)
    return f'<div class="verdict {"yes" if yes else "no"}"><b>{head}.</b><ul>{reasons}</ul></div>'


def _facts(run: Run, analysis: ModularAnalysis) -> str:
    c = run.config
    rows = [
        ("task", f"({c.task.expression}) mod {c.task.p}, "
                 f"{c.task.frac_train:.0%} of pairs for training (split seed {c.task.seed})"),
        ("model", c.model.summary()),
        ("coordinates of the analysis", analysis.coordinates.basis),
        ("labels over the p residues", _label_text(analysis.label_statistics)),
        ("training", f"AdamW lr {c.train.lr:g}, weight decay {c.train.weight_decay:g}, {run.summary['final_epoch']:,} "
                     f"epochs, loss in {c.train.loss_dtype}, seed {c.train.seed}"),
        ("key frequencies by method", "; ".join(f"{m}: {v}" for m, v in analysis.key_frequencies_by_method.items())),
        ("rule", analysis.key_frequency_rule),
    ]
    if analysis.key_frequency_disagreements:
        rows.append(("disagreements", "; ".join(analysis.key_frequency_disagreements)))
    return _facts_table(rows)


def _facts_table(rows: list[tuple[str, object]]) -> str:
    """(label, value) rows as the page's two-column facts table."""
    return '<table class="facts">' + "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _label_text(stats: LabelStatistics | None) -> str:
    if stats is None:
        return "not recorded"
    return (f"{stats.residues_hit} residues hit; entropy {stats.label_entropy_bits:.3f} of "
            f"{stats.max_entropy_bits:.3f} bits; commonest label {stats.top_label_share:.2%} of pairs")


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's report (default ``RUN/report.html``) and return its path."""
    run = load_run(run_dir)
    with run_lock(run.paths.root, "grokscope report"):
        return _write_report(run, out)


def _write_report(run: Run, out: str | Path | None) -> Path:
    run.refuse_if_diverged()
    analysis_path = run.paths.root / "analysis.json"
    if not analysis_path.is_file():
        raise GrokscopeError(f"{run.paths.root} has no analysis.json; run `grokscope analyze {run.paths.root}` first")
    try:
        analysis = json.loads(analysis_path.read_text())
        progress = pd.read_parquet(run.paths.root / "progress.parquet")
    except (OSError, ValueError) as e:  # unreadable JSON or Parquet (pyarrow's errors are ValueErrors)
        raise GrokscopeError(f"the analysis in {run.paths.root} is incomplete or corrupt ({e}); re-run grokscope analyze") from None
    try:
        stored = registry.read_analysis(analysis)
    except GrokscopeError as e:
        raise GrokscopeError(f"the analysis in {run.paths.root} is incomplete or corrupt ({e}); re-run grokscope analyze") from None
    primary, *extensions = stored.families
    intro, sections, notes = primary.page(run, stored, progress)  # a failure here is a bug, and shows as one
    for family in extensions:
        sections = sections + family.sections(run, stored, progress)
    body = [_not_computed(run, stored)]
    for i, (title, caption, build) in enumerate(sections):
        body.append(f"<h2>{html.escape(title)}</h2>")
        if title in notes:
            body.append(f'<p class="na">{html.escape(notes[title])}</p>')
        try:
            fig = build()
        except figures.NotApplicable as e:
            body.append(f'<p class="na">{html.escape(str(e))}</p>')
            continue
        body.append(f'<p class="caption">{html.escape(caption)}</p>')
        body.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{i}",
                                config={"displaylogo": False, "responsive": True}))
        if title == "Ablations":
            rows = figures.ablation_rows(stored.primary)
            body.append("<table><tr><th>ablation</th><th>loss (all pairs)</th></tr>" + "".join(
                f"<tr><td>{html.escape(a)}</td><td>{b}</td></tr>" for a, b in rows) + "</table>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>grokscope report: {html.escape(str(run.paths.root.name))}</title>
<style>{STYLE}</style><script type="text/javascript">{get_plotlyjs()}</script></head>
<body>
<h1>Grokking report: {html.escape(str(run.paths.root.name))}</h1>
{intro}
{''.join(body)}
<p class="caption">Made by grokscope from {html.escape(str(run.paths.root))}: config.json, metrics.parquet,
progress.parquet and analysis.json{' and analysis.safetensors' if (run.paths.root / 'analysis.safetensors').is_file() else ''}.
plotly.js is embedded; the page needs no network.</p>
</body></html>
"""
    path = Path(out) if out is not None else run.paths.root / "report.html"
    atomic_write_text(path, page)
    return path


def _not_computed(run: Run, stored: registry.StoredAnalysis) -> str:
    """A line naming the optional analyses that apply to this run but were not asked for."""
    skipped = [f for f in registry.all_families()
               if f.optional and f.applies_to(run.config) and f.name not in stored.extensions]
    if not skipped:
        return ""
    items = "; ".join(f"{html.escape(f.name)} ({html.escape((f.__doc__ or '').strip().splitlines()[0])}): "
                      f"<code>grokscope analyze {html.escape(str(run.paths.root))} --with {html.escape(f.name)}</code>"
                      for f in skipped)
    return f'<p class="na">Not computed for this run, being optional and slower than the rest: {items}.</p>'


def modular_page(run: Run, analysis: ModularAnalysis, progress: pd.DataFrame) -> tuple[str, list, dict[str, str]]:
    """The Fourier-multiplication story: intro (story, verdict, phases, facts), sections and notes."""
    arrays = figures.load_arrays(run.paths.root / "analysis.safetensors")
    metrics = run.metrics
    labels = list(FourierBasis(run.config.task.p).labels)
    sign = "+" if analysis.sign > 0 else "−"
    u, v = analysis.wave_axes
    # a non-bijective pow_sum: the neurons' terms and the logits' waves run over the values (u, v), not (x, y)
    over_values = (u, v) not in (("x", "y"), ("u", "v"))
    neuron_basis = (f"fitted by least squares to the terms of each frequency over the values ({u}, {v})" if over_values
                    else "written in the 2-D Fourier basis")
    spectrum = ("(over x and y, not the values the task adds, so it need not be sparse here)" if over_values
                else "— only products of the same frequency survive")
    sections: list[registry.Section] = [
        ("Memorisation, then grokking",
         "Train loss collapses within a few hundred epochs while test loss rises: the model memorises. "
         "Test loss falls long after train loss — grokking. Shaded: the phases located by the analysis; dashed: the grokking epoch.",
         lambda: figures.training_curves(metrics, analysis.grokking_epoch, analysis.phases)),
        ("Progress measures",
         "Excluded loss (train loss with the key frequencies' directions removed from the logits) rises as the model "
         "comes to rely on them, well before test loss moves; restricted loss (only those directions kept) falls "
         "on train and test alike. Weight decay shrinks the weights as the memorising circuit is cleaned up.",
         lambda: figures.progress_measures(progress, analysis)),
        ("The embedding becomes sparse in the Fourier basis",
         "Norm of W_E along cos and sin of each frequency. A few frequencies (red: the key ones) take over during training.",
         lambda: figures.embedding_norms(analysis, progress)),
        ("Neurons cluster by frequency",
         f"Each MLP neuron's activation over all (x, y) pairs, {neuron_basis}: most of its variance "
         "comes from the terms of one frequency. Neurons whose best frequency explains at least 85% form its cluster.",
         lambda: figures.neuron_clusters(analysis)),
        ("What a neuron computes",
         "The best-explained neuron of each key cluster over the (x, y) grid, next to its approximation from its own "
         "frequency's terms alone: the pictures match.",
         lambda: figures.neuron_examples(analysis, arrays)),
        (f"The logits are cos(w({u} {sign} {v} − z))",
         f"Left: the centred logits in the 2-D Fourier basis over (x, y) {spectrum}. "
         "Right: the share of the logits' variance each frequency's wave explains.",
         lambda: figures.logit_structure(analysis, arrays, labels)),
        ("The embedding puts each number on circles",
         "W_E projected on the cos and sin directions of each key frequency k: the p numbers sit on a circle, "
         "in the order x·k mod p (colour).",
         lambda: figures.embedding_circles(analysis, arrays)),
        ("Attention from '='",
         "How much '=' attends to x (rather than y or itself) for every pair: smooth periodic patterns, not a lookup table.",
         lambda: figures.attention_patterns(arrays)),
        ("Ablations",
         "Loss over all pairs after mean-ablating the k most important neurons (importance: the loss increase when "
         "that neuron alone is mean-ablated). Dashed: no ablation. Dotted: every neuron replaced by its "
         "single-frequency approximation, which the paper found leaves the loss unchanged.",
         lambda: figures.ablation_curve(analysis)),
    ]
    mechanism = {"What a neuron computes", "The embedding puts each number on circles", sections[5][0]}
    at = lambda epoch: f"epoch {epoch:,}" if epoch is not None else "not reached"  # noqa: E731
    rise = analysis.coordinates.marginal_rise
    if rise is not None:
        sections.insert(3, (
            f"What {'x' if rise.averaged_over == 'y' else 'y'} alone predicts comes first",
            f"The logits' mean over {rise.averaged_over}: all that the other input alone can predict, the distribution "
            f"of the averaged power's values shifted by its own. Its waves cos(w(k)({rise.waves})), summed per coset of "
            f"the averaged power's values (largest wave mean first), over training. Here they reached half their peak "
            f"by epoch {rise.epoch:,} (grokking: {at(analysis.grokking_epoch)}), led by the coset {rise.leading}·G.",
            lambda: figures.marginal_waves(analysis, progress)))
    notes = {}
    if not analysis.verdict.implements_fourier_multiplication:
        notes = {t: "The verdict is negative: the caption describes what a model implementing Fourier "
                    "multiplication shows. Read this figure for how far this model is from it." for t in mechanism}
    ph = analysis.phases
    intro = f"""<p>{html.escape(_story(run, analysis))}</p>
{_verdict_html(analysis)}
<p>Phases: memorisation ends at {at(ph.memorisation_end)}, circuit formation at {at(ph.circuit_formation_end)},
clean-up at {at(ph.cleanup_end)} ("not reached": still under way when training stopped; rules in <code>analysis.json</code>).</p>
{_facts(run, analysis)}"""
    return intro, sections, notes


def sequence_page(run: Run, analysis: SequenceAnalysis, progress: pd.DataFrame) -> tuple[str, list, dict[str, str]]:
    """Phase changes and attention heads of a sequence-task run."""
    findings = "".join(f"<li>{html.escape(line)}</li>" for line in analysis.findings)
    c = run.config
    facts = [("task", f"{c.task.kind}: " + ", ".join(f"{k} {v}" for k, v in c.task.to_dict().items() if k != "name")),
             ("model", c.model.summary()),
             ("training", f"{c.train.kind}, AdamW lr {c.train.lr:g}, weight decay {c.train.weight_decay:g}, "
                          f"{run.summary['final_epoch']:,} epochs, seed {c.train.seed}"),
             ("phase-change rule", analysis.phase_change_rule)]
    intro = (f'<div class="verdict yes"><b>{html.escape(analysis.headline)}.</b><ul>{findings}</ul></div>'
             + _facts_table(facts))
    return intro, sequence.sections(run, analysis, run.metrics, progress), {}

