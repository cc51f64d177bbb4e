"""Activations of a modular-arithmetic model at the ``=`` position over the full (x, y) grid.

Axes: ``x`` and ``y`` run over 0..p-1 (grid order = the task's enumeration, x-major);
``z`` over the p outputs; ``neuron`` over d_mlp; ``head``; ``key`` over the 3 positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokscope.errors import GrokscopeError
from grokscope.tasks.modular import ModularTask

@dataclass(frozen=True)
class GridActivations:
    """What the analyses read, each over the full grid, at the ``=`` position."""

    logits: torch.Tensor  # [x, y, z] float64
    labels: torch.Tensor  # [x, y] int64
    train_mask: torch.Tensor  # [x, y] bool: the pair is in the training set
    neurons: torch.Tensor | None  # [x, y, neuron] float64, MLP hook_post of the last block (None if attn-only)
    resid_mid: torch.Tensor | None  # [x, y, d_model] float64, residual before the MLP (None if attn-only)
    pattern: torch.Tensor  # [x, y, head, key] float64, attention from '=' to each position

    @property
    def p(self) -> int:
        return self.labels.shape[0]


def grid_shape_check(task) -> None:
    """Fourier analyses need every (x, y) pair of a modular task."""
    if not isinstance(task, ModularTask):
        raise GrokscopeError(f"Fourier analysis is for modular tasks; this run's task is {task.config.kind}")
    if task.config.op == "div":
        raise GrokscopeError("Fourier analysis needs every (x, y) pair; op=div leaves out y = 0")


@torch.no_grad()
def grid_activations(model, task: ModularTask, train_indices: torch.Tensor) -> GridActivations:
    """Run ``model`` on every pair once and collect logits, neurons and attention at ``=``."""
    grid_shape_check(task)
    p = task.config.p
    data = task.dataset()
    last = len(model.blocks) - 1
    names = [f"blocks.{last}.hook_resid_mid", f"blocks.{last}.mlp.hook_post", f"blocks.{last}.attn.hook_pattern"]
    query = torch.tensor(data.target_positions[:1])  # the last block runs at '=' only
    logits, cache = model.run_with_cache(data.tokens, query, names_filter=names)
    q = 0  # index of '=' among the computed query positions
    mask = torch.zeros(p * p, dtype=torch.bool)
    mask[train_indices] = True
    neurons = cache.get(names[1])
    resid = cache.get(names[0])
    return GridActivations(
        logits=logits[:, q].double().reshape(p, p, -1),
        labels=data.labels[:, 0].reshape(p, p),
        train_mask=mask.reshape(p, p),
        neurons=None if neurons is None else neurons[:, q].double().reshape(p, p, -1),
        resid_mid=None if resid is None else resid[:, q].double().reshape(p, p, -1),
        pattern=cache[names[2]][:, :, q, :].double().reshape(p, p, *cache[names[2]].shape[1:2], -1),
    )
