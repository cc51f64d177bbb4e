"""Ablations of MLP neurons, computed exactly from grid activations through ``W_L = W_out W_U``.

A neuron's contribution to the logits is linear after its activation, so editing neuron
activations ``[x, y, neuron]`` and adding ``delta @ W_L`` to the logits is the same as
re-running the model with the edit (tests check this against a hooked forward).
Losses are mean cross-entropy over all p*p pairs unless a mask is given.
"""

from __future__ import annotations

import torch

from grokscope.analysis.grid_terms import GridTerms
from grokscope.analysis.modular_records import AblationResults
from grokscope.analysis.progress import grid_loss


def edited_logits(logits: torch.Tensor, neurons: torch.Tensor, edited: torch.Tensor, W_L_: torch.Tensor) -> torch.Tensor:
    """Logits [x, y, z] after replacing neuron activations ``neurons`` by ``edited`` (both [x, y, neuron])."""
    return logits + (edited - neurons) @ W_L_


def neuron_importance(logits, labels, neurons, W_L_, chunk: int = 64) -> torch.Tensor:
    """Importance of each neuron: increase of the all-pairs loss when it is mean-ablated
    (its activation replaced by its mean over the grid): [neuron] float64."""
    base = grid_loss(logits, labels)
    means = neurons.mean((0, 1))  # [neuron]
    delta = means - neurons  # [x, y, neuron]
    out = []
    for start in range(0, neurons.shape[-1], chunk):
        idx = torch.arange(start, min(start + chunk, neurons.shape[-1]))
        ablated = logits[None] + delta[..., idx].permute(2, 0, 1)[..., None] * W_L_[idx][:, None, None, :]
        log_probs = ablated.log_softmax(-1)
        nll = -log_probs.gather(-1, labels[None, ..., None].expand(len(idx), -1, -1, 1))[..., 0]
        out.append(nll.mean((1, 2)) - base)
    return torch.cat(out)


def run_ablations(terms: GridTerms, logits, labels, neurons, W_L_, frequency_of_neuron, clustered,
                  key_frequencies: list[int]) -> AblationResults:
    """Every ablation of ``AblationResults`` for one model's grid activations (a frequency's
    terms as ``terms`` defines them)."""
    base = grid_loss(logits, labels)
    importance = neuron_importance(logits, labels, neurons, W_L_)
    order = importance.argsort(descending=True)
    means = neurons.mean((0, 1))

    def mean_ablated(idx: torch.Tensor) -> float:
        edited = neurons.clone()
        edited[..., idx] = means[idx]
        return grid_loss(edited_logits(logits, neurons, edited, W_L_), labels)

    n = neurons.shape[-1]
    ks = sorted({min(2 ** i, n) for i in range(n.bit_length() + 1)})
    top_k = [(k, mean_ablated(order[:k])) for k in ks]
    clusters = {k: mean_ablated(torch.nonzero(clustered & (frequency_of_neuron == k))[:, 0]) for k in key_frequencies}

    directions = {k: grid_loss(edited_logits(logits, neurons, terms.without(neurons, k), W_L_), labels)
                  for k in key_frequencies}
    approx = terms.single_frequency(neurons, frequency_of_neuron)
    clustered_approx = torch.where(clustered, approx, neurons)
    return AblationResults(
        mode="mean",
        base_loss=base,
        importance=importance.tolist(),
        top_k=top_k,
        clusters=clusters,
        frequency_directions=directions,
        single_frequency_approximation=grid_loss(edited_logits(logits, neurons, approx, W_L_), labels),
        clustered_single_frequency_approximation=grid_loss(edited_logits(logits, neurons, clustered_approx, W_L_), labels),
    )
