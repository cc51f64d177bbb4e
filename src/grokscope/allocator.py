"""Keep freed memory in the process, so that a training step's large tensors reuse warm pages.

Every step allocates and frees the same large tensors (the canonical step: the row mix's
[3830 x 625] output and gradient, 9.6 MB each, the logits, the float64 loss). glibc's malloc
gives chunks this large back to the kernel when they are freed (``mmap``, or trimming the
heap), and the kernel hands out zeroed pages on the next first touch: measured on the
canonical step (2 threads, AMD EPYC), writing the row mix's gradient took 2.3 ms into fresh
memory and 0.7 ms into reused memory, and the whole loop went from ~125 page faults per
epoch to none. Raising glibc's mmap and trim thresholds keeps that memory in the process;
the cost is that a process's memory does not shrink after its peak, which training
processes reach at their first step anyway.

Process-wide and Linux/glibc only (elsewhere, and where the C library has no ``mallopt``,
nothing happens). ``training_session`` calls it, so every run and sweep member gets it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit: smaller chunks come from the heap
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top kept before any is given back


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (once per process); True if they were set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
