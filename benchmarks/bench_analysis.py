"""Time `grokscope analyze` on a finished run, every checkpoint included.

    python benchmarks/bench_analysis.py runs/nanda2023

Prints the wall time of the whole analysis and its cost per checkpoint, and, measured in
the same run on a sample of checkpoints, the progress table computed in one process vs in
one process per core (the reason the analysis stays in one process).
"""

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from grokscope import load_run
from grokscope.analysis.pipeline import progress_rows, task_sign
from grokscope.analysis.registry import analyze_run


def _rows_for(root: str, epochs: list[int], freqs: list[int], sign: int) -> list[dict]:
    """Progress rows of some checkpoints (a function of picklable arguments, for the process pool)."""
    return progress_rows(load_run(root), epochs, freqs, sign)


def main(path: str) -> None:
    run = load_run(path)
    epochs = run.checkpoint_epochs
    t0 = time.perf_counter()
    analysis = analyze_run(run)
    total = time.perf_counter() - t0
    sample = epochs[:: max(1, len(epochs) // 32)]
    sign, freqs, root = task_sign(run), analysis["key_frequencies"], str(run.paths.root)
    t1 = time.perf_counter()
    _rows_for(root, sample, freqs, sign)
    serial = (time.perf_counter() - t1) / len(sample)
    cores = os.cpu_count() or 1
    t2 = time.perf_counter()
    with ProcessPoolExecutor(cores, mp_context=get_context("spawn")) as pool:
        list(pool.map(_rows_for, [root] * cores, [sample[i::cores] for i in range(cores)], [freqs] * cores, [sign] * cores))
    pooled = (time.perf_counter() - t2) / len(sample)
    print(f"analysed {len(epochs)} checkpoints of {path} in {total:.1f} s "
          f"({total / len(epochs) * 1000:.0f} ms per checkpoint, all included)")
    print(f"progress table on {len(sample)} checkpoints: {serial * 1000:.0f} ms/checkpoint in one process, "
          f"{pooled * 1000:.0f} ms with {cores} processes (start-up included): {serial / pooled:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/nanda2023")
