"""Time `grokscope analyze` on a finished run: every checkpoint, and one worker vs the default pool.

    python benchmarks/bench_analysis.py runs/nanda2023

Prints the wall time of the whole analysis (all checkpoints), and the per-checkpoint cost
of the progress table with one worker and with the default worker count, measured on the
same checkpoints in this run, as a ratio.
"""

import sys
import time

from grokscope import load_run
from grokscope.analysis.pipeline import analyze_run, progress_rows, task_sign


def main(path: str) -> None:
    run = load_run(path)
    epochs = run.checkpoint_epochs
    t0 = time.perf_counter()
    analysis = analyze_run(run)
    total = time.perf_counter() - t0
    sample = epochs[:: max(1, len(epochs) // 32)]
    sign, freqs = task_sign(run), analysis["key_frequencies"]
    t1 = time.perf_counter()
    progress_rows(run, sample, freqs, sign, workers=1)
    serial = (time.perf_counter() - t1) / len(sample)
    t2 = time.perf_counter()
    progress_rows(run, sample, freqs, sign)
    pooled = (time.perf_counter() - t2) / len(sample)
    print(f"analysed {len(epochs)} checkpoints of {path} in {total:.1f} s "
          f"({total / len(epochs) * 1000:.0f} ms per checkpoint, all included)")
    print(f"progress table on {len(sample)} checkpoints: {serial * 1000:.0f} ms/checkpoint with 1 worker, "
          f"{pooled * 1000:.0f} ms with the default pool: {serial / pooled:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/nanda2023")
