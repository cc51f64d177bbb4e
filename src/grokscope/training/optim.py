"""AdamW with weight decay chosen by parameter name, and the linear warm-up schedule."""

from __future__ import annotations

import torch
from torch import nn

from grokscope.config import TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, in two groups: ``decay`` (names matching
    ``cfg.decay_params``, weight_decay ``cfg.weight_decay``) and ``no_decay`` (weight_decay 0).
    Uses the fused CPU kernel."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if cfg.decays(name) else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=True)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): ``lr * min(step / warmup_steps, 1)``,
    as ``LambdaLR(lambda s: min(s / 10, 1))`` in the paper's code (so step 0 has lr 0)."""
    if cfg.warmup_steps == 0:
        return cfg.lr
    return cfg.lr * min(step / cfg.warmup_steps, 1.0)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
