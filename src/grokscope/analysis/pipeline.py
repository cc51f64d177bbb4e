"""The modular-arithmetic analysis family: everything ``grokscope analyze`` computes for a modular run.

Its results: ``RUN/progress.parquet`` (one row per checkpoint), ``RUN/analysis.json`` and the
figures' arrays in ``RUN/analysis.safetensors`` (written by ``analysis/registry.py``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
import torch

from grokscope.analysis import ablation, circuits, dynamics, keys, verdict
from grokscope.analysis.activations import GridActivations, grid_activations, grid_shape_check, number_embedding
from grokscope.analysis.fourier import FourierBasis, fourier_2d
from grokscope.analysis.modular_records import (
    Coordinates, FinalMeasures, LabelStatistics, MarginalRise, ModularAnalysis, NeuronExample, NeuronSummary, PowerCosets,
    ValueWaves,
)
from grokscope.analysis.frequencies import embedding_frequency_norms, logit_frequency_fit
from grokscope.analysis.progress import (
    excluded_loss, gini, grid_loss, restricted_loss, softmax_collapse_fraction,
)
from grokscope.analysis.registry import AnalysisFamily, Computed, register
from grokscope.analysis.grid_terms import GridTerms, grid_terms
from grokscope.analysis.value_grid import power_cosets, value_grid
from grokscope.analysis.value_waves import select_waves
from grokscope.errors import GrokscopeError
from grokscope.runs import Run
from grokscope.tasks.modular import is_prime, power_values
from grokscope.training.loss import accuracy

FORMAT = "grokscope.analysis/1"
CLUSTER_THRESHOLD = 0.85
SIGNS = {"add": 1, "sub": -1}


def task_sign(run: Run) -> int:
    """+1 if the task's answer is a function of x + y, -1 for x - y; other ops are tested against x + y."""
    return SIGNS.get(run.config.task.op, 1)


def weight_norms(model) -> dict[str, float]:
    """Sum of squared weights, total and per matrix name (summed over layers)."""
    out: dict[str, float] = {}
    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("W_"):
            out[f"ssw_{leaf}"] = out.get(f"ssw_{leaf}", 0.0) + float(param.detach().double().pow(2).sum())
    out["ssw_total"] = float(sum(p.detach().double().pow(2).sum() for p in model.parameters()))
    return out


def neuron_restricted_losses(terms: GridTerms, acts: GridActivations, model, freqs: list[int]) -> tuple[float, float]:
    """Train and test loss with every neuron restricted to the key frequencies' 2-D terms."""
    mlp, unembed = model.final_mlp, model.unembed
    restricted = terms.restrict(acts.neurons, freqs)
    logits = circuits.logits_from_neurons(acts.resid_mid, restricted, mlp.W_out.detach(), mlp.b_out.detach(),
                                          unembed.W_U.detach(), unembed.b_U.detach())
    return grid_loss(logits, acts.labels, acts.train_mask), grid_loss(logits, acts.labels, ~acts.train_mask)


def progress_row(basis: FourierBasis, terms: GridTerms, model, W_E, acts: GridActivations, freqs: list[int],
                 sign: int) -> dict[str, float]:
    """Every progress measure of one checkpoint (W_E: the numbers' rows in the natural order;
    ``terms``: the grid's frequency terms and the waves' argument)."""
    logits, labels, train = acts.logits, acts.labels, acts.train_mask
    phase = terms.phase()
    embed_norms = embedding_frequency_norms(basis, W_E)
    row = {
        "train_loss": grid_loss(logits, labels, train), "test_loss": grid_loss(logits, labels, ~train),
        "train_acc": accuracy(logits[train], labels[train]), "test_acc": accuracy(logits[~train], labels[~train]),
        "excluded_loss_train": excluded_loss(logits, labels, train, freqs, sign, phase),
        "restricted_loss_train": restricted_loss(logits, labels, train, freqs, sign, phase),
        "restricted_loss_test": restricted_loss(logits, labels, ~train, freqs, sign, phase),
        "embed_fourier_gini": gini(embed_norms),
        "softmax_collapse_train": softmax_collapse_fraction(logits[train], labels[train]),
        **weight_norms(model),
        **terms.progress_measures(logits),
    }
    for k in freqs:
        row[f"excluded_loss_train_k{k}"] = excluded_loss(logits, labels, train, [k], sign, phase)
    for k in basis.frequencies:
        row[f"embed_norm_k{k}"] = float(embed_norms[k - 1])
    if acts.neurons is not None:
        row["restricted_neuron_loss_train"], row["restricted_neuron_loss_test"] = \
            neuron_restricted_losses(terms, acts, model, freqs)
    return row


def progress_rows(run: Run, epochs: list[int], freqs: list[int], sign: int, on_checkpoint=None) -> list[dict]:
    """One progress row per checkpoint (``on_checkpoint(done, total)`` after each).

    One process: two worker processes measured slower on this 2-core machine (0.33-0.9x,
    ``benchmarks/bench_analysis.py``); the work is memory-bound.
    """
    basis, terms, split = FourierBasis(run.config.task.p), grid_terms(run.task), run.task.split()
    rows: list[dict] = []
    for epoch in epochs:
        model = run.model(epoch)
        acts = grid_activations(model, run.task, split.train)
        rows.append({"epoch": epoch, **progress_row(basis, terms, model, number_embedding(model, run.task), acts, freqs, sign)})
        if on_checkpoint is not None:
            on_checkpoint(len(rows), len(epochs))
    return rows


def final_key_frequencies(basis: FourierBasis, terms: GridTerms, W_E, acts: GridActivations, sign: int):
    """Key frequencies of the final model by every available method, and the combined set (the
    logits' waves and the neurons' terms as ``terms`` defines them)."""
    emb = embedding_frequency_norms(basis, W_E)
    fit = logit_frequency_fit(acts.logits, sign, terms.phase())
    by_method = {"embedding": keys.embedding_keys(emb), "logits": keys.logit_keys(fit)}
    clusters = None
    if acts.neurons is not None:
        clusters = terms.neuron_clusters(acts.neurons, CLUSTER_THRESHOLD)
        by_method = {"embedding": by_method["embedding"], "neurons": keys.neuron_keys(clusters),
                     "logits": by_method["logits"]}
    return keys.combine_key_frequencies(by_method), emb, fit, clusters


def figure_arrays(basis: FourierBasis, terms: GridTerms, W_E, acts: GridActivations, freqs: list[int], clusters,
                  pcs) -> dict:
    """Grids the report draws (no maths left for it): example neurons and their single-frequency
    approximations, the logits' 2-D spectrum, the embedding circles, attention over the grid."""
    p = basis.p
    arrays: dict = {"embedding_pcs": pcs.float()}
    centred = acts.logits - acts.logits.mean(-1, keepdim=True)
    arrays["logits_spectrum_2d"] = fourier_2d(basis, centred).norm(dim=-1).float()  # [basis, basis]
    if acts.pattern is not None:
        arrays["attention_to_x"] = acts.pattern[..., 0].permute(2, 0, 1).float()  # [head, x, y]
        arrays["attention_to_y"] = acts.pattern[..., 1].permute(2, 0, 1).float()
    if freqs:
        arrays["embedding_circles"] = torch.stack(
            [circuits.embedding_circle(basis, W_E, k)[:, :2] if len(basis.rows(k)) == 2
             else torch.zeros(p, 2, dtype=torch.float64) for k in freqs]).float()  # [key, p, 2]
    meta = []
    if clusters is not None:
        ids = []
        for k in freqs:  # the best-explained neuron of each key cluster
            members = torch.nonzero(clusters.clustered & (clusters.frequency == k))[:, 0]
            if len(members):
                ids.append(int(members[clusters.fve[members].argmax()]))
        if ids:
            index = torch.tensor(ids)
            approx = terms.single_frequency(acts.neurons[..., index], clusters.frequency[index])
            arrays["neuron_examples"] = acts.neurons[..., index].permute(2, 0, 1).float()  # [example, x, y]
            arrays["neuron_examples_approx"] = approx.permute(2, 0, 1).float()
            meta = [NeuronExample(neuron=i, frequency=int(clusters.frequency[i]), fve=float(clusters.fve[i])) for i in ids]
    return {**arrays, "neuron_example_meta": meta}


VALUE_WAVE_FVE = 0.9  # W_E must be this much a function of a coordinate for its wave count to compare


def marginal_rise(grid, progress: pd.DataFrame, axes: tuple[str, str]) -> MarginalRise | None:
    """When the logits' mean over one input took up its waves (``ValueGrid.progress_measures``'
    columns in ``progress``), by coset; None where the grid has no such columns."""
    columns = [c for c in progress.columns if c.startswith("marginal_wave_coset")]
    sided = grid.one_sided()
    if not columns or sided is None:
        return None
    norms = progress[columns].to_numpy()  # [checkpoint, coset]
    total = (norms ** 2).sum(1) ** 0.5
    first = int((total >= total.max() / 2).argmax())
    averaged, kept = ("y", axes[0]) if sided[0] == "x" else ("x", axes[1])
    cosets = [int(c.removeprefix("marginal_wave_coset")) for c in columns]
    return MarginalRise(averaged_over=averaged, waves=f"{kept} - z", epoch=int(progress["epoch"].iloc[first]),
                        peak_epoch=int(progress["epoch"].iloc[int(total.argmax())]), cosets=cosets,
                        norms=norms[first].tolist(), leading=cosets[int(norms[first].argmax())])


def coordinates_note(task, basis: FourierBasis, model, natural_norms: torch.Tensor, freqs: list[int],
                     progress: pd.DataFrame) -> Coordinates:
    """Which coordinates the analysis used, and how sparse W_E is in the Fourier basis over x
    and over the natural coordinate. ``natural_norms``: W_E's frequency norms in the analysis's
    coordinates, already computed; ``freqs``: the key frequencies (for a non-bijective power,
    which of them are its values' own: e-th powers); ``progress``: the progress table (for a
    non-bijective power, when the logits' mean over one input took up its waves)."""
    c = task.config
    raw = gini(embedding_frequency_norms(basis, model.W_E.detach()[: basis.p]))
    if task.natural_coordinates() is not None:
        natural = gini(natural_norms)
        return Coordinates(axes=("u", "v"), basis=f"u = x^{c.a} mod {c.p}, v = y^{c.b} mod {c.p} (the task is z = u + v)",
                           embedding_gini_x=raw, embedding_gini_u=natural, sparser="u" if natural > raw else "x",
                           wave_axes=("u", "v"))
    grid = value_grid(task)
    if grid is None:
        return Coordinates(axes=("x", "y"), basis="x, y", embedding_gini_x=raw)
    W_E = model.W_E.detach()[: c.p]
    coordinates = [("t", torch.arange(c.p))] + [(f"t^{e}", power_values(c.p, e)) for e in sorted({c.a, c.b})]
    waves = [ValueWaves(coordinate=name, n_values=sel.n_values, fve=sel.fve, frequencies=sel.frequencies,
                        explained=sel.explained, needed=sel.needed)
             for name, values in coordinates for sel in [select_waves(W_E, values, c.p)]]
    counted = [w for w in waves if w.fve >= VALUE_WAVE_FVE and w.needed is not None]
    bijective = grid.bijective_power()
    over = "" if bijective is None else f"; W_E's Fourier norms over t^{c.a if bijective[0] == 'u' else c.b}"
    return Coordinates(axes=("x", "y"), embedding_gini_x=raw, value_waves=waves,
                       basis=f"x, y; waves over u = x^{c.a}, v = y^{c.b} mod {c.p} by least squares (a power is "
                             f"not a bijection){over}",
                       embedding_gini_u=None if bijective is None else gini(natural_norms),
                       sparser=min(counted, key=lambda w: w.needed).coordinate if counted else None,
                       wave_axes=(f"x^{c.a}", f"y^{c.b}"),
                       marginal_rise=marginal_rise(grid, progress, (f"x^{c.a}", f"y^{c.b}")),
                       power_cosets=[PowerCosets(coordinate=f"t^{e}", subgroup_size=size, cosets=cosets)
                                     for e in sorted({c.a, c.b}) if math.gcd(e, c.p - 1) > 1 and is_prime(c.p)
                                     for size, cosets in [power_cosets(c.p, e, freqs)]])


def coordinate_findings(note: Coordinates) -> list[str]:
    """A line saying in which coordinates the analysis ran, when they are not x and y, or how W_E
    fits waves over a non-bijective power's values."""
    if note.value_waves:
        fits = "; ".join(f"over {w.coordinate} ({w.n_values} values; a function of them explains {w.fve:.1%}): "
                         f"{w.needed if w.needed is not None else 'no number of'} frequencies for 90 %"
                         for w in note.value_waves)
        images = [f"note: key frequencies by coset of ±({i.coordinate}'s values) in the non-zero residues ({len(i.cosets)} "
                  f"cosets of {i.subgroup_size}; largest mean of the wave exp(2 pi i k {i.coordinate} / p) over t first): "
                  + "; ".join(f"{c.least}·G (mean {c.wave_mean:.3f}): {c.keys}" for c in i.cosets)
                  for i in note.power_cosets]
        rise = note.marginal_rise
        shortcut = [] if rise is None else [
            f"note: the logits' mean over {rise.averaged_over} (what the other input alone predicts) took up waves "
            f"cos(w(k)({rise.waves})) first: half its peak by epoch {rise.epoch:,} (peak {rise.peak_epoch:,}), then by coset "
            + ", ".join(f"{c}·G {n:.3g}" for c, n in zip(rise.cosets, rise.norms)) + f" (largest wave mean first); "
            f"leading {rise.leading}·G"]
        return [f"note: W_E as least-squares waves (greedy): {fits}; sparser over {note.sparser or 'neither'}"] + images + shortcut
    if note.axes == ("x", "y"):
        return []
    return [f"note: analysed in the task's natural coordinates {note.basis}; W_E's Fourier norms are "
            f"sparser over {note.sparser} (Gini over u {note.embedding_gini_u:.2f}, over x {note.embedding_gini_x:.2f})"]


def neuron_summary(clusters) -> NeuronSummary:
    """The clusters of ``frequencies.neuron_clusters`` as stored."""
    return NeuronSummary(threshold=CLUSTER_THRESHOLD, frequency=clusters.frequency.tolist(), fve=clusters.fve.tolist(),
                         cluster_sizes=clusters.sizes())


def final_measures(final: dict[str, float], fit, acts: GridActivations, clusters, freqs: list[int]) -> FinalMeasures:
    """The last checkpoint's measures: its progress row ``final``, the logit fit's and the clusters'."""
    approx = fit.approximation(freqs)
    in_key = None if clusters is None else clusters.clustered & torch.isin(clusters.frequency, torch.tensor(freqs, dtype=torch.long))
    return FinalMeasures(
        train_loss=final["train_loss"], test_loss=final["test_loss"],
        train_acc=final["train_acc"], test_acc=final["test_acc"],
        restricted_loss_train=final["restricted_loss_train"], restricted_loss_test=final["restricted_loss_test"],
        excluded_loss_train=final["excluded_loss_train"],
        logit_fve=fit.fve(freqs),
        logit_fit_loss=grid_loss(approx, acts.labels),
        logit_fit_loss_test=grid_loss(approx, acts.labels, ~acts.train_mask),
        neuron_fve_mean=None if clusters is None else float(clusters.fve.mean()),
        frac_neurons_clustered=None if clusters is None else float(clusters.clustered.double().mean()),
        frac_neurons_in_key_clusters=None if in_key is None else float(in_key.double().mean()),
        restricted_neuron_loss_test=final.get("restricted_neuron_loss_test"),
    )


def analyze_modular_run(run: Run, on_checkpoint=None) -> Computed:
    """Reverse-engineer a modular-arithmetic run: the ``ModularAnalysis``, the progress table
    and the figures' arrays (``analysis/registry.py`` writes them)."""
    grid_shape_check(run.task)
    model_cfg = run.config.model
    if not (model_cfg.kind == "mlp" or (model_cfg.kind == "transformer" and model_cfg.n_layers == 1)):
        raise GrokscopeError("the Fourier analysis covers 1-layer transformers and 2-layer MLPs")
    t0 = time.perf_counter()
    basis = FourierBasis(run.config.task.p)
    sign = task_sign(run)
    terms = grid_terms(run.task)
    split = run.task.split()
    epochs = run.checkpoint_epochs

    final_model = run.model(epochs[-1])
    final_acts = grid_activations(final_model, run.task, split.train)
    W_E = number_embedding(final_model, run.task)
    found, emb_norms, fit, clusters = final_key_frequencies(basis, terms, W_E, final_acts, sign)
    freqs = found.key

    rows = progress_rows(run, epochs[:-1], freqs, sign,  # the last checkpoint's activations are at hand
                         lambda done, total: on_checkpoint(done, len(epochs)) if on_checkpoint else None)
    rows.append({"epoch": epochs[-1], **progress_row(basis, terms, final_model, W_E, final_acts, freqs, sign)})
    if on_checkpoint is not None:
        on_checkpoint(len(rows), len(epochs))
    progress = pd.DataFrame(rows)

    mlp = final_model.final_mlp
    W_L_ = None if mlp is None else circuits.W_L(mlp.W_out.detach(), final_model.unembed.W_U.detach())
    pcs, ratio = circuits.embedding_pca(W_E)
    arrays = figure_arrays(basis, terms, W_E, final_acts, freqs, clusters, pcs)
    examples = arrays.pop("neuron_example_meta")
    coordinates = coordinates_note(run.task, basis, final_model, emb_norms, freqs, progress)
    final = final_measures(rows[-1], fit, final_acts, clusters, freqs)
    dyn = dynamics.locate_phases(run.metrics, progress, run.config.train.grok_threshold)
    v = verdict.decide(final, freqs, basis.p, sign, coordinates.wave_axes)
    result = ModularAnalysis(
        format=FORMAT, epoch=epochs[-1], sign=sign,
        key_frequencies=freqs, key_frequency_rule=found.rules["combined"], key_frequency_rules=found.rules,
        key_frequencies_by_method=found.by_method, key_frequency_disagreements=found.disagreements,
        embedding_frequency_norms=emb_norms.tolist(),
        logit_frequency_share=fit.share.tolist(), logit_frequency_alpha=fit.alpha.tolist(),
        coordinates=coordinates,
        label_statistics=LabelStatistics(**run.task.label_statistics()),
        neurons=None if clusters is None else neuron_summary(clusters),
        W_L_frequency_norms=None if W_L_ is None else circuits.W_L_frequency_norms(basis, W_L_).tolist(),
        attention=None if final_acts.pattern is None else circuits.attention_summary(basis, final_acts.pattern),
        embedding_pca_variance_ratio=ratio.tolist(),
        neuron_examples=examples,
        grokking_epoch=dyn.grokking_epoch, phases=dyn.phases, phase_rules=dyn.rules,
        final=final,
        ablations=None if mlp is None else ablation.run_ablations(
            terms, final_acts.logits, final_acts.labels, final_acts.neurons, W_L_, clusters.frequency,
            clusters.clustered, freqs),
        verdict=v,
        headline=verdict.headline(v, dyn.grokking_epoch, dyn.phases),
        findings=v.reasons + coordinate_findings(coordinates),
        seconds=time.perf_counter() - t0,
    )
    return Computed(result=result, progress=progress, arrays=arrays)


@register
class ModularFourier(AnalysisFamily):
    """Nanda et al.'s reverse-engineering of modular arithmetic: key frequencies, neuron
    clusters, the cos(w(x+y-z)) logits, progress measures, phases, ablations and a verdict."""

    name = "modular"
    record = ModularAnalysis
    primary = True
    format = FORMAT

    def applies_to(self, config) -> bool:
        return config.task.kind == "modular"

    def compute(self, run, prior, on_checkpoint=None) -> Computed:
        return analyze_modular_run(run, on_checkpoint)

    def page(self, run, analysis, progress):
        from grokscope.report.html import modular_page

        return modular_page(run, analysis.primary, progress)

    def summary_row(self, analysis) -> dict[str, Any]:
        a: ModularAnalysis = analysis.primary
        return {"key_frequencies": " ".join(map(str, a.key_frequencies)), "logit_fve": a.final.logit_fve,
                "implements_fourier_multiplication": a.verdict.implements_fourier_multiplication}
