"""Activations of a modular-arithmetic model at the ``=`` position over the full (x, y) grid.

Axes: ``x`` and ``y`` run over 0..p-1 (grid order = the task's enumeration, x-major), or, for
``pow_sum`` with bijective powers, over its natural coordinates u = x^a and v = y^b;
``z`` over the p outputs; ``neuron`` over d_mlp; ``head``; ``key`` over the 3 positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokscope.analysis.value_grid import value_grid
from grokscope.errors import GrokscopeError
from grokscope.tasks.modular import ModularTask

@dataclass(frozen=True)
class GridActivations:
    """What the analyses read, each over the full grid, at the ``=`` position."""

    logits: torch.Tensor  # [x, y, z] float64
    labels: torch.Tensor  # [x, y] int64
    train_mask: torch.Tensor  # [x, y] bool: the pair is in the training set
    neurons: torch.Tensor | None  # [x, y, neuron] float64, MLP hook_post of the last block (None if attn-only)
    resid_mid: torch.Tensor | None  # [x, y, d_model] float64, residual before the MLP (None if attn-only; 0 for an MLP)
    pattern: torch.Tensor | None  # [x, y, head, key] float64, attention from '=' to each position (None for an MLP)


def grid_shape_check(task) -> None:
    """Fourier analyses need every (x, y) pair of a modular task."""
    if not isinstance(task, ModularTask):
        raise GrokscopeError(f"Fourier analysis is for modular tasks; this run's task is {task.config.kind}")
    if task.config.op == "div":
        raise GrokscopeError("Fourier analysis needs every (x, y) pair; op=div leaves out y = 0")


@torch.no_grad()
def grid_activations(model, task: ModularTask, train_indices: torch.Tensor) -> GridActivations:
    """Run ``model`` on every pair once and collect logits, neurons and attention at ``=``
    (``pair_grid_activations``), in the task's natural coordinates."""
    grid_shape_check(task)
    acts = pair_grid_activations(model, task.dataset(), task.config.p, train_indices)
    coordinates = task.natural_coordinates()
    return acts if coordinates is None else reindexed(acts, *coordinates)


@torch.no_grad()
def pair_grid_activations(model, data, n: int, train_indices: torch.Tensor) -> GridActivations:
    """Logits, neurons and attention at ``=`` over a task's ``n x n`` pairs (its dataset
    enumerates them row-major, as modular and group tasks do).

    For a model without a residual stream before its neurons (the 2-layer MLP) ``resid_mid`` is
    zero, so ``logits = (resid_mid + neurons @ W_out + b_out) @ W_U + b_U`` holds for both kinds.
    """
    hooks = model.readout_hooks
    query = torch.tensor(data.target_positions[:1])  # the last block runs at '=' only
    logits, cache = model.run_with_cache(data.tokens, query, names_filter=[h for h in hooks.values() if h])
    q = 0  # index of '=' among the computed query positions
    mask = torch.zeros(n * n, dtype=torch.bool)
    mask[train_indices] = True
    neurons = cache[hooks["neurons"]][:, q].double().reshape(n, n, -1) if hooks["neurons"] else None
    if hooks["resid_mid"]:
        resid = cache[hooks["resid_mid"]][:, q].double().reshape(n, n, -1)
    else:
        resid = None if neurons is None else torch.zeros(n, n, model.cfg.d_model, dtype=torch.float64)
    pattern = None
    if hooks["pattern"]:
        full = cache[hooks["pattern"]]  # [batch, head, qpos, key]
        pattern = full[:, :, q, :].double().reshape(n, n, full.shape[1], -1)
    return GridActivations(
        logits=logits[:, q].double().reshape(n, n, -1),
        labels=data.labels[:, 0].reshape(n, n),
        train_mask=mask.reshape(n, n),
        neurons=neurons,
        resid_mid=resid,
        pattern=pattern,
    )


def reindexed(acts: GridActivations, x_of_u: torch.Tensor, y_of_v: torch.Tensor) -> GridActivations:
    """The same activations on the grid of (u, v): entry [u, v] is the pair (x_of_u[u], y_of_v[v])."""
    pick = lambda t: None if t is None else t[x_of_u][:, y_of_v]  # noqa: E731
    return GridActivations(logits=pick(acts.logits), labels=pick(acts.labels), train_mask=pick(acts.train_mask),
                           neurons=pick(acts.neurons), resid_mid=pick(acts.resid_mid), pattern=pick(acts.pattern))


def number_embedding(model, task: ModularTask) -> torch.Tensor:
    """The rows of ``W_E`` for the numbers, in the task's natural order (u = x^a for pow_sum with
    both powers bijective; for pow_sum with one, the order of that power's values; else x):
    [p, d_model]."""
    W_E = model.W_E.detach()[: task.config.p]
    coordinates = task.natural_coordinates()
    if coordinates is not None:
        return W_E[coordinates[0]]
    grid = value_grid(task)
    bijective = None if grid is None else grid.bijective_power()
    return W_E if bijective is None else W_E[bijective[1]]
