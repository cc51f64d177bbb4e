"""MKL's strict reproducibility mode, chosen before torch's first matrix product.

On Intel cores, MKL's ``sgemm`` splits a long reduction across threads: the weight gradients
of a full-batch step (``[512 x 3830] @ [3830 x 113]``, summed over the 3,830 examples) are
added up in another order on two threads than on one. Measured on an Intel Xeon (AVX-512,
torch 2.13.0, MKL 2024.2): 47,000 of that product's 57,856 entries differed in their last
bits between 1 and 2 threads, and so a canonical run's metrics depended on the thread count
from its first step (tests/test_training.py resumes a one-thread run on two). The AMD EPYC
the earlier figures were measured on showed no such split.

MKL's conditional numerical reproducibility in strict mode (``MKL_CBWR=AUTO,STRICT``: the
kernels MKL would choose for this CPU, summed in an order that does not depend on the thread
count) makes every step's bits independent of it. On that Xeon it cost nothing measurable:
benchmarks/bench_epoch.py (which prints the mode it ran under), run four times alternating the
modes, gave the canonical step on 2 threads 29.7-31.0 ms in MKL's default mode and 25.9-30.9 ms
in strict mode. Bits still differ between processors, as they always did. MKL reads the
variable once, at its first call, so it must be set before any matrix product: the
``grokscope`` command, the benchmarks and the test suite set it first thing. A notebook that wants the same guarantee calls
``choose_strict_blas()`` (or sets ``MKL_CBWR``) before importing torch, as examples/tour.ipynb
does; without it, a run is still bit-identical for a given thread count.
"""

from __future__ import annotations

import os

STRICT = "AUTO,STRICT"


def choose_strict_blas() -> str:
    """Set ``MKL_CBWR`` to MKL's strict mode unless the user set it; return the value in force."""
    return os.environ.setdefault("MKL_CBWR", STRICT)
