"""MkDocs hook: fills the generated references into the pages (grokscope/reference.py)."""

from grokscope.cli import app
from grokscope.reference import cli_reference, config_reference

MARKERS = {"<!-- config-reference -->": config_reference, "<!-- cli-reference -->": lambda: cli_reference(app)}


def on_page_markdown(markdown, page, config, files):
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
