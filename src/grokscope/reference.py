"""The config and CLI references as Markdown, generated from the config classes and the CLI
itself (the docs' ``docs/hooks.py`` puts them into the pages, so nothing is typed twice).

A config key's meaning is the comment on its field's line in the class that declares it.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import typer

from grokscope.config import TRAINERS
from grokscope.models import MODELS
from grokscope.tasks import TASKS

FIELD_LINE = re.compile(r"^\s+(\w+)\s*:[^=]*(=.*?)?\s*#\s*(?P<comment>.*)$")


def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from the source lines of ``cls`` and its bases (the nearest wins)."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ == "builtins" or klass.__module__.startswith(("typing", "abc")):
            continue
        for line in inspect.getsource(klass).splitlines():
            match = FIELD_LINE.match(line)
            if match:
                comments[match.group(1)] = match.group("comment").strip()
    return comments


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    return f"`{value!r}`"


def config_table(part: str, cls: type) -> str:
    """A Markdown table of one config class's keys: key, default, meaning."""
    comments = field_comments(cls)
    rows = [f"| `{part}.{f.name}` | {_default(f)} | {_cell(comments.get(f.name, ''))} |" for f in dataclasses.fields(cls)]
    doc = inspect.getdoc(cls) or ""
    head = f"### `{part}.{cls.kind_key} = \"{cls.kind}\"`\n\n{doc.splitlines()[0] if doc else ''}\n\n"
    return head + "| key | default | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def config_reference() -> str:
    """Every config key of every task, model and trainer, with its default and meaning."""
    parts = []
    for part, registry in (("task", TASKS), ("model", MODELS), ("train", TRAINERS)):
        parts.append(f"## {part}\n")
        parts += [config_table(part, registry.get(name)) for name in registry.names()]
    return "\n".join(parts)


def cli_reference(app: typer.Typer) -> str:
    """Every command of the CLI with its help text, as ``grokscope COMMAND --help`` prints it."""
    root = typer.main.get_command(app)
    sections = []

    def walk(command, path: list[str]) -> None:
        if hasattr(command, "commands"):  # a group (typer ships its own click)
            for name in sorted(command.commands):
                walk(command.commands[name], [*path, name])
            return
        ctx = command.make_context(" ".join(path), [], resilient_parsing=True)
        usage = command.get_usage(ctx)
        options = [p.get_help_record(ctx) for p in command.get_params(ctx)]
        rows = "\n".join(f"| `{name}` | {_cell(text or '')} |" for name, text in filter(None, options))
        sections.append(f"### `{' '.join(path)}`\n\n{inspect.cleandoc(command.help or '')}\n\n```\n{usage}\n```\n\n"
                        f"| option | meaning |\n|---|---|\n{rows}\n")

    walk(root, ["grokscope"])
    return "\n".join(sections)
