"""Which device trains a run: ``train.device`` = ``auto`` (CUDA if available, else Apple's
MPS, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

A device is how a run executes, not what it is (config.EXECUTION_KEYS): a run started on one
resumes on another, and summary.json records the device and its hardware name. Weights are
initialised on the CPU from the run's seed and moved, so every device starts from the same
bits; checkpoints are always written from CPU copies.
"""

from __future__ import annotations

import re

import torch

from grokscope.errors import GrokscopeError
from grokscope.hardware import cpu_model

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str) -> torch.device:
    """The torch device ``spec`` names on this machine; GrokscopeError if it has none such."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            built = "built with CUDA" if torch.backends.cuda.is_built() else "a CPU-only build"
            raise GrokscopeError(f"train.device={spec}: this machine has no usable CUDA device (torch "
                                 f"{torch.__version__}, {built}); use --device cpu or auto")
        index = int(spec.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise GrokscopeError(f"train.device={spec}: there are {torch.cuda.device_count()} CUDA devices (0-based)")
    if spec == "mps" and not _mps_available():
        raise GrokscopeError("train.device=mps: Apple's MPS is not available here; use --device cpu or auto")
    return torch.device(spec)


def hardware_name(device: torch.device) -> str:
    """The processor behind a device: the CPU's model, the GPU's name, or Apple's MPS."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return cpu_model()
