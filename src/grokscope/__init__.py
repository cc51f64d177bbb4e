"""grokscope: watch small transformers grok algorithmic tasks, and reverse-engineer what they learned."""

import os

# OpenMP threads that spin while waiting make two threads 3-4x slower on a busy 2-core
# machine; passive waiting costs nothing on an idle one. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from grokscope.config import RunConfig, TrainConfig, load_preset, preset_names
from grokscope.errors import GrokscopeError
from grokscope.runs import Run, load_run
from grokscope.training.loop import RunSummary, train_run

__all__ = [
    "GrokscopeError", "Run", "RunConfig", "RunSummary", "TrainConfig",
    "load_preset", "load_run", "preset_names", "train_run",
]
__version__ = "0.1.0"
