"""``python -m grokscope`` runs the command-line interface."""

from grokscope.cli import main

main()
