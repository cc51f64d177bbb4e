"""``python -m grokscope`` runs the command-line interface."""

from grokscope.entry import main

main()
