"""Wall time for the canonical run to grok, and how the epoch's cost changes over the run.

    python benchmarks/bench_time_to_grok.py [--threads 2] [--out DIR] [--set KEY=VALUE ...]

Trains the ``nanda2023`` preset (p = 113, 30 % of pairs, seed 0) from scratch through the
real training loop (evaluation every 10 epochs and checkpoints included) until it groks
(test accuracy >= 99 %), then prints the grokking epoch, the wall time to grok, and the
ms per epoch of each 1,000-epoch block, so that a cost that grows as training goes on (as
float32 subnormals made it on Intel cores) shows. The run directory is a temporary one
unless ``--out`` is given.
"""

import argparse
import tempfile
import time
from pathlib import Path

from grokscope.entry import before_torch

before_torch()  # OpenMP's wait policy and MKL's strict mode, before torch loads, as the grokscope command does

from grokscope import load_preset, train_run  # noqa: E402

from machine import describe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    config = load_preset("nanda2023", [f"train.threads={args.threads}", "train.stop_after_grok=0", *args.set])
    print(describe())
    print(f"threads={config.train.threads}, canonical preset, training until test accuracy >= "
          f"{config.train.grok_threshold:.0%}", flush=True)

    stamps: list[float] = []  # perf_counter when each epoch's metrics row was written
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        if (out / "config.json").exists():
            raise SystemExit(f"{out} already holds a run; the benchmark needs a fresh directory")
        t0 = time.perf_counter()
        summary = train_run(config, out, on_epoch=lambda row: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0

    print(f"\n{'epochs':>15} {'ms/epoch':>9}")
    for start in range(0, len(stamps) - 1, 1000):
        end = min(start + 1000, len(stamps) - 1)
        print(f"{start:>6,d}-{end:<8,d} {(stamps[end] - stamps[start]) / (end - start) * 1000:9.1f}")
    if summary.grokking_epoch is None:
        print(f"\ndid not grok in {summary.final_epoch:,d} epochs ({total:.0f} s)")
        return
    print(f"\ngrokked at epoch {summary.grokking_epoch:,d}: {total:.1f} s from start to grokking "
          f"({total / 60:.2f} min; {total / max(summary.grokking_epoch, 1) * 1000:.1f} ms/epoch overall), "
          f"test accuracy {summary.test_acc:.4f}")


if __name__ == "__main__":
    main()
