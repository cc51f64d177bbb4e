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
  op by op in a late canonical step: 42,000 per step at epoch 8,000, all in that cast). It is
  zeroed below ``GRADIENT_FLOOR`` (2^-100, about 7.9e-31), not merely below the smallest
  normal: the backward's matmuls multiply every entry by weights and activations, and an entry
  just above 1.18e-38 times a weight of 0.01 is a subnormal *inside* the kernel, which costs
  the same slow path though no tensor ever holds it. At 2^-100, a product with any factor of
  magnitude >= 2^-26 (1.5e-8) is normal. Measured on an Intel Xeon (1 thread, the last
  checkpoint of a grokked canonical run, median of five interleaved repeats), the backward's
  two products with the logits' gradient (into the residual, and into ``W_U``'s gradient)
  took 109 ms unflushed (8,287 subnormal entries), 5.2 ms zeroed below the smallest normal
  and 4.9 ms zeroed below the floor: the floor's own gain is small there, but it rules the
  slow path out by construction rather than by the weights' sizes
  (tests/test_subnormals.py counts the matmuls' subnormal products too: none);
- AdamW's moments and the Grokfast filters' averages every ``FLUSH_STATE_EVERY`` steps:
  ``flush_subnormals_``. They reach the subnormal range only by decaying geometrically while
  a gradient is exactly zero (a dead ReLU neuron), which takes hundreds of steps at
  beta = 0.9 or 0.98, and only elementwise AdamW reads them. Flushing the ~450K moments of
  the canonical model every step was measured at ~1 ms (4 % of a step); every 100 steps it
  is free. Weights and their gradients were never seen to hold one (matmul sums of terms
  ~1e-11), and weight decay alone would take ~80,000 steps to bring a weight there.

None of this can move a weight. An entry below 2^-100 of the logits' gradient adds at most
~3830 x 7.9e-31 x |activation| (< 1e-24) to a parameter's gradient, whose terms are ~1e-11
(float32 keeps 7 digits); and AdamW divides by ``sqrt(v) + eps`` with ``eps = 1e-8``, so even a
gradient made only of such terms would move a weight by ~lr x 1e-16, far below its last
digit. A subnormal in AdamW's moments is below ``eps`` by 30 orders of magnitude.
tests/test_subnormals.py counts them in one step of a real late checkpoint. The canonical
seed-0 run's metrics and final weights were bit-identical with and without this module (AMD
EPYC, 11,041 epochs) and with the floor at 2^-100 or at 1.18e-38 (Intel Xeon, 9,371 epochs).
"""

from __future__ import annotations

from typing import Iterable

import torch

FLUSH_STATE_EVERY = 100  # steps between flushes of the optimizer's and filters' running state

TINY = {torch.float32: torch.finfo(torch.float32).tiny, torch.float16: torch.finfo(torch.float16).tiny,
        torch.bfloat16: torch.finfo(torch.bfloat16).tiny}
# Below this, the logits' gradient is set to zero: 2^26 times the smallest normal for the dtypes
# with float32's exponent range; float16's range (smallest normal 6.1e-5) leaves no such margin.
GRADIENT_FLOOR = {torch.float32: 2.0 ** -100, torch.bfloat16: 2.0 ** -100, torch.float16: TINY[torch.float16]}


def magnitude_below(t: torch.Tensor, bound: float) -> torch.Tensor:
    """Where ``|t| < bound``, by two comparisons (``t.abs()`` would itself write subnormals)."""
    return (t < bound) & (t > -bound)


class _CastFlushingGrad(torch.autograd.Function):
    """``x.to(dtype)``; the backward zeroes the gradient's entries below ``GRADIENT_FLOOR`` of
    ``x.dtype`` before casting it back, so that no subnormal of ``x.dtype`` is ever made, in a
    tensor or in a product of the backward's matmuls."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        ctx.source_dtype = x.dtype
        return x.to(dtype) if dtype != x.dtype else x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        source = ctx.source_dtype
        return grad.masked_fill(magnitude_below(grad, GRADIENT_FLOOR[source]), 0.0).to(source), None


def cast_flushing_grad(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x.to(dtype)``, with the gradient flowing back into ``x`` zero below x's ``GRADIENT_FLOOR``.

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
            t.masked_fill_(magnitude_below(t, TINY[t.dtype]), 0.0)


def optimizer_state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The floating-point tensors of an optimizer's state (AdamW: ``exp_avg``, ``exp_avg_sq``)."""
    return [v for state in optimizer.state.values() for v in state.values()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dim() > 0]
