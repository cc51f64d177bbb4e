"""grokscope: watch small transformers grok algorithmic tasks, and reverse-engineer what they learned.

The names below are imported on first use, so ``import grokscope`` itself loads nothing
heavy and has no side effects (see grokscope/openmp.py for the one setting that must come
before torch loads).
"""

import importlib

_API = {
    "GrokscopeError": "grokscope.errors",
    "Run": "grokscope.runs",
    "RunConfig": "grokscope.config",
    "RunSummary": "grokscope.training.loop",
    "TrainConfig": "grokscope.config",
    "load_analysis": "grokscope.analysis.registry",
    "load_preset": "grokscope.config",
    "load_run": "grokscope.runs",
    "preset_names": "grokscope.config",
    "train_ensemble": "grokscope.training.ensemble",
    "train_run": "grokscope.training.loop",
}

__all__ = sorted(_API)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'grokscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
