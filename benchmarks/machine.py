"""One line describing the processor a benchmark ran on: figures differ between CPUs
(speed, MKL kernels, and the cost of float32 subnormals)."""

import os

import torch

from grokscope.hardware import cpu_model


def describe() -> str:
    return (f"CPU: {cpu_model()} ({os.cpu_count()} logical cores), torch {torch.__version__}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, MKL_CBWR={os.environ.get('MKL_CBWR', 'unset')}")
