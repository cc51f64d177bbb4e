"""Per-epoch cost of grokscope's training step, early and late in a run, against a plain
full-sequence PyTorch model and the matmul floor, all measured here, now.

    python benchmarks/bench_epoch.py [--threads 1 2] [--epochs N] [--rounds R] [--run DIR]

The step is the training loop's own (forward, float64 loss, backward, AdamW, subnormal
flush), timed at an early checkpoint (epoch 500, memorised) and at the last checkpoint of a
grokked canonical run, where float32 subnormals used to make it several times slower on
Intel cores. ``--run`` names that run (default ``runs/nanda2023``, as ``make run`` leaves it; if it is
missing, the canonical run is trained into ``runs/bench-late`` to 100 epochs past grokking
first, minutes).
The late step is also timed without the flush (a plain ``.double()`` cast), to show what
subnormals cost on this processor, and with the logits' gradient zeroed only below float32's
smallest normal instead of below ``GRADIENT_FLOOR`` (2^-100): its entries just above 1.18e-38
still make subnormal products inside the backward's matmuls (training/subnormals.py).

The steps at the two checkpoints (and the late step's variants) are timed in ``--rounds``
interleaved rounds of ``--epochs`` steps each, and each figure is the median over the rounds:
this machine's speed drifts by 10-20 % within minutes, which a late / early ratio of two
back-to-back timings would mistake for a cost of late training.

The floor is the 9 matmuls a last-position model cannot avoid in a plain formulation
(x @ W_in, h @ W_out, r @ W_U forward, and their two backward products each) at the
canonical shapes. grokscope's folded forward removes some of that arithmetic, so it can
run below the floor.
"""

import argparse
import statistics
import time
from pathlib import Path

from grokscope.entry import before_torch

before_torch()  # OpenMP's wait policy and MKL's strict mode, before torch loads, as the grokscope command does

from grokscope import load_preset, load_run, train_run  # noqa: E402
from grokscope.allocator import keep_freed_memory  # noqa: E402

import torch  # noqa: E402
from grokscope.training import checkpoint  # noqa: E402
from grokscope.training.loop import take_step, training_forward  # noqa: E402
from grokscope.training.loss import log_probs_of_labels, scored_mean_loss  # noqa: E402
from grokscope.training.optim import make_optimizer  # noqa: E402
from grokscope.training.subnormals import GRADIENT_FLOOR, TINY  # noqa: E402
from machine import describe  # noqa: E402
from reference_model import PlainTransformer, plain_step  # noqa: E402


def per_call(fn, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def interleaved(steps: dict, repeats: int, rounds: int) -> dict:
    """Seconds per call of each of ``steps`` (name -> function): the median over ``rounds``
    rounds, each timing every step for ``repeats`` calls in turn."""
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            times[name].append(per_call(fn, repeats))
    return {name: statistics.median(t) for name, t in times.items()}


def late_run(path: Path | None):
    """A grokked canonical run with checkpoints after grokking: ``path``, else ``make run``'s
    runs/nanda2023 if it is complete, else one trained here into runs/bench-late (minutes)."""
    if path is None:
        path = Path("runs/nanda2023")
        if not (path / "summary.json").is_file():
            path = Path("runs/bench-late")
            if not (path / "summary.json").is_file():
                print(f"training the canonical run into {path} (stops 100 epochs after grokking; minutes) ...", flush=True)
                train_run(load_preset("nanda2023", ["train.stop_after_grok=100"]), path)
    run = load_run(path)
    grok = run.summary["grokking_epoch"]
    if grok is None or run.config.task != load_preset("nanda2023").task:
        raise SystemExit(f"{path} is not a grokked canonical (x + y) mod 113 run")
    return run, grok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=20, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is printed)")
    parser.add_argument("--run", type=Path, default=None)
    args = parser.parse_args()
    keep_freed_memory()  # as in training (grokscope/allocator.py)
    torch.use_deterministic_algorithms(True)  # as in training
    torch.utils.deterministic.fill_uninitialized_memory = False
    run, grok = late_run(args.run)
    late_epoch = run.checkpoint_epochs[-1]
    print(describe())
    print(f"late checkpoint: epoch {late_epoch} of {run.paths.root} (grokked at {grok}); early: epoch 500")

    config = load_preset("nanda2023")
    task = config.task.build()
    data, split = task.dataset(), task.split()
    tokens, labels = data.tokens[split.train], data.labels[split.train]
    query = torch.tensor(data.target_positions)
    n = len(tokens)

    def model_at(epoch: int):
        model = config.model.build(task.d_vocab, task.d_vocab_out, task.n_ctx)
        checkpoint.load_weights(model, run.paths.checkpoint(epoch, run.config.train.epochs))
        return model, make_optimizer(model, config.train)

    def loop_step(model, opt):
        def step():
            logits = training_forward(model, config.train)(tokens, query)
            scored_mean_loss(log_probs_of_labels(logits, labels), labels).backward()
            take_step(model, opt, config.train, 1000, None)
        return step

    def unflushed_step(model, opt):
        def step():
            logits = training_forward(model, config.train)(tokens, query)
            (-logits.double().log_softmax(-1).gather(-1, labels[..., None]).mean()).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    def floored_at_tiny(step):
        def run():
            GRADIENT_FLOOR[torch.float32] = TINY[torch.float32]
            try:
                step()
            finally:
                GRADIENT_FLOOR[torch.float32] = floor
        return run

    floor = GRADIENT_FLOOR[torch.float32]
    d_model, d_mlp, d_out = 128, 512, 113
    x, h = torch.randn(n, d_model), torch.randn(n, d_mlp)
    W_in, W_out, W_U = torch.randn(d_model, d_mlp), torch.randn(d_mlp, d_model), torch.randn(d_model, d_out)
    g_in, g_out, g_U = torch.randn(n, d_mlp), torch.randn(n, d_model), torch.randn(n, d_out)

    def floor_matmuls():
        x @ W_in; h @ W_out; x @ W_U  # forward
        g_in @ W_in.T; x.T @ g_in  # backward of x @ W_in
        g_out @ W_out.T; h.T @ g_out  # backward of h @ W_out
        g_U @ W_U.T; x.T @ g_U  # backward of r @ W_U

    for threads in args.threads:
        torch.set_num_threads(threads)
        reference = PlainTransformer()
        ref_opt = torch.optim.AdamW(reference.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
        t_ref = per_call(lambda: plain_step(reference, ref_opt, tokens, labels[:, 0]), max(5, args.epochs // 4))
        t_floor = per_call(floor_matmuls, args.epochs)
        # each step moves the weights a little; from a checkpoint, a few dozen steps stay in its regime
        t = interleaved({"early": loop_step(*model_at(500)), "late": loop_step(*model_at(late_epoch)),
                         "late_plain": unflushed_step(*model_at(late_epoch)),
                         "late_tiny": floored_at_tiny(loop_step(*model_at(late_epoch)))}, args.epochs, args.rounds)
        t_early, t_late, t_late_plain, t_late_tiny = t["early"], t["late"], t["late_plain"], t["late_tiny"]

        print(f"\nthreads={threads}, {n} training examples, canonical model; steps: median of {args.rounds} interleaved rounds")
        print(f"plain full-sequence reference  : {t_ref * 1000:7.1f} ms/epoch")
        print(f"matmul floor (last position)   : {t_floor * 1000:7.1f} ms/epoch")
        print(f"grokscope step, epoch 500      : {t_early * 1000:7.1f} ms/epoch")
        print(f"grokscope step, epoch {late_epoch:<9,d}: {t_late * 1000:7.1f} ms/epoch")
        print(f"  the same without the flush   : {t_late_plain * 1000:7.1f} ms/epoch  (subnormals' cost here: {t_late_plain / t_late:.2f}x)")
        print(f"  zeroed below 1.18e-38 only    : {t_late_tiny * 1000:7.1f} ms/epoch  ({t_late_tiny / t_late:.2f}x)")
        print(f"late / early                   : {t_late / t_early:7.2f}x")
        print(f"speed-up vs reference (late)   : {t_ref / t_late:7.2f}x   (early: {t_ref / t_early:.2f}x)")
        print(f"grokscope / floor (late)       : {t_late / t_floor:7.2f}x")


if __name__ == "__main__":
    main()
