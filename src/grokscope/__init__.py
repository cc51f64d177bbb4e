"""grokscope: watch small transformers grok algorithmic tasks, and reverse-engineer what they learned."""

from grokscope.config import RunConfig, TrainConfig, load_preset, preset_names
from grokscope.errors import GrokscopeError
from grokscope.runs import Run, load_run
from grokscope.training.loop import RunSummary, train_run

__all__ = [
    "GrokscopeError", "Run", "RunConfig", "RunSummary", "TrainConfig",
    "load_preset", "load_run", "preset_names", "train_run",
]
__version__ = "0.1.0"
