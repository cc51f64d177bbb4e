"""Combine the three key-frequency methods into one declared set, and report where they disagree."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from grokscope.analysis.frequencies import LogitFit, NeuronClusters

EMBEDDING_RULE = "embedding: frequencies holding >= max(5%, 2/n_freq) of W_E's non-constant Fourier energy"
NEURON_RULE = "neurons: clusters of >= max(2, 1% of d_mlp) neurons whose best frequency explains >= 85% of their variance"
LOGIT_RULE = "logits: frequencies whose cos(w(x+sy-z)) wave explains >= 0.5/n_freq of the centred logits' variance"
COMBINED_RULE = "key frequencies: named by more than half of the available methods (embedding, neurons, logits)"


def embedding_keys(norms: torch.Tensor) -> list[int]:
    """Frequencies (1-based) whose share of the embedding's Fourier energy passes the embedding rule."""
    energy = norms.pow(2)
    share = energy / energy.sum().clamp_min(1e-300)
    threshold = max(0.05, 2 / len(norms))
    return [k + 1 for k in range(len(norms)) if share[k] >= threshold]


def neuron_keys(clusters: NeuronClusters) -> list[int]:
    """Frequencies with a large enough cluster of well-explained neurons."""
    minimum = max(2, round(0.01 * len(clusters.fve)))
    return sorted(k for k, size in clusters.sizes().items() if size >= minimum)


def logit_keys(fit: LogitFit) -> list[int]:
    """Frequencies whose logit wave explains enough of the logits' variance."""
    threshold = 0.5 / len(fit.share)
    return [k + 1 for k in range(len(fit.share)) if fit.share[k] >= threshold]


@dataclass(frozen=True)
class KeyFrequencies:
    """The declared key set, each method's set, and the disagreements in words."""

    key: list[int]
    by_method: dict[str, list[int]]
    rules: dict[str, str] = field(default_factory=dict)
    disagreements: list[str] = field(default_factory=list)


def combine_key_frequencies(by_method: dict[str, list[int]]) -> KeyFrequencies:
    """Key = frequencies named by more than half of the methods given; each other named
    frequency is listed with the methods that name it."""
    rules = {"embedding": EMBEDDING_RULE, "neurons": NEURON_RULE, "logits": LOGIT_RULE, "combined": COMBINED_RULE}
    return combine_votes(by_method, rules, lambda k: f"frequency {k}")


def combine_votes(by_method: dict[str, list], rules: dict[str, str], label) -> KeyFrequencies:
    """The majority vote of several methods over sortable items (frequencies, irrep indices):
    the items named by more than half of the methods, each method's rule from ``rules`` (and
    the ``combined`` one), and every other named item with the methods that name it
    (``label(item)`` names it in words)."""
    methods = list(by_method)
    named = sorted(set().union(*map(set, by_method.values())))
    votes = {k: [m for m in methods if k in by_method[m]] for k in named}
    key = [k for k in named if 2 * len(votes[k]) > len(methods)]
    disagreements = [
        f"{label(k)}: named by {', '.join(votes[k])}, not by {', '.join(m for m in methods if m not in votes[k])}"
        for k in named if len(votes[k]) < len(methods)
    ]
    return KeyFrequencies(key=key, by_method=by_method,
                          rules={m: rules[m] for m in methods + ["combined"]}, disagreements=disagreements)
