"""One line describing the processor a benchmark ran on: figures differ between CPUs
(speed, MKL kernels, and the cost of float32 subnormals)."""

import os
import platform
import subprocess

import torch


def cpu_model() -> str:
    """The CPU's model name, from ``lscpu`` or ``/proc/cpuinfo`` (else ``platform.processor()``)."""
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


def describe() -> str:
    return (f"CPU: {cpu_model()} ({os.cpu_count()} logical cores), torch {torch.__version__}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
