"""The ``grokscope`` command: chooses what torch reads at start-up (OpenMP's wait policy, MKL's
reproducibility mode) before it loads, then runs the CLI."""

from grokscope.blas import choose_strict_blas
from grokscope.openmp import choose_wait_policy


def before_torch() -> None:
    """Everything chosen before torch loads, as the ``grokscope`` command does (benchmarks too)."""
    choose_wait_policy()
    choose_strict_blas()


def main() -> None:
    before_torch()
    from grokscope.cli import main as cli_main

    cli_main()
