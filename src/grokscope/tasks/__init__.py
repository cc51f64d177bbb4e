"""Tasks: each generates its examples (all of them, or a seeded sample), labels and splits them."""

from grokscope.tasks.base import IGNORE, TASKS, Dataset, SampledTask, SampledTaskConfig, Split, Task, TaskConfig
from grokscope.tasks.digits import DigitAdditionConfig, DigitAdditionTask
from grokscope.tasks.groups import GroupConfig, GroupTask
from grokscope.tasks.lists import MaxElementConfig, MaxElementTask, PermuteConfig, PermuteTask, SortConfig, SortTask
from grokscope.tasks.modular import ModularConfig, ModularTask
from grokscope.tasks.numbers import GCDConfig, GCDTask, PrimalityConfig, PrimalityTask
from grokscope.tasks.recurrence import AddSubConfig, AddSubTask, FibonacciConfig, FibonacciTask
from grokscope.tasks.repeated import RepeatedSubsequenceConfig, RepeatedSubsequenceTask

__all__ = ["AddSubConfig", "AddSubTask", "FibonacciConfig", "FibonacciTask", "GCDConfig", "GCDTask", "GroupConfig", "GroupTask",
           "PermuteConfig", "PermuteTask", "PrimalityConfig", "PrimalityTask", "IGNORE", "TASKS", "Dataset", "SampledTask", "SampledTaskConfig", "Split", "Task", "TaskConfig",
           "DigitAdditionConfig", "DigitAdditionTask", "MaxElementConfig", "MaxElementTask", "ModularConfig",
           "ModularTask", "RepeatedSubsequenceConfig", "RepeatedSubsequenceTask", "SortConfig", "SortTask"]
