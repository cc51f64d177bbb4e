"""Sweeps: many runs from one spec, run locally (a process per core), summarised in one table."""

from grokscope.sweeps.local import run_bisection, run_local
from grokscope.sweeps.spec import SweepSpec
from grokscope.sweeps.summary import summarize

__all__ = ["SweepSpec", "run_bisection", "run_local", "summarize"]
