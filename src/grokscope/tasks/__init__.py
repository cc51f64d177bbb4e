"""Tasks: each generates its whole input space, labels it and splits it by a seed."""

from grokscope.tasks.base import TASKS, Dataset, Split, Task, TaskConfig
from grokscope.tasks.modular import ModularConfig, ModularTask

__all__ = ["TASKS", "Dataset", "Split", "Task", "TaskConfig", "ModularConfig", "ModularTask"]
