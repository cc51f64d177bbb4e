"""The group-composition analysis family (Chughtai et al. 2023): which irreducible
representations a model of ``a·b`` uses, the group counterpart of Nanda's Fourier pipeline.

Over every pair (a, b), at the ``=`` position (analysis/representations.py gives the irreps):

- the share of W_E's and W_U's energy in each irrep's matrix entries (rows and columns are
  the group's elements);
- each neuron's best irrep: the one whose terms (rho in a, in b, and rho(a) x rho(b)
  products) explain the most of its variance over the pairs;
- the logits fitted by ``sum_rho alpha_rho chi_rho(a·b·c^-1)`` (centred over c; the
  characters are orthogonal, so each alpha is a projection);
- the logits' "a·b terms" of an irrep: the logits averaged over the pairs with the same
  product g, projected on the irrep's span as functions of g, and read back at g = a·b.
  Restricted loss keeps only the key irreps' terms (and the constant), excluded loss removes
  them (Nanda et al.'s cos/sin(w(x+y)) directions, for a cyclic group).

The key representations are declared by three rules and a majority vote, as the key
frequencies are; for a cyclic group the rules are the same ones, so the two pipelines agree
on a run of ``cyclic:N`` (tests/test_groups.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from grokscope.analysis.activations import pair_grid_activations
from grokscope.training.loop import grokking_epoch
from grokscope.analysis.group_records import GroupAnalysis, GroupFinal, GroupVerdict, IrrepMeasures
from grokscope.analysis.keys import combine_votes
from grokscope.analysis.progress import grid_loss
from grokscope.analysis.registry import AnalysisFamily, Computed, register
from grokscope.analysis.representations import Representations
from grokscope.runs import Run
from grokscope.training.loss import accuracy

FORMAT = "grokscope.group-analysis/1"
CLUSTER_THRESHOLD = 0.85
RULES = {
    "embedding": "embedding: non-trivial irreps holding >= max(5%, 2/n) of W_E's non-trivial energy (n: non-trivial real irreps)",
    "neurons": "neurons: clusters of >= max(2, 1% of d_mlp) neurons whose best irrep's terms explain >= 85% of their variance",
    "logits": "logits: irreps whose chi(a·b·c^-1) explains >= 0.5/n of the centred logits' variance",
    "combined": "key representations: named by more than half of the available methods (embedding, neurons, logits)",
}


def nontrivial_shares(R: Representations, f: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Share of the non-constant energy of ``f`` (a function of the group along ``dim``) in
    each irrep: [irrep], 0 for the trivial one."""
    shares = R.shares(f, dim).clone()
    shares[0] = 0.0
    return shares / shares.sum().clamp_min(1e-300)


def product_average(R: Representations, logits: torch.Tensor) -> torch.Tensor:
    """The logits [a, b, c] averaged over the pairs with each product g = a·b: [g, c]
    (every g is the product of exactly |G| pairs)."""
    order = R.group.order
    flat = logits.double().reshape(order * order, -1)
    return torch.zeros(order, flat.shape[1], dtype=torch.float64).index_add_(0, R.group.table.flatten(), flat) / order


def product_terms(R: Representations, logits: torch.Tensor, irreps: list[int]) -> torch.Tensor:
    """The logits' a·b terms of ``irreps``: their projection on those irreps' span as a
    function of the product, read back at every pair: [a, b, c]."""
    M = product_average(R, logits)  # [g, c]
    terms = sum((R.projectors[i] @ M for i in irreps), torch.zeros_like(M))  # [g, c]
    return terms[R.group.table]


def character_fit(R: Representations, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``alpha_rho`` and its share of the centred logits' variance for every irrep, from the
    fit ``logits - mean_c ~ sum_rho alpha_rho chi_rho(a·b·c^-1)``: ([irrep], [irrep]); the
    trivial irrep's are 0. Uses ``sum_{a,b,c} L chi(a·b·c^-1) = |G| sum_{g,c} M[g, c] chi(g c^-1)``
    with M the product average, and ``|| chi(a·b·c^-1) ||^2 = |G|^2 sum_h chi(h)^2``."""
    g = R.group
    centred = logits.double() - logits.double().mean(-1, keepdim=True)
    M = product_average(R, centred)  # [g, c]
    g_cinv = g.table[:, g.inverse]  # [g, c]: g·c^-1
    total = centred.pow(2).sum().clamp_min(1e-300)
    alphas, shares = [0.0], [0.0]
    for r in R.irreps[1:]:
        chi = torch.from_numpy(r.character)
        norm2 = g.order ** 2 * float(chi.pow(2).sum())
        alpha = g.order * float((M * chi[g_cinv]).sum()) / norm2
        alphas.append(alpha)
        shares.append(alpha ** 2 * norm2 / float(total))
    return torch.tensor(alphas), torch.tensor(shares)


@dataclass(frozen=True)
class IrrepShares:
    """One checkpoint's share of each irrep, [irrep] each (0 for the trivial one)."""

    embed: torch.Tensor  # of W_E's non-trivial energy
    unembed: torch.Tensor  # of W_U's non-trivial energy
    alpha: torch.Tensor  # the character fit's coefficients
    logit: torch.Tensor  # of the centred logits' variance, by the character fit


def irrep_shares(R: Representations, model, acts) -> IrrepShares:
    """The per-irrep shares of a checkpoint's model and its activations over the pairs."""
    alpha, logit = character_fit(R, acts.logits)
    return IrrepShares(embed=nontrivial_shares(R, model.W_E.detach()[:R.group.order]),
                       unembed=nontrivial_shares(R, model.W_U.detach(), dim=1), alpha=alpha, logit=logit)


def _rule_keys(shares: torch.Tensor, threshold: float) -> list[int]:
    return [i for i in range(1, len(shares)) if shares[i] >= threshold]


def key_irreps(R: Representations, shares: IrrepShares, neurons: torch.Tensor | None) -> tuple[dict[str, list[int]], torch.Tensor]:
    """Each method's key irreps (indices), and how many neurons are clustered on each irrep
    ([irrep]; zeros without an MLP). ``neurons``: [a, b, neuron] activations or None."""
    n = len(R.irreps) - 1  # non-trivial irreps
    by_method = {"embedding": _rule_keys(shares.embed, max(0.05, 2 / n))}
    clustered = torch.zeros(len(R.irreps), dtype=torch.int64)
    if neurons is not None:
        fve, best = R.pair_shares(neurons).max(0)  # each neuron's best irrep, and the share of its variance
        clustered = torch.bincount(best[fve >= CLUSTER_THRESHOLD], minlength=len(R.irreps))
        minimum = max(2, round(0.01 * neurons.shape[-1]))
        by_method["neurons"] = [i for i in range(1, len(R.irreps)) if clustered[i] >= minimum]
    by_method["logits"] = _rule_keys(shares.logit, 0.5 / n)
    return by_method, clustered


def measures_row(R: Representations, shares: IrrepShares, acts, keys: list[int]) -> dict[str, float]:
    """One checkpoint's progress columns: per-irrep shares, and the key irreps' fit and losses."""
    row = {"train_loss": grid_loss(acts.logits, acts.labels, acts.train_mask),
           "test_loss": grid_loss(acts.logits, acts.labels, ~acts.train_mask),
           "character_fve": float(shares.logit[keys].sum()) if keys else 0.0,
           "restricted_loss_test": grid_loss(product_terms(R, acts.logits, [0, *keys]), acts.labels, ~acts.train_mask),
           "excluded_loss_train": grid_loss(acts.logits - product_terms(R, acts.logits, keys), acts.labels,
                                            acts.train_mask)}
    for i, r in enumerate(R.irreps[1:], start=1):
        row |= {f"embed_share_{r.name}": float(shares.embed[i]), f"unembed_share_{r.name}": float(shares.unembed[i]),
                f"logit_share_{r.name}": float(shares.logit[i])}
    return row


def decide(final: GroupFinal, keys: list[str], n_irreps: int) -> GroupVerdict:
    """The verdict, by the modular pipeline's criteria in representation terms: the model
    generalises; a sparse key set (1 to half of the non-trivial irreps); the key characters
    explain >= 70 % of the centred logits' variance; the key a·b terms alone give test loss
    <= 0.1; without them the train loss is >= 10x higher and >= 0.1."""
    checks = [
        (final.test_acc >= 0.99, f"final test accuracy is {final.test_acc:.1%} (needs >= 99%)"),
        (1 <= len(keys) <= max(1, (n_irreps - 1) // 2),
         f"{len(keys)} key representations {keys} (needs 1 to {max(1, (n_irreps - 1) // 2)} of {n_irreps - 1} non-trivial)"),
        (final.character_fve >= 0.7,
         f"the key characters chi(a·b·c^-1) explain {final.character_fve:.1%} of the logits' variance (needs >= 70%)"),
        (final.restricted_loss_test <= 0.1,
         f"restricted test loss is {final.restricted_loss_test:.3g} (needs <= 0.1; full test loss {final.test_loss:.3g})"),
        (final.excluded_loss_train >= max(10 * final.train_loss, 0.1),
         f"excluded train loss is {final.excluded_loss_train:.3g} vs train loss {final.train_loss:.3g} (needs >= 10x and >= 0.1)"),
    ]
    reasons = [("pass: " if ok else "fail: ") + text for ok, text in checks]
    if final.frac_neurons_in_key_clusters is not None:
        reasons.append(f"note: {final.frac_neurons_in_key_clusters:.1%} of neurons are clustered (FVE >= 0.85) on a key representation")
    return GroupVerdict(implements_composition=all(ok for ok, _ in checks), key_representations=keys, reasons=reasons)


def analyze_group_run(run: Run, on_checkpoint=None) -> Computed:
    t0 = time.perf_counter()
    task = run.task
    R = Representations.of(task.group)
    data, train = task.dataset(), task.split().train
    epochs = run.checkpoint_epochs
    final_model = run.model(epochs[-1])
    acts = pair_grid_activations(final_model, data, R.group.order, train)
    shares = irrep_shares(R, final_model, acts)
    by_method, clustered = key_irreps(R, shares, acts.neurons)
    names = [r.name for r in R.irreps]
    votes = combine_votes(by_method, RULES, lambda i: f"representation {names[i]}")
    keys = votes.key

    rows = []
    for done, epoch in enumerate(epochs, start=1):
        if epoch == epochs[-1]:
            at, at_shares = acts, shares
        else:
            model = run.model(epoch)
            at = pair_grid_activations(model, data, R.group.order, train)
            at_shares = irrep_shares(R, model, at)
        rows.append({"epoch": epoch, **measures_row(R, at_shares, at, keys)})
        if on_checkpoint is not None:
            on_checkpoint(done, len(epochs))
    progress = pd.DataFrame(rows)
    last = progress.iloc[-1]

    irreps = [IrrepMeasures(
        name=r.name, dim=r.dim, embed_share=float(shares.embed[i]), unembed_share=float(shares.unembed[i]),
        logit_share=float(shares.logit[i]), alpha=float(shares.alpha[i]), neurons=int(clustered[i]),
        restricted_loss_test=grid_loss(product_terms(R, acts.logits, [0, i]), acts.labels, ~acts.train_mask),
        excluded_loss_train=grid_loss(acts.logits - product_terms(R, acts.logits, [i]), acts.labels, acts.train_mask),
    ) for i, r in enumerate(R.irreps)]
    n_neurons = None if acts.neurons is None else acts.neurons.shape[-1]
    final = GroupFinal(
        train_loss=float(last["train_loss"]), test_loss=float(last["test_loss"]),
        train_acc=accuracy(acts.logits[acts.train_mask], acts.labels[acts.train_mask]),
        test_acc=accuracy(acts.logits[~acts.train_mask], acts.labels[~acts.train_mask]),
        character_fve=float(last["character_fve"]), restricted_loss_test=float(last["restricted_loss_test"]),
        excluded_loss_train=float(last["excluded_loss_train"]),
        frac_neurons_in_key_clusters=None if n_neurons is None else float(clustered[keys].sum()) / n_neurons,
    )
    key_names = [names[i] for i in keys]
    verdict = decide(final, key_names, len(R.irreps))
    grok = grokking_epoch(run.metrics.to_dict("records"), run.config.train.grok_threshold)
    yes = "implements" if verdict.implements_composition else "does not implement"
    headline = (f"verdict: {yes} composition in {task.config.group} through the representations {key_names}; "
                f"grokked at {grok}")
    result = GroupAnalysis(
        format=FORMAT, group=task.config.group, order=R.group.order, epoch=epochs[-1], irreps=irreps,
        key_representations=key_names,
        key_representations_by_method={m: [names[i] for i in v] for m, v in by_method.items()},
        key_representation_rules=votes.rules, key_representation_disagreements=votes.disagreements,
        final=final, grokking_epoch=grok, verdict=verdict, headline=headline, findings=verdict.reasons,
        seconds=time.perf_counter() - t0)
    return Computed(result=result, progress=progress)


@register
class GroupRepresentations(AnalysisFamily):
    """Chughtai et al.'s reverse-engineering of group composition: key irreducible
    representations, neuron clusters, the chi(a·b·c^-1) logits, restricted and excluded loss."""

    name = "group"
    record = GroupAnalysis
    primary = True
    format = FORMAT

    def applies_to(self, config) -> bool:
        return config.task.kind == "group"

    def compute(self, run, prior, on_checkpoint=None) -> Computed:
        return analyze_group_run(run, on_checkpoint)

    def page(self, run, analysis, progress):
        from grokscope.report.group import group_page

        return group_page(run, analysis.primary, progress)

    def summary_row(self, analysis) -> dict[str, Any]:
        a: GroupAnalysis = analysis.primary
        return {"key_representations": " ".join(a.key_representations), "character_fve": a.final.character_fve,
                "implements_composition": a.verdict.implements_composition}
