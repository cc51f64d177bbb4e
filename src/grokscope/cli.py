"""The ``grokscope`` command line: run, train, tasks, presets."""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.table import Table
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grokscope.atomic import atomic_write_text
from grokscope.config import RunConfig, load_preset, preset_names, preset_run_name, preset_text
from grokscope.errors import GrokscopeError
from grokscope.models import MODELS
from grokscope.report import build_report
from grokscope.progress_lines import PlainProgress
from grokscope.sizing import parse_size
from grokscope.tasks import TASKS
from grokscope.training.loop import RunSummary, check_compatible, train_run

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Watch small transformers grok algorithmic tasks, and reverse-engineer what they learned.")
console = Console()
err_console = Console(stderr=True)

CANONICAL = "nanda2023"
RUN_PATIENCE = 2000


def user_config(load: Callable, *args):
    """Call a config loader; its ValueError (an invalid preset, key or value) becomes a GrokscopeError."""
    try:
        return load(*args)
    except ValueError as e:
        raise GrokscopeError(str(e)) from None


def user_errors(fn: Callable) -> Callable:
    """Turn a GrokscopeError into one ``error:`` line and exit status 2 (anything else is a bug
    and keeps its traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GrokscopeError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; run the same command again to resume from the last checkpoint")
            raise typer.Exit(130) from None

    return wrapper


def print_line(line: str) -> None:
    console.print(line, highlight=False, soft_wrap=True)


def counting_progress(label: str, unit: str) -> Progress | PlainProgress:
    """A progress bar that counts items: ``label ━━━ 12/113 unit 0:00:04``; without a terminal,
    a plain line every 10 s."""
    if not console.is_terminal:
        return PlainProgress(label, unit, print_line)
    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                    TimeElapsedColumn(), console=console)


def train_with_progress(config: RunConfig, out: Path, max_memory: Optional[str] = None) -> RunSummary:
    """Train with a live progress bar showing epoch, train/test loss and accuracy."""
    limit = parse_size(max_memory) if max_memory is not None else None
    check_compatible(config, limit)  # refuse before the bar appears
    cfg = config.train
    columns = [TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
               TimeElapsedColumn(), TextColumn("<"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}")]
    bar_or_lines = (Progress(*columns, console=console, transient=False) if console.is_terminal else
                    PlainProgress("training", "epochs", print_line))
    with bar_or_lines as progress:
        bar = progress.add_task("train", total=cfg.epochs, stats="")
        state = {"test": ""}
        recent: deque[float] = deque(maxlen=101)  # when the last 101 epochs ended: the speed over 100

        def on_epoch(row: dict) -> None:
            recent.append(time.perf_counter())
            if not math.isnan(row["test_acc"]):
                state["test"] = f"test loss {row['test_loss']:.3g} acc {row['test_acc']:.1%}"
            speed = f" | {(recent[-1] - recent[0]) / (len(recent) - 1) * 1000:.1f} ms/epoch" if len(recent) > 1 else ""
            progress.update(bar, completed=row["epoch"],
                            stats=f"train loss {row['train_loss']:.3g} acc {row['train_acc']:.1%} | {state['test']}{speed}")

        summary = train_run(config, out, on_epoch=on_epoch, max_memory=limit)
        progress.update(bar, completed=summary.final_epoch)
    return summary


DIVERGED_EXIT = 3  # the exit status of a run that stopped because something became NaN or infinite


def summary_line(summary: RunSummary, out: Path) -> str:
    """One line: grokking epoch, final metrics, wall time and the run path."""
    if summary.diverged is not None:
        d = summary.diverged
        return (f"diverged at epoch {d.epoch:,}: {d.quantity} became NaN or infinite; the last finite weights "
                f"are the run's last checkpoint; run: {out}")
    grok = (f"grokked at epoch {summary.grokking_epoch:,}" if summary.grokking_epoch is not None
            else "did not grok")
    minutes, seconds = divmod(round(summary.wall_seconds), 60)
    return (f"{grok}; stopped at epoch {summary.final_epoch:,} ({summary.stopped}); "
            f"train acc {summary.train_acc:.1%}, test acc {summary.test_acc:.1%}, "
            f"test loss {summary.test_loss:.3g}; {minutes}m{seconds:02d}s; run: {out}")


@app.command()
@user_errors
def run(
    preset: str = typer.Option(CANONICAL, "--preset", "-p", help="Preset name (see `grokscope presets`) or a path to a .toml preset file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory [default: runs/PRESET]."),
    full: bool = typer.Option(False, "--full", help="Train the paper's full 40K epochs instead of stopping after grokking."),
    patience: int = typer.Option(RUN_PATIENCE, help="Epochs to keep training after grokking (clean-up phase)."),
    overrides: List[str] = typer.Option([], "--set", help="Override a config value: part.key=value."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Refuse a run estimated to need more (e.g. 8G) [default: the memory available]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps (train.device) [default: the preset's, auto]."),
    log: List[str] = typer.Option([], "--log", help="Also stream metrics to: tensorboard (event files in RUN/tensorboard), wandb (offline unless WANDB_MODE says otherwise)."),
) -> None:
    """Train, analyse and report a run; by default the canonical one, (x + y) mod 113 as in Nanda et
    al. (2023), until it has grokked (and `--patience` epochs more)."""
    extra = [] if full else [f"train.stop_after_grok={patience}"]
    extra += [f"train.device={device}"] if device is not None else []
    extra += [f"train.log={','.join(log)}"] if log else []
    config = user_config(load_preset, preset, extra + list(overrides))
    out = out or Path("runs") / (preset_run_name(preset) + ("-full" if full else ""))
    summary = train_with_progress(config, out, max_memory)
    console.print(summary_line(summary, out), highlight=False, soft_wrap=True)
    if summary.diverged is not None:
        raise typer.Exit(DIVERGED_EXIT)
    if summary.diverged is not None:
        raise typer.Exit(DIVERGED_EXIT)
    analyze_with_progress(out)
    console.print(f"report: {build_report(out)}", highlight=False, soft_wrap=True)


def analyze_with_progress(run_dir: Path, requested: Sequence[str] = ()) -> dict:
    """Analyse a finished run (with the optional analyses ``requested``) with a progress bar;
    print the verdict and where the files went."""
    from grokscope.analysis.registry import analyze_run, read_analysis
    from grokscope.runs import load_run

    run_ = load_run(run_dir)
    run_.refuse_if_diverged()  # before the bar appears
    with counting_progress("analysing", "checkpoints") as progress:
        bar = progress.add_task("analyse", total=len(run_.checkpoint_epochs))
        analysis = analyze_run(run_, on_checkpoint=lambda done, total: progress.update(bar, completed=done),
                               requested=requested)
    stored = read_analysis(analysis)
    if run_.config.train.log:  # the progress measures go where the training metrics went
        import pandas as pd

        from grokscope.loggers import open_loggers

        progress = pd.read_parquet(run_dir / "progress.parquet").to_dict("records")
        for logger in open_loggers(run_.config.train.log, run_.paths.root, run_.config.to_dict(), first=False):
            logger.log_progress(progress, stored.headline)
            logger.close()
    console.print(stored.headline, highlight=False, soft_wrap=True)
    for line in stored.findings:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    console.print(f"wrote {run_dir / 'analysis.json'} and {run_dir / 'progress.parquet'}", highlight=False)
    return analysis


@app.command()
@user_errors
def train(
    preset: str = typer.Option(CANONICAL, "--preset", "-p", help="Preset name (see `grokscope presets`) or a path to a .toml preset file."),
    overrides: List[str] = typer.Option([], "--set", help="Override a config value: part.key=value."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Refuse a run estimated to need more (e.g. 8G) [default: the memory available]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps (train.device) [default: the preset's, auto]."),
    log: List[str] = typer.Option([], "--log", help="Also stream metrics to: tensorboard (event files in RUN/tensorboard), wandb (offline unless WANDB_MODE says otherwise)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory [default: runs/PRESET]."),
) -> None:
    """Train a preset, with overrides, into a run directory (resumes if it holds the same run)."""
    extra = [f"train.device={device}"] if device is not None else []
    extra += [f"train.log={','.join(log)}"] if log else []
    config = user_config(load_preset, preset, extra + list(overrides))
    out = out or Path("runs") / preset_run_name(preset)
    summary = train_with_progress(config, out, max_memory)
    console.print(summary_line(summary, out), highlight=False, soft_wrap=True)
    if summary.diverged is not None:
        raise typer.Exit(DIVERGED_EXIT)


@app.command()
@user_errors
def analyze(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    extra: List[str] = typer.Option([], "--with", help="Also run an optional analysis: llc (the local learning coefficient, ~1 min)."),
) -> None:
    """Reverse-engineer a finished run (the Fourier analysis for modular arithmetic, phase changes and
    attention heads for sequence tasks): writes RUN/analysis.json and RUN/progress.parquet."""
    analyze_with_progress(run_dir, extra)


@app.command()
@user_errors
def report(
    run_dir: Path = typer.Argument(..., help="An analysed run directory."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file [default: RUN/report.html]."),
    png: bool = typer.Option(False, "--png", help="Also save each figure as RUN/figures/figure-N.png (needs Chromium)."),
) -> None:
    """Write the run's HTML report (offline, one file), analysing the run first if needed."""
    from grokscope.report.browser import export_pngs

    if not (run_dir / "analysis.json").is_file() and (run_dir / "config.json").is_file():
        analyze_with_progress(run_dir)
    path = build_report(run_dir, out)
    console.print(f"report: {path}", highlight=False, soft_wrap=True)
    if png:
        for figure in export_pngs(path, run_dir / "figures"):
            console.print(f"png: {figure}", highlight=False)


@app.command()
@user_errors
def tasks() -> None:
    """List the tasks and their parameters (set them with --set task.NAME=VALUE)."""
    for name in TASKS.names():
        cls = TASKS.get(name)
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        console.print(f"[bold]{name}[/]: {summary}", highlight=False)
        for field, tp, default in cls.describe():
            console.print(f"    task.{field:<12} {tp:<34} default {default!r}", highlight=False)
    console.print("\nmodels: " + ", ".join(MODELS.names()) + " (see --set model.kind=...)", highlight=False)


@app.command()
@user_errors
def presets() -> None:
    """List the presets (GROKSCOPE_PRESETS's folders first, then the shipped ones), one per line, name first."""
    from grokscope.sweeps.spec import sweep_preset_description, sweep_preset_names

    for name in preset_names():
        typer.echo(f"{name}\t{preset_text(name).get('description', '')}")
    typer.echo("\nsweeps (grokscope sweep NAME --out DIR):")
    for name in sweep_preset_names():
        typer.echo(f"{name}\t{sweep_preset_description(name)}")


class SweepGroup(TyperGroup):
    """``grokscope sweep SPEC ...`` means ``grokscope sweep run SPEC ...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@app.command()
@user_errors
def runs(folder: Path = typer.Argument(Path("runs"), help="A folder of runs (searched at any depth).")) -> None:
    """List the runs under a folder: task, status, grokking epoch, verdict."""
    from grokscope.catalog import summaries

    table = summaries(folder)
    columns = [c for c in ["run", "task", "task.op", "task.p", "status", "grokking_epoch", "test_acc", "headline"]
               if c in table.columns]
    console.print(table[columns].to_string(index=False), highlight=False, soft_wrap=True)


@app.command()
@user_errors
def query(folder: Path = typer.Argument(..., help="A folder of runs."),
          sql: str = typer.Argument(..., help="DuckDB SQL over the views summaries, metrics and progress.")) -> None:
    """Run SQL over every run under a folder (DuckDB; views summaries, metrics, progress)."""
    from grokscope.catalog import query as run_query

    console.print(run_query(folder, sql).to_string(index=False), highlight=False, soft_wrap=True)


sweep_app = typer.Typer(cls=SweepGroup, no_args_is_help=True,
                        help="Sweeps: grokscope sweep SPEC --out DIR; grokscope sweep summary DIR.")
app.add_typer(sweep_app, name="sweep")


@sweep_app.command("run")
@user_errors
def sweep_run(
    spec: str = typer.Argument(..., help="A sweep spec file (TOML: preset, [set], points, [axes]) or a shipped "
                                         "sweep's name (see `grokscope presets`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Sweep directory: one run directory per member."),
    backend: str = typer.Option("local", help="local (a process per core) or ray."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address [default: start a local Ray instance]."),
    workers: Optional[int] = typer.Option(None, min=1, help="Processes (local) or CPUs (local Ray) [default: one per core; a "
                                                 "bisection: 1, and with more the next rounds' candidates train alongside]."),
    device: Optional[str] = typer.Option(None, "--device", help="train.device of every member (auto, cpu, cuda, cuda:N, mps)."),
    log: List[str] = typer.Option([], "--log", help="Every member also streams to: tensorboard (MEMBER/tensorboard), wandb (one group per sweep)."),
    batch: Optional[bool] = typer.Option(None, "--batch/--no-batch", help="Train members that share shapes as ensembles "
                                         "(one stacked model per process), or one member at a time [default: batch on a GPU, "
                                         "and on a CPU for small models (p <= 32), where it was measured to win]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Most members per ensemble [local default: a "
                                             "group shared out evenly between the workers; ray default: 1]."),
) -> None:
    """Train (and analyse) every member of a sweep; finished members are skipped, interrupted ones resume."""
    from dataclasses import replace

    from grokscope.devices import resolve_device
    from grokscope.loggers import check_loggers
    from grokscope.sweeps import SweepSpec, run_bisection, run_local, summarize
    from grokscope.sweeps.ray_backend import run_ray

    if backend not in ("local", "ray"):
        raise GrokscopeError(f"unknown sweep backend '{backend}' (available: local, ray)")
    sweep = user_config(SweepSpec.load, spec)
    if device is not None:
        user_config(load_preset, sweep.preset, [f"train.device={device}"])  # a valid value ...
        resolve_device(device)  # ... that this machine has, before any member starts
        sweep = replace(sweep, set={**sweep.set, "train.device": device})
    if log:
        user_config(load_preset, sweep.preset, [f"train.log={','.join(log)}"])  # names loggers that exist
        check_loggers(tuple(log))  # whose libraries are installed
        sweep = replace(sweep, set={**sweep.set, "train.log": ",".join(log)})
    if sweep.bisect is not None and backend != "local":
        raise GrokscopeError("a bisection runs its rounds one after another; use --backend local")
    members = sweep.members() if sweep.bisect is None else [None] * sweep.bisect["rounds"]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.toml", sweep.text)
    with counting_progress("sweep", "members") as progress:
        bar = progress.add_task("sweep", total=len(members))
        advance = lambda m, err: progress.advance(bar)  # noqa: E731
        if sweep.bisect is not None:
            failures, stopped = run_bisection(sweep, out, workers or 1, on_member=advance)
            members = [p for p in out.iterdir() if (p / "config.json").is_file() and (p / "summary.json").is_file()
                       or p.name in failures]
        elif backend == "local":
            failures = run_local(sweep, out, workers, on_member=advance, batch=batch, batch_size=batch_size)
        else:
            size = 1 if batch is False else batch_size or (None if batch else 1)  # None: a whole group per task
            failures = run_ray(sweep, out, address, workers, on_member=advance, batch_size=size)
    summarize(out)
    console.print(f"{len(members) - len(failures)} of {len(members)} members done; summary: {out / 'summary.csv'}",
                  highlight=False)
    for name, error in failures.items():
        err_console.print(f"failed: {name}: {error.splitlines()[0]}", highlight=False)
    if sweep.bisect is not None:
        if stopped:
            console.print(f"stopped unfinished (speculative, not needed; resumable): "
                          f"{', '.join(sweep.member_at(v).name for v in stopped)}", highlight=False)
        result = json.loads((out / "bisection.json").read_text())
        console.print(f"bisection of {result['key']}: grokked at {result['grokked_at']}, "
                      f"not at {result['not_grokked_at']} ({out / 'bisection.json'})", highlight=False)


@sweep_app.command("summary")
@user_errors
def sweep_summary(out: Path = typer.Argument(..., help="A sweep directory.")) -> None:
    """Print the sweep's summary table and write it as summary.parquet and summary.csv."""
    from grokscope.sweeps import summarize

    table = summarize(out)
    columns = [c for c in ("member", "status", "grokking_epoch", "test_acc", "key_frequencies",
                           "implements_fourier_multiplication", "key_representations", "implements_composition")
               if c in table.columns]
    console.print(table[columns].to_string(index=False), highlight=False, soft_wrap=True)
    console.print(f"wrote {out / 'summary.parquet'} and {out / 'summary.csv'}", highlight=False)


@sweep_app.command("compare")
@user_errors
def sweep_compare(
    out: Path = typer.Argument(..., help="A sweep directory or a published results folder (with summary.parquet)."),
    by: List[str] = typer.Option(..., "--by", help="A key whose values make the groups (repeat: task.a --by task.b)."),
    metric: str = typer.Option("grokking_epoch", help="A summary column; for an *epoch column a member without "
                               "a value (not reached in its budget) ranks above every value."),
    drop: List[str] = typer.Option([], "--drop", help="Leave out a group, as KEY=VALUE,... of the --by keys (repeat)."),
    permutations: int = typer.Option(100_000, min=100, help="Shuffles for the p-value."),
    seed: int = typer.Option(0, help="Seed of the shuffles."),
) -> None:
    """Does METRIC differ between the groups beyond the spread within them? Kruskal-Wallis H, p by permutation."""
    from grokscope.sweeps.compare import compare_groups, parse_drop, sweep_groups

    groups, left_out = sweep_groups(out, list(by), metric, [parse_drop(d, list(by)) for d in drop])
    result = compare_groups(groups, metric, list(by), left_out, permutations, seed)
    table = Table(*by, "members", f"{metric} (sorted; - not reached)", "median")
    for g in result.groups:
        median = g.median()
        table.add_row(*(str(g.group[k]) for k in by), str(len(g.values)),
                      " / ".join("-" if v is None else f"{v:,.6g}" for v in g.sorted_values()),
                      "-" if median is None else f"{median:,.6g}")
    console.print(table)
    if result.left_out.describe():
        console.print(f"members left out: {result.left_out.describe()}", highlight=False)
    console.print(f"Kruskal-Wallis H = {result.statistic:.3f} over {len(result.groups)} groups; p = {result.p_value:.3g} "
                  f"({result.permutations:,} permutations, seed {result.seed}): {result.conclusion()}", highlight=False)


@sweep_app.command("publish")
@user_errors
def sweep_publish(out: Path = typer.Argument(..., help="A sweep directory."),
                  to: Path = typer.Option(..., "--to", help="Folder for the results, e.g. docs/results/NAME.")) -> None:
    """Copy the sweep's summary and each member's config, summary, analysis and metrics (no checkpoints) to a folder."""
    from grokscope.sweeps.publish import publish

    written = publish(out, to)
    size = sum(p.stat().st_size for p in written)
    console.print(f"wrote {len(written)} files ({size / 1e6:.1f} MB) under {to}", highlight=False)


@sweep_app.command("report")
@user_errors
def sweep_report(out: Path = typer.Argument(..., help="A sweep directory."),
                 png: bool = typer.Option(False, "--png", help="Also save each figure as DIR/figures/figure-N.png (needs Chromium).")) -> None:
    """Write DIR/report.html: phase diagrams, curves by axis value, key frequencies across members."""
    from grokscope.report.browser import export_pngs
    from grokscope.report.sweep import build_sweep_report

    path = build_sweep_report(out)
    console.print(f"report: {path}", highlight=False)
    if png:
        for figure in export_pngs(path, out / "figures"):
            console.print(f"png: {figure}", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
