"""The local backend: every member of a sweep as an ordinary run directory, a process per core.

Members train on one thread each (the spec's members get ``train.threads = 1``), since the
cores are shared out between processes. Members that share shapes may train as ensembles
(sweeps/batching.py): one process trains several of them as one stacked model. A member already finished is skipped; one interrupted resumes (``train_run`` does both); one
that fails is recorded in ``DIR/failures.json`` with its error while the rest completes.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

from grokscope.errors import GrokscopeError
from grokscope.atomic import atomic_write_text
from grokscope.sweeps.batching import batch_by_default, ensemble_batches
from grokscope.sweeps.spec import Member, SweepSpec


def run_member(config_dict: dict, out: str) -> str | None:
    """Train one member (one thread) and analyse it when its task supports the analysis.
    Returns None, or the error in one line."""
    return run_batch([config_dict], [out])[out]


def run_batch(config_dicts: list[dict], outs: list[str]) -> dict[str, str | None]:
    """Train members as one ensemble (one member: alone), then analyse each when its task
    supports the analysis. Returns {out: None, or the error in one line}. A member that cannot
    start (e.g. its directory holds another run) fails alone; an error in the ensemble's
    training is every member's."""
    from grokscope.config import RunConfig
    from grokscope.runs import check_run_dir
    from grokscope.training.ensemble import train_ensemble
    from grokscope.training.loop import train_run

    errors: dict[str, str | None] = {}
    ready = []
    for config_dict, out in zip(config_dicts, outs):
        try:
            config = RunConfig.from_dict(config_dict)
            check_run_dir(Path(out), config)
            ready.append((config, out))
        except Exception as e:  # noqa: BLE001 - a failed member is recorded, the sweep goes on
            errors[out] = _one_line(e)
    try:
        if len(ready) == 1:
            train_run(*ready[0])
        elif ready:
            train_ensemble([c for c, _ in ready], [o for _, o in ready])
    except Exception as e:  # noqa: BLE001
        errors |= dict.fromkeys([o for _, o in ready], _one_line(e))
    for _, out in ready:
        errors.setdefault(out, _analyse(out))
    return {out: errors[out] for out in outs}


def _analyse(out: str) -> str | None:
    """Analyse a trained member (unless done); a task without the analysis is noted, not an error."""
    from grokscope.analysis.registry import analyze_run
    from grokscope.runs import load_run

    try:
        if not (Path(out) / "analysis.json").is_file():
            try:
                analyze_run(load_run(out))
            except GrokscopeError as e:  # e.g. a task without a Fourier analysis: the run still counts
                atomic_write_text(Path(out) / "analysis_skipped.txt", f"{e}\n")
        return None
    except Exception as e:  # noqa: BLE001
        return _one_line(e)


def _one_line(e: Exception) -> str:
    return f"{type(e).__name__}: {e}".splitlines()[0] + "\n" + traceback.format_exc(limit=3)


def run_local(spec: SweepSpec, out: str | Path, workers: int | None = None,
              on_member: Callable[[Member, str | None], None] | None = None,
              batch: bool | None = None, batch_size: int | None = None) -> dict[str, str]:
    """Run every member of ``spec`` under ``out``, in ``workers`` processes; returns {member
    name: error} for failures. ``batch``: train members that share shapes as ensembles (None:
    where ``batching.batch_by_default`` says it pays), at most ``batch_size`` per ensemble
    (default: a group's members shared out evenly between the workers)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    members = spec.members()
    workers = workers or min(len(members), os.cpu_count() or 1)
    if batch is None:
        batch = batch_by_default(members[0].config)
    batches = ensemble_batches(members, batch_size if batch else 1, workers)
    failures: dict[str, str] = {}
    jobs = [(b, [m.config.to_dict() for m in b], [str(out / m.name) for m in b]) for b in batches]
    if workers == 1 or len(jobs) == 1:
        for b, configs, paths in jobs:
            record_batch(b, run_batch(configs, paths), failures, on_member)
    else:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_batch, configs, paths): b for b, configs, paths in jobs}
            for future in as_completed(futures):
                record_batch(futures[future], future.result(), failures, on_member)
    write_failures(out, failures)
    return failures


def record_batch(batch: list[Member], errors: dict[str, str | None], failures: dict, on_member) -> None:
    """Note each member of a finished batch (``errors`` by output path, in the batch's order)."""
    for member, error in zip(batch, errors.values()):
        record(member, error, failures, on_member)


def bisection_ahead(low: int, high: int, rounds: int) -> list[int]:
    """The midpoints that the next ``rounds`` rounds of bisecting (low, high) may train, breadth
    first: this round's, then the next round's two candidates (lower half first), and so on."""
    level, points = [(low, high)], []
    for _ in range(rounds):
        below = []
        for lo, hi in level:
            if hi - lo > 1:
                mid = (lo + hi) // 2
                points.append(mid)
                below += [(lo, mid), (mid, hi)]
        level = below
    return points


def _train_in_process(config_dict: dict, out: str, conn) -> None:
    """A speculative bisection member's process: train it and send back its error (or None)."""
    conn.send(run_member(config_dict, out))
    conn.close()


class SpeculativeMembers:
    """Bisection members training in their own processes, at most ``workers`` at a time, so that
    the next rounds' candidates train while this round's midpoint does. A worker freed by a
    candidate that finishes takes up the next candidate at once."""

    def __init__(self, spec: SweepSpec, out: Path, workers: int):
        self.spec, self.out, self.workers = spec, out, workers
        self.context = multiprocessing.get_context("spawn")
        self.running: dict[int, tuple] = {}  # value -> (process, receiving end of its pipe)
        self.errors: dict[int, str | None] = {}  # value -> the outcome of a member that ended
        self.candidates: list[int] = []
        self.stopped: list[int] = []

    def finished(self, value: int) -> bool:
        """Whether the member at ``value`` is trained and analysed (a re-run reuses it as it is)."""
        root = self.out / self.spec.member_at(value).name
        return (root / "summary.json").is_file() and any((root / f).is_file() for f in ("analysis.json", "analysis_skipped.txt"))

    def keep(self, candidates: list[int], start: bool = True) -> None:
        """Stop every running member not among ``candidates`` (no round can need it now: its
        directory stays resumable); then, if ``start``, train the unfinished candidates in their
        order on the free workers."""
        for value in [v for v in self.running if v not in candidates]:
            process, _ = self.running.pop(value)
            process.terminate()
            process.join()
            self.stopped.append(value)
        self.candidates = candidates if start else []
        self._fill()

    def _fill(self) -> None:
        for value in self.candidates:
            if len(self.running) >= self.workers:
                return
            if value not in self.running and value not in self.errors and not self.finished(value):
                receive, send = self.context.Pipe(duplex=False)
                member = self.spec.member_at(value)
                process = self.context.Process(target=_train_in_process,
                                               args=(member.config.to_dict(), str(self.out / member.name), send))
                process.start()
                send.close()
                self.running[value] = (process, receive)

    def _collect(self, value: int) -> None:
        """The ended member at ``value``: its outcome into ``errors``, its worker freed."""
        process, receive = self.running.pop(value)
        try:
            error = receive.recv()
        except EOFError:  # the process died without a word (killed, out of memory)
            error = None
        process.join()
        self.errors[value] = error if process.exitcode == 0 else \
            error or f"the member's process ended with exit code {process.exitcode}"

    def result(self, value: int) -> str | None:
        """Wait for the member at ``value`` (started by ``keep``; None at once if it was finished
        before): its error, or None. Candidates that end meanwhile free their workers for the next."""
        while value in self.running:
            ends = {receive: v for v, (_, receive) in self.running.items()}
            for ready in multiprocessing.connection.wait(list(ends)):
                self._collect(ends[ready])
            if value in self.running:  # once it has ended, the next round chooses what to start
                self._fill()
        return self.errors.pop(value, None)


def run_bisection(spec: SweepSpec, out: str | Path, workers: int = 1,
                  on_member: Callable[[Member, str | None], None] | None = None) -> tuple[dict[str, str], list[int]]:
    """Bisect ``spec.bisect["key"]`` between low and high: each round trains the midpoint and
    keeps the half whose ends differ in outcome (grokked or not). Finished members are reused, so
    a re-run repeats no training. Writes ``DIR/bisection.json`` with every round and the final
    bracket. Returns the failures and the values of speculative members stopped unfinished.

    With one worker each round trains in this process. With ``workers`` > 1 the members that the
    next rounds may need (``bisection_ahead``) train beside the midpoint, one process each
    (with 3 workers: both of the next round's candidates, so every round after the first waits
    only for its own midpoint's remaining epochs); the rounds, their points and outcomes are the
    same as with one worker. A speculative member that the bracket has left behind is stopped."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    b = spec.bisect
    low, high = b["low"], b["high"]
    rounds, failures = [], {}
    ahead = SpeculativeMembers(spec, out, workers) if workers > 1 else None
    try:
        for done in range(b["rounds"]):
            if high - low <= 1:
                break
            mid = (low + high) // 2
            member = spec.member_at(mid)
            if ahead is None:
                error = run_member(member.config.to_dict(), str(out / member.name))
            else:  # a round whose member has ended starts nothing: its bracket is stale already
                decided = mid not in ahead.running and (mid in ahead.errors or ahead.finished(mid))
                ahead.keep(bisection_ahead(low, high, b["rounds"] - done), start=not decided)
                error = ahead.result(mid)
            record(member, error, failures, on_member)
            if error is not None:
                break
            grokked = json.loads((out / member.name / "summary.json").read_text())["grokking_epoch"] is not None
            rounds.append({"value": mid, "grokked": grokked})
            low, high = (low, mid) if grokked else (mid, high)
    finally:
        if ahead is not None:
            ahead.keep([])
    result = {"key": b["key"], "rounds": rounds, "not_grokked_at": low, "grokked_at": high,
              "rule": "low is assumed not to grok and high to grok; each round's midpoint replaces the end with its outcome"}
    atomic_write_text(out / "bisection.json", json.dumps(result, indent=2) + "\n")
    write_failures(out, failures)
    return failures, [] if ahead is None else ahead.stopped


def write_failures(out: Path, failures: dict[str, str]) -> None:
    """``DIR/failures.json``: {member name: error} of the members that failed (read by the summary)."""
    atomic_write_text(out / "failures.json", json.dumps(failures, indent=2) + "\n")


def record(member: Member, error: str | None, failures: dict, on_member) -> None:
    """Note one finished member (any backend): its error if it failed, then the progress callback."""
    if error is not None:
        failures[member.name] = error
    if on_member is not None:
        on_member(member, error)
