"""No float32 subnormals in a training step, counted op by op on a real late checkpoint.

Subnormals (0 < |v| < 1.18e-38) take a slow microcode path on most Intel cores; they arise
once a model is confident (training/subnormals.py). These tests count them in the output
of every operation of one step (forward, loss, backward, Grokfast, AdamW), so they need no
timing and hold on any processor, including those without the penalty.
"""

import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from grokscope.training import checkpoint
from grokscope.training.grokfast import GradientFilter
from grokscope.training.loop import take_step, training_forward
from grokscope.training.loss import log_probs_of_labels, scored_mean_loss
from grokscope.training.optim import make_optimizer
from grokscope.training.subnormals import cast_flushing_grad, flush_subnormals_, optimizer_state_tensors

TINY = torch.finfo(torch.float32).tiny


def n_subnormal(t) -> int:
    if not (isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.layout == torch.strided):
        return 0
    return int(((t != 0) & (t.abs() < TINY)).sum())


def n_subnormal_products(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many of the products ``a[..., i, k] * b[..., k, j]`` that ``a @ b`` multiplies are
    subnormal in float32: a kernel takes the slow path for them though no tensor holds one.
    a [batch..., m, k], b [batch..., k, n]; counted exactly, in float64, by sorting b's rows."""
    k = a.shape[-1]
    a = a.double().abs().transpose(-1, -2).reshape(-1, a.shape[-2]).contiguous()  # [batch * k, m]
    b = b.double().abs().reshape(-1, b.shape[-1]).sort(dim=1).values.contiguous()  # [batch * k, n]
    zeros = (b == 0).sum(dim=1, keepdim=True)  # [batch * k, 1]
    below = torch.searchsorted(b, TINY / a) - zeros  # per (row, i): the b entries with 0 < a b < TINY
    return int(below.clamp(min=0)[a > 0].sum())


MATMULS = {"mm.default": (0, 1), "bmm.default": (0, 1), "addmm.default": (1, 2)}  # op: its two factors


class SubnormalCensus(TorchDispatchMode):
    """Counts float32 subnormals in what every aten op writes (outputs and mutated arguments),
    and, for the float32 matmuls, among the products they multiply (``OP products``).

    Ops that only allocate (``empty``) are skipped: their memory is not yet values. So are the
    outputs of views (``slice`` of a buffer about to be written): a view writes nothing, and
    whatever is later written through it is counted at the op that writes it."""

    def __init__(self):
        super().__init__()
        self.by_op = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__ in MATMULS and args[0].dtype == torch.float32:
            i, j = MATMULS[func.__name__]
            with torch._C._DisableTorchDispatch():
                count = n_subnormal_products(args[i], args[j])
            if count:
                self.by_op[f"{func.__name__} products"] += count
        out = func(*args, **(kwargs or {}))
        if "empty" not in func.__name__:
            schema = func._schema
            is_view = any(r.alias_info is not None for r in schema.returns)
            written = ([] if is_view else tree_flatten(out)[0]) + (tree_flatten((args, kwargs))[0] if schema.is_mutable else [])
            with torch._C._DisableTorchDispatch():
                count = sum(n_subnormal(t) for t in written)
            if count:
                self.by_op[func.__name__] += count
        return out


def late_state(run, **train_overrides):
    """Model, optimizer (with the run's real AdamW moments) and training data of a finished run."""
    config = run.config
    cfg = type(config.train)(**{**config.train.__dict__, **train_overrides})
    task = run.task
    data, split = task.dataset(), task.split()
    model = config.model.build(task.d_vocab, task.d_vocab_out, task.n_ctx)
    optimizer = make_optimizer(model, cfg)
    epoch, _, _ = checkpoint.load_resume(model, optimizer, run.paths.resume)
    batch = data.tokens[split.train], data.labels[split.train], torch.tensor(data.target_positions)
    return model, optimizer, cfg, epoch, batch


def loop_step(model, optimizer, cfg, epoch, batch, grad_filter=None) -> None:
    """One training step exactly as the loop takes it."""
    tokens, labels, query = batch
    logits = training_forward(model, cfg)(tokens, query)
    loss = scored_mean_loss(log_probs_of_labels(logits, labels, cfg.loss_dtype, cfg.normaliser), labels)
    loss.backward()
    take_step(model, optimizer, cfg, epoch, grad_filter)


def test_the_late_checkpoint_makes_subnormals_without_the_flush(grokked):
    """The hard case is real: a plain float64 loss's gradient, cast back to float32, holds them."""
    run, _ = grokked
    model, _, cfg, _, (tokens, labels, query) = late_state(run)
    logits = training_forward(model, cfg)(tokens, query)
    logits.retain_grad()
    (-logits.double().log_softmax(-1).gather(-1, labels[..., None]).mean()).backward()
    assert n_subnormal(logits.grad) > 50
    # zeroed only below the smallest normal, it would still make subnormal products with W_U
    # in the backward's matmul: why the floor is 2^-100
    grad = logits.grad[:, 0, :]  # [batch, d_vocab_out]
    at_tiny = grad.masked_fill((grad < TINY) & (grad > -TINY), 0.0)
    assert n_subnormal_products(at_tiny, model.unembed.W_U.detach().T) > 1000
    at_floor = grad.masked_fill((grad < 2.0 ** -100) & (grad > -2.0 ** -100), 0.0)
    assert n_subnormal_products(at_floor, model.unembed.W_U.detach().T) == 0


@pytest.mark.parametrize("grokfast", ["none", "ema", "ma"])
def test_a_late_training_step_makes_no_subnormals(grokked, grokfast):
    run, _ = grokked
    model, optimizer, cfg, epoch, batch = late_state(run, grokfast=grokfast, grokfast_window=2)
    grad_filter = None if grokfast == "none" else GradientFilter(model, grokfast, 0.98, 2.0, 2)
    census = SubnormalCensus()
    with census:
        for step in range(3):  # the filters reach their steady state
            loop_step(model, optimizer, cfg, epoch + step, batch, grad_filter)
    assert dict(census.by_op) == {}
    carried = [*model.parameters(), *optimizer_state_tensors(optimizer)]
    carried += list(grad_filter.state_tensors().values()) if grad_filter else []
    assert sum(n_subnormal(t) for t in carried) == 0


def test_a_float32_loss_makes_them_only_in_its_own_backward(grokked):
    """float32's ``log_softmax`` backward computes the subnormals itself; nothing after it sees one."""
    run, _ = grokked
    model, optimizer, cfg, epoch, batch = late_state(run, loss_dtype="float32")
    census = SubnormalCensus()
    with census:
        loop_step(model, optimizer, cfg, epoch, batch)
    assert set(census.by_op) <= {"_log_softmax_backward_data.default"}


def test_flush_zeroes_subnormals_and_keeps_every_other_value():
    values = torch.tensor([1e-39, -3e-42, 0.0, TINY, -TINY, 1.5e-38, 2.0, -1e-30])
    flushed = values.clone()
    flush_subnormals_([flushed, torch.tensor([1, 2])])
    assert flushed.tolist() == [0.0, 0.0, 0.0, TINY, -TINY, values[5].item(), 2.0, values[7].item()]

    x = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], requires_grad=True)  # the gradient's floor: 2^-100, not 1.18e-38
    grad64 = torch.tensor([1e-39, 1e-37, -1e-31, 2.0 ** -100, -1e-30], dtype=torch.float64)
    cast_flushing_grad(x, torch.float64).backward(grad64)
    assert x.grad.dtype == torch.float32 and x.grad.tolist() == [0.0, 0.0, 0.0, 2.0 ** -100, torch.tensor(-1e-30).item()]
    assert not cast_flushing_grad(torch.ones(2), torch.float64).requires_grad  # no gradient: only cast


def test_the_product_count_is_exact():
    """Planted: 1e-30 x 1e-9 is subnormal, a zero factor is not, 1e-30 x 1 is normal; then
    random factors spread over 60 orders of magnitude against a brute-force count."""
    a = torch.tensor([[1e-30, 1.0], [0.0, 1e-20]])
    b = torch.tensor([[1e-9, 0.0, 1.0], [1e-20, 1e-19, 3.0]])
    assert n_subnormal_products(a, b) == 1 + 2  # (0, 0, 0); then 1e-20 x 1e-20 and 1e-20 x 1e-19
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(2, 7, 5, generator=generator) * 10.0 ** -torch.randint(0, 30, (2, 7, 5), generator=generator)
    b = torch.randn(2, 5, 6, generator=generator) * 10.0 ** -torch.randint(0, 30, (2, 5, 6), generator=generator)
    products = a.double()[..., :, :, None] * b.double()[..., None, :, :]  # [2, 7, 5, 6]
    expected = int(((products != 0) & (products.abs() < TINY)).sum())
    assert expected > 0 and n_subnormal_products(a, b) == expected


def test_decayed_adamw_moments_are_flushed(tiny_config):
    """A parameter whose gradient is exactly zero (a dead neuron) has its moments decay
    geometrically through the subnormal range; the step zeroes them."""
    model = tiny_config.model.build(8, 7, 3)
    cfg = tiny_config.train
    optimizer = make_optimizer(model, cfg)
    W_in = model.blocks[0].mlp.W_in
    ((W_in * 0).sum() + model.unembed.W_U.sum()).backward()
    take_step(model, optimizer, cfg, 98, None)
    optimizer.state[W_in]["exp_avg"].fill_(1.2e-38)  # one step of beta1 = 0.9 takes it below 1.18e-38
    optimizer.state[W_in]["exp_avg_sq"].fill_(1e-39)
    ((W_in * 0).sum() + model.unembed.W_U.sum()).backward()
    take_step(model, optimizer, cfg, 99, None)  # a flushing step
    assert sum(n_subnormal(t) for t in optimizer_state_tensors(optimizer)) == 0
    assert optimizer.state[W_in]["exp_avg"].abs().max() == 0
