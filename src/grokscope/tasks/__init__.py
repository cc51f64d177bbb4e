"""Tasks: each generates its examples (all of them, or a seeded sample), labels and splits them."""

from grokscope.tasks.base import IGNORE, TASKS, Dataset, SampledTask, SampledTaskConfig, Split, Task, TaskConfig
from grokscope.tasks.digits import DigitAdditionConfig, DigitAdditionTask
from grokscope.tasks.lists import MaxElementConfig, MaxElementTask, SortConfig, SortTask
from grokscope.tasks.modular import ModularConfig, ModularTask
from grokscope.tasks.repeated import RepeatedSubsequenceConfig, RepeatedSubsequenceTask

__all__ = ["IGNORE", "TASKS", "Dataset", "SampledTask", "SampledTaskConfig", "Split", "Task", "TaskConfig",
           "DigitAdditionConfig", "DigitAdditionTask", "MaxElementConfig", "MaxElementTask", "ModularConfig",
           "ModularTask", "RepeatedSubsequenceConfig", "RepeatedSubsequenceTask", "SortConfig", "SortTask"]
