"""A fair comparison of grokking accelerators: epochs and wall time to grok, several seeds.

    python benchmarks/bench_grokfast.py [--frac 0.5] [--seeds 3] [--epochs 4000]

Every method trains the canonical model on (x + y) mod 113 with the same data, weight decay
(1.0) and learning rate (1e-3): AdamW normalises each step, so Grokfast's amplified gradient
does not change the effective step size, and ⊥Grad rescales its gradient to the original norm.
Prints each run's grokking epoch (test accuracy >= 99 %) and wall time, then the means.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from grokscope import load_preset, train_run

METHODS = {
    "baseline (AdamW, softmax)": [],
    "Grokfast EMA (alpha 0.98, lambda 2)": ["train.grokfast=ema", "train.grokfast_alpha=0.98", "train.grokfast_lamb=2"],
    "Grokfast MA (window 100, lambda 5)": ["train.grokfast=ma", "train.grokfast_window=100", "train.grokfast_lamb=5"],
    "StableMax + ⊥Grad": ["train.normaliser=stablemax", "train.orthograd=true"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frac", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    results: dict[str, list] = {}
    for name, options in METHODS.items():
        for seed in range(args.seeds):
            config = load_preset("nanda2023", [f"task.frac_train={args.frac}", f"train.epochs={args.epochs}",
                                               "train.stop_after_grok=0", f"train.seed={seed}", f"task.seed={seed}",
                                               "train.checkpoint_every=1000", *options])
            s = train_run(config, root / f"{len(results)}-{seed}")
            results.setdefault(name, []).append((s.grokking_epoch, s.wall_seconds))
            print(f"{name:40s} seed {seed}: grokked at {s.grokking_epoch}, {s.wall_seconds:.0f} s", flush=True)
    print(f"\n(x + y) mod 113, {args.frac:.0%} of pairs, {args.seeds} seeds, at most {args.epochs} epochs")
    print(f"{'method':40s} {'mean epoch':>10s} {'mean wall s':>11s}  grokked")
    for name, runs in results.items():
        done = [r for r in runs if r[0] is not None]
        epoch = statistics.mean(r[0] for r in done) if done else float("nan")
        wall = statistics.mean(r[1] for r in done) if done else float("nan")
        print(f"{name:40s} {epoch:10.0f} {wall:11.0f}  {len(done)}/{len(runs)}")


if __name__ == "__main__":
    main()
