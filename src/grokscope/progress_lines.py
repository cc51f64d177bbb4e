"""Progress where there is no terminal (a log file, nohup, a cluster job, CI): one plain line
every ``every`` seconds instead of a live bar, with the count, the rate and the time left.

``PlainProgress`` offers the part of ``rich.progress.Progress`` the CLI uses (``add_task``,
``update``, ``advance``, a context manager), so the CLI picks one or the other by
``console.is_terminal``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, TextIO


@dataclass
class _Task:
    label: str
    unit: str
    total: int
    completed: float = 0
    fields: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    last_line: float = field(default_factory=time.perf_counter)
    completed_at_last_line: float | None = None  # None until the first update (a resumed run starts part-way)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class PlainProgress:
    """Prints ``label: 1,200/40,000 unit (3.0%) | 31.4 unit/s | 0:00:38 elapsed, ~0:20:35 left | stats``
    (the rate over the time since the previous line, the time left at that rate)."""

    def __init__(self, label: str, unit: str, write: Callable[[str], None] | TextIO, every: float = 10.0):
        self.label, self.unit, self.every = label, unit, every
        self._write = write if callable(write) else (lambda line: (write.write(line + "\n"), write.flush()))
        self._tasks: list[_Task] = []

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            for task in self._tasks:
                self._line(task)

    def add_task(self, description: str, total: int, **fields) -> int:
        self._tasks.append(_Task(self.label, self.unit, total, fields=fields))
        return len(self._tasks) - 1

    def update(self, task_id: int, completed: float | None = None, **fields) -> None:
        task = self._tasks[task_id]
        if completed is not None:
            if task.completed_at_last_line is None:
                task.completed_at_last_line = completed - 1 if completed > 0 else 0
            task.completed = completed
        task.fields.update(fields)
        if time.perf_counter() - task.last_line >= self.every:
            self._line(task)

    def advance(self, task_id: int, amount: float = 1) -> None:
        self.update(task_id, completed=self._tasks[task_id].completed + amount)

    def _line(self, task: _Task) -> None:
        now = time.perf_counter()
        elapsed, window = now - task.started, now - task.last_line
        done = task.completed - (task.completed_at_last_line or 0)
        rate = done / window if window > 0 else 0.0  # since the last line: a slowdown shows at once
        task.last_line, task.completed_at_last_line = now, task.completed
        left = (task.total - task.completed) / rate if rate > 0 else None
        share = task.completed / task.total if task.total else 1.0
        parts = [f"{task.label}: {int(task.completed):,}/{task.total:,} {task.unit} ({share:.1%})",
                 f"{rate:,.1f} {task.unit}/s",
                 f"{_clock(elapsed)} elapsed" + (f", ~{_clock(left)} left" if left is not None else "")]
        stats = task.fields.get("stats")
        self._write(" | ".join(parts + ([stats] if stats else [])))
