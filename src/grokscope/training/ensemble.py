"""Train several runs whose models share shapes as one ensemble: one stacked forward and one
backward per epoch, each member with its own AdamW state, Grokfast filter and run directory.

Members may differ in everything that is theirs alone (``PER_MEMBER``): the seed, the
optimizer's settings and schedule, the budget and stopping rule, the loggers, and the data
split (``task.seed``, ``task.frac_train``: each member trains on its own examples, padded to
the largest member's count with examples that are not scored). Everything that shapes the
computation (task, model, trainer kind, loss, device) must be the same. A member that stops
leaves the stack and is finished there; its directory is an ordinary run directory, which
``load_run``, ``analyze`` and ``report`` read as any other (``summary.json`` records
``execution.ensemble``, how many trained together, as it records the device).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from grokscope.config import RunConfig, flatten
from grokscope.devices import resolve_device
from grokscope.errors import GrokscopeError
from grokscope.lock import run_lock
from grokscope.runs import check_run_dir, prepare_run_dir
from grokscope.sizing import available_memory, estimate_memory, gib
from grokscope.training.loop import RunSummary, Trainee, check_compatible, train_together, training_session

PER_MEMBER = frozenset({
    "train.seed", "train.lr", "train.weight_decay", "train.betas", "train.warmup_steps", "train.decay_params",
    "train.epochs", "train.stop_after_grok", "train.grok_threshold", "train.eval_every", "train.checkpoint_every",
    "train.log", "train.orthograd", "train.grokfast", "train.grokfast_alpha", "train.grokfast_lamb",
    "train.grokfast_window", "task.seed", "task.frac_train",
})


def _shared(config: RunConfig) -> dict:
    """The config's flat keys and values without ``PER_MEMBER`` ones."""
    return {k: v for k, v in flatten(config.to_dict()).items() if k not in PER_MEMBER}


def shared_settings(config: RunConfig) -> str:
    """What members of one ensemble must have in common: the config without ``PER_MEMBER``
    keys, as canonical JSON (equal strings: the runs can train together)."""
    return json.dumps(_shared(config), sort_keys=True)


def check_ensemble(configs: list[RunConfig]) -> None:
    """Refuse configs that cannot train as one ensemble, naming the keys that differ."""
    if not configs:
        raise GrokscopeError("an ensemble needs at least one member")
    first = _shared(configs[0])
    for i, config in enumerate(configs[1:], start=1):
        other = _shared(config)
        differ = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
        if differ:
            raise GrokscopeError(f"ensemble members 0 and {i} differ in {', '.join(differ)}; members may differ "
                                 f"only in {', '.join(sorted(PER_MEMBER))}")


EnsembleCallback = Callable[[int, dict], None]


def train_ensemble(configs: list[RunConfig], outs: list[str | Path], max_memory: int | None = None,
                   on_epoch: EnsembleCallback | None = None) -> list[RunSummary]:
    """Train member ``i`` of ``configs`` into run directory ``outs[i]`` (new, or resumed, or
    already finished), all as one ensemble; returns each member's summary.

    Every check (configs, directories, device, memory for all members together) happens before
    anything is written. Members resumed at different epochs train as one ensemble per
    starting epoch, one after the other. ``on_epoch(i, row)`` sees member ``i``'s metrics rows.
    """
    if len(configs) != len(outs):
        raise GrokscopeError(f"{len(configs)} configs but {len(outs)} output directories")
    roots = [Path(o).resolve() for o in outs]
    if len(set(roots)) != len(roots):
        raise GrokscopeError("two ensemble members have the same output directory")
    check_ensemble(configs)
    for config in configs:
        check_compatible(config, max_memory)
    _check_memory(configs, max_memory)
    for config, root in zip(configs, roots):
        check_run_dir(root, config)
    device = resolve_device(configs[0].train.device)
    paths = [prepare_run_dir(root, config) for config, root in zip(configs, roots)]
    summaries: dict[int, RunSummary] = {}
    with ExitStack() as locks:
        for p in paths:
            locks.enter_context(run_lock(p.root, "grokscope train (ensemble)"))
        with training_session(configs[0].train.threads, device):
            by_start: dict[int, list[tuple[int, Trainee]]] = {}
            for i, (config, p) in enumerate(zip(configs, paths)):
                if p.summary.is_file():
                    summaries[i] = RunSummary.from_dict(json.loads(p.summary.read_text()))
                    continue
                callback = None if on_epoch is None else (lambda row, i=i: on_epoch(i, row))
                trainee = Trainee(config, p, device, callback)
                by_start.setdefault(trainee.start, []).append((i, trainee))
            for start in sorted(by_start):
                group = by_start[start]
                for (i, _), summary in zip(group, train_together([t for _, t in group])):
                    summaries[i] = summary
    return [summaries[i] for i in range(len(configs))]


def _check_memory(configs: list[RunConfig], limit: int | None) -> None:
    """Refuse an ensemble whose members' estimates together exceed ``limit`` (default: the
    memory available now)."""
    total = sum(estimate_memory(c).total for c in configs)
    limit = limit if limit is not None else available_memory()
    if limit is not None and total > limit:
        raise GrokscopeError(f"these {len(configs)} members need about {gib(total)} together; the limit is "
                             f"{gib(limit)}: train fewer members at once")
