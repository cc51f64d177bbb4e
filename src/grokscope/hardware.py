"""What a run executed on: the processor's name, recorded in summary.json and printed by the
benchmarks (figures differ between CPUs: speed, MKL kernels, the cost of subnormals)."""

from __future__ import annotations

import functools
import platform
import subprocess


@functools.cache
def cpu_model() -> str:
    """The CPU's model name, from ``lscpu`` or ``/proc/cpuinfo`` (else ``platform.processor()``);
    asked once per process (every run an ensemble finishes records it)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
