"""Keep float32 subnormals (0 < |v| < 1.18e-38) out of training, on every CPU and thread count.

Once a model is confident, the wrong classes' probabilities fall below 1.2e-38. The float64
loss's gradient, cast back to float32 for the backward pass, then holds subnormals, and
every matmul that reads them takes the slow microcode path of most Intel cores: a
canonical step at epoch 5,000 took 265 ms instead of 34 ms on a Xeon (issue 11). The AMD
EPYC (Zen 4) this was fixed on shows no such penalty, which hid the defect.

Rather than switch the processor to flush-to-zero (``torch.set_flush_denormal`` acts on the
calling thread only, and not on every platform), the values are set to exactly zero where
they arise, which gives the same bits on every machine and thread count:

- the logits' gradient, where the loss (float64, or float32's own ``log_softmax``) meets
  the float32 model, every step: ``cast_flushing_grad``. This is where they arise (counted
  op by op in a late canonical step: 42,000 per step at epoch 8,000, all in that cast);
- AdamW's moments and the Grokfast filters' averages every ``FLUSH_STATE_EVERY`` steps:
  ``flush_subnormals_``. They reach the subnormal range only by decaying geometrically while
  a gradient is exactly zero (a dead ReLU neuron), which takes hundreds of steps at
  beta = 0.9 or 0.98, and only elementwise AdamW reads them. Flushing the ~450K moments of
  the canonical model every step was measured at ~1 ms (4 % of a step); every 100 steps it
  is free. Weights and their gradients were never seen to hold one (matmul sums of terms
  ~1e-11), and weight decay alone would take ~80,000 steps to bring a weight there.

A subnormal cannot move a weight: in a gradient it is added to terms ~1e-11 (float32 keeps 7
digits), and in AdamW's moments it is below the ``eps = 1e-8`` of the denominator by 30
orders of magnitude. tests/test_subnormals.py counts them in one step of a real late
checkpoint; the canonical run's metrics were compared with and without this module.
"""

from __future__ import annotations

from typing import Iterable

import torch

FLUSH_STATE_EVERY = 100  # steps between flushes of the optimizer's and filters' running state

TINY = {torch.float32: torch.finfo(torch.float32).tiny, torch.float16: torch.finfo(torch.float16).tiny,
        torch.bfloat16: torch.finfo(torch.bfloat16).tiny}


def below_normal(t: torch.Tensor, tiny: float) -> torch.Tensor:
    """Where ``|t| < tiny``, by two comparisons (``t.abs()`` would itself write subnormals)."""
    return (t < tiny) & (t > -tiny)


class _CastFlushingGrad(torch.autograd.Function):
    """``x.to(dtype)``; the backward zeroes the gradient's entries below ``x.dtype``'s smallest
    normal before casting it back, so that no subnormal of ``x.dtype`` is ever made."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        ctx.source_dtype = x.dtype
        return x.to(dtype) if dtype != x.dtype else x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        source = ctx.source_dtype
        return grad.masked_fill(below_normal(grad, TINY[source]), 0.0).to(source), None


def cast_flushing_grad(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x.to(dtype)``, with the gradient flowing back into ``x`` free of subnormals of x's dtype.

    With a float64 loss the gradient is flushed in float64, so float32 never sees a
    subnormal; with a float32 loss, ``log_softmax``'s own backward makes them and they are
    zeroed before any matmul reads them. Tensors without a gradient are only cast.
    """
    if not x.requires_grad or x.dtype not in TINY:
        return x.to(dtype)
    return _CastFlushingGrad.apply(x, dtype)


@torch.no_grad()
def flush_subnormals_(tensors: Iterable[torch.Tensor]) -> None:
    """Set every subnormal entry of these tensors to zero, in place (others are skipped)."""
    for t in tensors:
        if t.dtype in TINY:
            t.masked_fill_(below_normal(t, TINY[t.dtype]), 0.0)


def optimizer_state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The floating-point tensors of an optimizer's state (AdamW: ``exp_avg``, ``exp_avg_sq``)."""
    return [v for state in optimizer.state.values() for v in state.values()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dim() > 0]
