"""Analysis families, registered by name: the one place that decides which analyses a run gets.

A family declares the runs it applies to (``applies_to``), computes its results as a frozen
record (``compute``; the record's type is ``record``), and provides what draws and tabulates
them: report sections and sweep-summary columns (``summary_row``). The pipeline, the report,
the sweep summary and the CLI iterate over the families; none of them dispatches on a task
or format string, and none reads a result by string keys: ``read_analysis`` turns a stored
document back into the families' records (``analysis/records.py``).

Exactly one *primary* family applies to a run. Its record is the document ``analysis.json``
(its ``format`` field names the family's schema, so old run directories still open) and it
draws the page's introduction (``page``). Every other family that applies is an *extension*:
its record goes under its ``name`` in the same document, and its sections (``sections``)
follow the primary's on the page. ``analysis.json`` lists the families that computed it under
``families``, primary first.

A new family is one module: a record (a frozen dataclass), a subclass of ``AnalysisFamily``
decorated with ``@register``, and an import of the module (the built-in ones are imported on
first use, below).
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import pandas as pd
import torch

from grokscope.analysis.records import from_json, to_json
from grokscope.atomic import atomic_write_parquet, atomic_write_text
from grokscope.config import RunConfig
from grokscope.errors import GrokscopeError
from grokscope.lock import run_lock
from grokscope.runs import Run
from grokscope.training import checkpoint

BUILTIN = ("grokscope.analysis.pipeline", "grokscope.analysis.group", "grokscope.analysis.sequence", "grokscope.analysis.clock_pizza",
           "grokscope.analysis.llc", "grokscope.analysis.lead_times")  # extensions run, and draw, in this order

Section = tuple[str, str, Callable[[], Any]]  # title, caption, a function that builds the Plotly figure
Page = tuple[str, list[Section], dict[str, str]]  # intro HTML, sections, notes shown above a section (by title)


@dataclass(frozen=True)
class Computed:
    """What a family's ``compute`` returns: its result record, and optionally per-checkpoint
    columns (an ``epoch`` column and its own; ``progress.parquet`` joins every family's on
    ``epoch``) and the arrays its figures need (``analysis.safetensors``; an extension's are
    stored as ``NAME.ARRAY``)."""

    result: Any  # an instance of the family's ``record``
    progress: pd.DataFrame | None = None
    arrays: dict[str, torch.Tensor] | None = None


@dataclass(frozen=True)
class Prior:
    """What an extension's ``compute`` is given: the primary family's record and the progress
    table so far (the primary's columns, then those of the extensions computed before it)."""

    primary: Any
    progress: pd.DataFrame | None


@dataclass(frozen=True)
class StoredAnalysis:
    """A run's analysis as records: the families that computed it (primary first), the
    primary's record, each extension's record by family name."""

    families: tuple["AnalysisFamily", ...]
    primary: Any
    extensions: dict[str, Any]

    @property
    def headline(self) -> str:
        return self.primary.headline

    @property
    def findings(self) -> list[str]:
        """Every family's findings, the primary's first."""
        return self.primary.findings


class AnalysisFamily:
    """One kind of analysis; subclasses set ``name`` and ``record`` (and ``primary``, ``format``).

    A primary family's record must have ``format``, ``headline`` and ``findings`` fields."""

    name: ClassVar[str]
    record: ClassVar[type]  # the frozen dataclass ``compute`` returns
    primary: ClassVar[bool] = False
    format: ClassVar[str | None] = None  # primary families: the analysis.json schema they write
    after: ClassVar[tuple[str, ...]] = ()  # extensions whose results this one reads, when they apply
    optional: ClassVar[bool] = False  # computed only when asked for by name (``grokscope analyze --with NAME``)

    def applies_to(self, config: RunConfig) -> bool:
        raise NotImplementedError

    def compute(self, run: Run, prior: Prior | None, on_checkpoint=None) -> Computed:
        """Analyse ``run``; an extension is given what the families before it found (``prior``)."""
        raise NotImplementedError

    def load(self, block: dict[str, Any]) -> Any:
        """The family's record from its stored JSON (the whole document, for the primary)."""
        return from_json(self.record, block, self.name)

    def page(self, run: Run, analysis: StoredAnalysis, progress: pd.DataFrame) -> Page:
        """Primary families: the page's introduction, sections and notes."""
        raise NotImplementedError

    def findings(self, result: Any) -> list[str]:
        """Extensions: lines added to the document's findings, from the family's record."""
        return []

    def sections(self, run: Run, analysis: StoredAnalysis, progress: pd.DataFrame) -> list[Section]:
        """Extensions: the report sections drawing ``analysis.extensions[self.name]``."""
        return []

    def summary_row(self, analysis: StoredAnalysis) -> dict[str, Any]:
        """Columns of the sweep summary for a member with this analysis."""
        return {}

    def sweep_sections(self, table: pd.DataFrame, axes: list[str]) -> list[Section]:
        """Sections of the sweep report drawing this family's summary columns over the members
        (``table``: the sweep summary; ``axes``: the sweep's axes, seeds included)."""
        return []


FAMILIES: dict[str, AnalysisFamily] = {}


def register(cls: type[AnalysisFamily]) -> type[AnalysisFamily]:
    """Class decorator: add one instance of the family to the registry, under its name."""
    if cls.name in FAMILIES and type(FAMILIES[cls.name]) is not cls:
        raise ValueError(f"an analysis family named {cls.name!r} is already registered")
    FAMILIES[cls.name] = cls()
    return cls


def unregister(name: str) -> None:
    FAMILIES.pop(name, None)


def _families() -> dict[str, AnalysisFamily]:
    for module in BUILTIN:
        importlib.import_module(module)
    return FAMILIES


def all_families() -> list[AnalysisFamily]:
    """Every registered family (built-in ones included), in registration order."""
    return list(_families().values())


def optional_families() -> list[str]:
    """The names of the families computed only on request."""
    return [name for name, f in _families().items() if f.optional]


def applicable(config: RunConfig, requested: Sequence[str] = ()) -> list[AnalysisFamily]:
    """The families that apply to a run (the optional ones only if ``requested``): the primary
    first, then the extensions in registration order, except that each comes after those it
    names in ``after``."""
    unknown = set(requested) - set(optional_families())
    if unknown:
        raise GrokscopeError(f"no optional analysis named {', '.join(sorted(unknown))} "
                             f"(optional analyses: {', '.join(optional_families())})")
    found = [f for f in _families().values() if f.applies_to(config) and (not f.optional or f.name in requested)]
    ordered = [f for f in found if f.primary]
    waiting = [f for f in found if not f.primary]
    while waiting:
        pending = {f.name for f in waiting}  # an extension waits only for applicable ones not yet placed
        ready = next((f for f in waiting if not pending.intersection(f.after)), None)
        if ready is None:
            raise GrokscopeError(f"analysis families {[f.name for f in waiting]} wait on each other (their `after`)")
        ordered.append(ready)
        waiting.remove(ready)
    return ordered


def families_in(analysis: dict) -> list[AnalysisFamily]:
    """The families that computed a stored analysis, the primary first (found by ``format``)."""
    fmt = analysis.get("format") if isinstance(analysis, dict) else None
    primary = [f for f in _families().values() if f.primary and f.format == fmt]
    if not primary:
        known = ", ".join(f.format for f in FAMILIES.values() if f.primary)
        raise GrokscopeError(f"analysis format {fmt!r} is not one this version reads ({known})")
    names = analysis.get("families", [])[1:]
    return primary + [FAMILIES[n] for n in names if n in FAMILIES]


def read_analysis(document: dict[str, Any]) -> StoredAnalysis:
    """A stored ``analysis.json`` as the records of the families that computed it (raises
    GrokscopeError, naming what is wrong, for a document this version cannot read)."""
    families = families_in(document)
    primary, *extensions = families
    return StoredAnalysis(families=tuple(families), primary=primary.load(document),
                          extensions={f.name: f.load(document.get(f.name)) for f in extensions})


def load_analysis(run_dir) -> StoredAnalysis:
    """The analysis of the run in ``run_dir`` (``grokscope analyze`` wrote it), as records."""
    path = Path(run_dir) / "analysis.json"
    if not path.is_file():
        raise GrokscopeError(f"{run_dir} has no analysis.json; run `grokscope analyze {run_dir}` first")
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise GrokscopeError(f"the analysis in {run_dir} is unreadable ({e}); re-run grokscope analyze") from None
    return read_analysis(document)


def analyze_run(run: Run, on_checkpoint=None, requested: Sequence[str] = ()) -> dict[str, Any]:
    """Analyse a finished run with every family that applies, and the optional ones
    ``requested``; writes ``analysis.json``, ``progress.parquet`` and (if any family stores
    arrays) ``analysis.safetensors``, and returns the document written (``read_analysis``
    gives its records)."""
    if not run.complete:
        raise GrokscopeError(f"run {run.paths.root} is incomplete (no summary.json); finish it first (re-run its command)")
    run.refuse_if_diverged()
    families = applicable(run.config, requested)
    if not families or not families[0].primary:
        raise GrokscopeError(f"no analysis applies to this run (task {run.config.task.kind}, model {run.config.model.kind})")
    primary, extensions = families[0], families[1:]
    root = run.paths.root
    with run_lock(root, "grokscope analyze"):
        computed = primary.compute(run, None, on_checkpoint)
        document = to_json(computed.result)
        document["families"] = [f.name for f in families]
        progress, arrays = computed.progress, dict(computed.arrays or {})
        for family in extensions:
            extension = family.compute(run, Prior(computed.result, progress))
            document[family.name] = to_json(extension.result)
            document["findings"].extend(family.findings(extension.result))
            if extension.progress is not None:
                progress = extension.progress if progress is None else progress.merge(
                    extension.progress, on="epoch", how="left", validate="one_to_one")
            arrays |= {f"{family.name}.{k}": v for k, v in (extension.arrays or {}).items()}
        if progress is not None:
            atomic_write_parquet(root / "progress.parquet", progress)
        if arrays:
            checkpoint.atomic_save(arrays, root / "analysis.safetensors", {"format": primary.format})
        atomic_write_text(root / "analysis.json", json.dumps(_finite(document), indent=2) + "\n")
    return document


def _finite(value):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
