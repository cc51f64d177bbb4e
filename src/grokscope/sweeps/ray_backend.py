"""The Ray backend: the same members as the local backend, as tasks on a Ray cluster.

``address`` names an existing cluster (``ray://host:10001`` or ``host:6379``); without it a
local Ray instance is started on loopback and stopped afterwards. Every member writes its run
directory under ``out``, which must be visible to every node (a shared filesystem on a real
cluster). Ray is an optional extra: ``pip install 'grokscope[ray]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from grokscope.errors import GrokscopeError
from grokscope.sweeps.batching import ensemble_batches
from grokscope.sweeps.local import record_batch, run_batch, write_failures
from grokscope.sweeps.spec import Member, SweepSpec


def run_ray(spec: SweepSpec, out: str | Path, address: str | None = None, num_cpus: int | None = None,
            temp_dir: str | None = None, on_member: Callable[[Member, str | None], None] | None = None,
            batch_size: int | None = 1) -> dict[str, str]:
    """Run every member of ``spec`` as Ray tasks (one CPU each), each task training up to
    ``batch_size`` members that share shapes as one ensemble (None: all of them); returns
    {member name: error}."""
    try:
        import ray
    except ImportError:
        raise GrokscopeError("Ray is not installed: pip install 'grokscope[ray]'") from None
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = not ray.is_initialized()
    if started:
        if address is None:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, loopback-only instance
            ray.init(num_cpus=num_cpus or os.cpu_count(), _node_ip_address="127.0.0.1", include_dashboard=False,
                     _temp_dir=temp_dir, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(run_batch)
        batches = ensemble_batches(spec.members(), batch_size, 1)
        refs = {task.remote([m.config.to_dict() for m in b], [str(out / m.name) for m in b]): b for b in batches}
        failures: dict[str, str] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            record_batch(refs[done[0]], ray.get(done[0]), failures, on_member)
    finally:
        if started:
            ray.shutdown()
    write_failures(out, failures)
    return failures
