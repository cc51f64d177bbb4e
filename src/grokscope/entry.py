"""The ``grokscope`` command: chooses OpenMP's wait policy before torch loads, then runs the CLI."""

from grokscope.openmp import choose_wait_policy


def main() -> None:
    choose_wait_policy()
    from grokscope.cli import main as cli_main

    cli_main()
