"""Gradient filters that amplify the slow gradient component: Grokfast (Lee et al., 2024).

- ``ema``: ``mu = alpha * mu + (1 - alpha) * g``; the step uses ``g + lamb * mu``.
- ``ma``: ``mu`` = mean of the last ``window`` gradients (applied once the window is full);
  the step uses ``g + lamb * mu``.

Filters act on every trainable parameter's ``.grad`` after ``backward()`` and before the
optimizer step. Their state is part of the resume file, so a resumed run is exact.
"""

from __future__ import annotations

import torch
from torch import nn


class GradientFilter:
    """Grokfast filter of one model's gradients."""

    def __init__(self, model: nn.Module, kind: str, alpha: float, lamb: float, window: int):
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.kind, self.alpha, self.lamb, self.window = kind, alpha, lamb, window
        self.ema: dict[str, torch.Tensor] = {}
        self.history: dict[str, torch.Tensor] = {}  # [window, *shape] ring buffer (ma)
        self.total: dict[str, torch.Tensor] = {}  # running sum of the ring buffer (ma)
        self.seen = 0  # gradients pushed into the ring buffer

    @torch.no_grad()
    def apply(self) -> None:
        """Replace each ``.grad`` by ``grad + lamb * slow component``."""
        for name, p in self.params.items():
            g = p.grad
            if self.kind == "ema":
                mu = self.ema.get(name)
                self.ema[name] = g.clone() if mu is None else mu.mul_(self.alpha).add_(g, alpha=1 - self.alpha)
                g.add_(self.ema[name], alpha=self.lamb)
            else:
                ring = self.history.setdefault(name, torch.zeros(self.window, *g.shape, dtype=g.dtype, device=g.device))
                total = self.total.setdefault(name, torch.zeros_like(g))
                slot = self.seen % self.window
                total.add_(g).sub_(ring[slot])  # the window's sum, updated in O(parameters)
                ring[slot] = g
                if self.seen + 1 >= self.window:
                    g.add_(total, alpha=self.lamb / self.window)
        self.seen += 1

    def running_tensors(self) -> list[torch.Tensor]:
        """The filter's running averages and sums (the ring buffer holds past gradients as they were)."""
        return [*self.ema.values(), *self.total.values()]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume, as named tensors."""
        out = {f"grokfast.{n}.ema": t for n, t in self.ema.items()}
        out |= {f"grokfast.{n}.history": t for n, t in self.history.items()}
        out |= {f"grokfast.{n}.total": t for n, t in self.total.items()}
        out["grokfast.seen"] = torch.tensor(self.seen)
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        device = next(iter(self.params.values())).device
        tensors = {k: t if k == "grokfast.seen" else t.to(device) for k, t in tensors.items()}
        for key, t in tensors.items():
            if key == "grokfast.seen":
                self.seen = int(t)
            elif key.endswith(".ema"):
                self.ema[key[len("grokfast."):-len(".ema")]] = t.clone()
            elif key.endswith(".history"):
                self.history[key[len("grokfast."):-len(".history")]] = t.clone()
            elif key.endswith(".total"):
                self.total[key[len("grokfast."):-len(".total")]] = t.clone()


@torch.no_grad()
def orthogonalise_gradients(model: nn.Module) -> None:
    """⊥Grad (Prieto et al., 2025): drop each weight's gradient component along the weight
    itself, then rescale to the original gradient norm; applied per parameter tensor."""
    for p in model.parameters():
        if p.grad is None:
            continue
        w, g = p.detach().flatten(), p.grad.flatten()
        orthogonal = g - (w @ g) / (w @ w + 1e-30) * w
        p.grad.copy_((orthogonal * (g.norm() / (orthogonal.norm() + 1e-30))).view_as(p.grad))
