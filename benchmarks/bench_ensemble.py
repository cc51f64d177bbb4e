"""Member-epochs per second of E members trained as one ensemble against the same E members
trained one after another, in this process, now; for the canonical model at several p.

    python benchmarks/bench_ensemble.py [--device D] [--members E] [--p P ...] [--epochs N]

Both sides run the training loop itself (train_run, train_ensemble) on the canonical
architecture at 30 % of (x + y) mod p, members differing in seed, for N epochs each from
initialisation (evaluation every 10 epochs and checkpoints as in a real run). Also prints
the largest E that fits in the device's memory for the canonical config: measured from the
peak CUDA memory of E = 1 and E = 2 on a GPU, from grokscope's memory estimate on a CPU.
"""

import argparse
import tempfile
import time
from pathlib import Path

from grokscope.entry import before_torch

before_torch()  # OpenMP's wait policy and MKL's strict mode, before torch loads, as the grokscope command does

import torch  # noqa: E402
from grokscope import load_preset, train_run  # noqa: E402
from grokscope.devices import hardware_name, resolve_device  # noqa: E402
from grokscope.sizing import available_memory, estimate_memory  # noqa: E402
from grokscope.training.ensemble import train_ensemble  # noqa: E402
from machine import describe  # noqa: E402


def configs(p: int, members: int, epochs: int, device: str) -> list:
    return [load_preset("nanda2023", [f"task.p={p}", f"train.epochs={epochs}", f"train.seed={seed}",
                                      f"train.device={device}", "train.threads=1"]) for seed in range(members)]


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t


def largest_ensemble(device: torch.device, work: Path) -> str:
    """The largest E that fits for the canonical config, and how it was found."""
    canonical = load_preset("nanda2023", [f"train.device={device}", "train.epochs=2"])
    if device.type == "cuda":
        peaks = []
        for e in (1, 2):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            train_ensemble([canonical.with_overrides([f"train.seed={s}"]) for s in range(e)],
                           [work / f"mem{e}-{s}" for s in range(e)])
            peaks.append(torch.cuda.max_memory_allocated(device))
        per_member = max(peaks[1] - peaks[0], 1)
        free, total = torch.cuda.mem_get_info(device)
        return (f"{int((free - peaks[0]) // per_member) + 1:,} members (measured: {per_member / 2**20:.0f} MiB per "
                f"member, {free / 2**30:.1f} GiB free of {total / 2**30:.1f})")
    estimate = estimate_memory(canonical)
    per_member = estimate.dataset + estimate.weights + estimate.activations
    free = available_memory() or 0
    return (f"{free // per_member:,} members (estimated: {per_member / 2**20:.0f} MiB per member by "
            f"grokscope.sizing, {free / 2**30:.1f} GiB available)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--p", type=int, nargs="+", default=[23, 59, 113])
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(describe())
    print(f"device: {device} ({hardware_name(device)}), {torch.get_num_threads()} threads available, "
          f"training on 1 thread; E = {args.members} members, {args.epochs} epochs each")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"\n{'p':>5} {'solo (member-epochs/s)':>24} {'ensemble':>10} {'ensemble / solo':>16}")
        for p in args.p:
            cs = configs(p, args.members, args.epochs, args.device)
            train_run(configs(p, 1, 20, args.device)[0], work / f"warm-{p}")  # first-call costs out of the timing
            t_solo = timed(lambda: [train_run(c, work / f"solo-{p}-{i}") for i, c in enumerate(cs)])
            t_ens = timed(lambda: train_ensemble(cs, [work / f"ens-{p}-{i}" for i in range(len(cs))]))
            n = args.members * args.epochs
            print(f"{p:>5} {n / t_solo:>24.1f} {n / t_ens:>10.1f} {t_solo / t_ens:>15.2f}x")
        print(f"\nlargest ensemble of the canonical config on {device}: {largest_ensemble(device, work)}")


if __name__ == "__main__":
    main()
