"""Does a sweep's outcome differ between groups of members beyond the spread within each group?

The groups are the members sharing the values of some keys (Table 1's rows: ``task.a``,
``task.b``, ``task.p``; the seeds make the spread). The test is Kruskal-Wallis's H on the ranks
of the metric, with its p-value by permutation (the members' values shuffled between groups of
the same sizes): no normality assumed, exact in the limit of many permutations, and right for
three seeds a group, where H's chi-squared approximation is not. For an epoch metric
(``grokking_epoch``), a finished member without a value did not get there within its budget:
it ranks above every observed value (tied with the other such members), not left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from grokscope.errors import GrokscopeError


@dataclass(frozen=True)
class GroupValues:
    """One group's members: the keys' values, the metric per member (None: not reached)."""

    group: dict[str, object]
    values: list[float | None]

    def sorted_values(self) -> list[float | None]:
        """The values in increasing order, those not reached (None) last."""
        return sorted(self.values, key=lambda v: (v is None, v))

    def median(self) -> float | None:
        """The median, with unreached values above every value; None if it falls among them."""
        m = float(np.median([np.inf if v is None else v for v in self.values]))
        return None if m == np.inf else m


@dataclass(frozen=True)
class LeftOut:
    """Members not in any group: not finished, in a group the caller dropped, or without a
    value of a metric that is not an epoch."""

    unfinished: list[str]
    dropped: list[str]
    no_value: list[str]

    def describe(self) -> str:
        parts = [f"{len(names)} {why}{' (' + ', '.join(names) + ')' if why != 'dropped' else ''}"
                 for why, names in (("unfinished", self.unfinished), ("dropped", self.dropped),
                                    ("without a value", self.no_value)) if names]
        return "; ".join(parts)


@dataclass(frozen=True)
class GroupComparison:
    """Kruskal-Wallis H of ``metric`` over ``groups`` and its permutation p-value."""

    metric: str
    by: list[str]
    groups: list[GroupValues]
    statistic: float  # H, on ranks with ties averaged
    p_value: float  # (1 + permutations with H >= the observed) / (1 + permutations)
    permutations: int
    seed: int
    left_out: LeftOut

    def conclusion(self, level: float = 0.05) -> str:
        if self.p_value < level:
            return f"the groups differ beyond the spread within them (p = {self.p_value:.3g} < {level})"
        return f"no difference between the groups is shown at the {level} level (p = {self.p_value:.3g})"


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values`` [n], ties given their mean rank (inf ranks last, tied)."""
    return pd.Series(values).rank(method="average").to_numpy()


def kruskal_wallis(rank: np.ndarray, labels: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """H for each row of ``labels [permutation, n]`` (a group index per member) given the members'
    ranks [n]: ``12 / (N (N + 1)) * sum_g n_g (mean rank_g - (N + 1) / 2)^2``: [permutation]."""
    n = len(rank)
    sums = np.stack([np.where(labels == g, rank, 0.0).sum(-1) for g in range(len(sizes))], -1)  # [permutation, group]
    return 12 / (n * (n + 1)) * (sizes * (sums / sizes - (n + 1) / 2) ** 2).sum(-1)


def compare_groups(groups: list[GroupValues], metric: str, by: list[str], left_out: LeftOut,
                   permutations: int = 100_000, seed: int = 0) -> GroupComparison:
    """Kruskal-Wallis over ``groups`` with a permutation p-value (``permutations`` shuffles of
    the members between groups of the same sizes, from ``numpy``'s generator seeded ``seed``)."""
    if len(groups) < 2 or any(len(g.values) == 0 for g in groups):
        raise GrokscopeError("a comparison needs at least two groups with a member each")
    values = np.array([np.inf if v is None else v for g in groups for v in g.values], dtype=np.float64)
    sizes = np.array([len(g.values) for g in groups], dtype=np.float64)
    labels = np.repeat(np.arange(len(groups)), sizes.astype(int))  # [n]
    rank = ranks(values)
    observed = float(kruskal_wallis(rank, labels[None], sizes)[0])
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, permutations, 10_000):
        count = min(10_000, permutations - start)
        shuffled = rng.permuted(np.broadcast_to(labels, (count, len(labels))), axis=1)
        exceed += int((kruskal_wallis(rank, shuffled, sizes) >= observed - 1e-9).sum())
    return GroupComparison(metric=metric, by=by, groups=groups, statistic=observed,
                           p_value=(1 + exceed) / (1 + permutations), permutations=permutations, seed=seed,
                           left_out=left_out)


def parse_drop(text: str, by: list[str]) -> dict[str, str]:
    """``"task.a=7,task.b=7"`` -> {key: value as written}; every key must be one of ``by``."""
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in by:
            raise GrokscopeError(f"--drop takes KEY=VALUE pairs of the --by keys ({', '.join(by)}), not '{part}'")
        out[key.strip()] = value.strip()
    return out


def sweep_groups(out: str | Path, by: list[str], metric: str,
                 drop: list[dict[str, str]] = ()) -> tuple[list[GroupValues], LeftOut]:
    """The members of the sweep (or published results folder) ``out`` grouped by the keys
    ``by``, from its summary.parquet; returns the groups and the members left out."""
    path = Path(out) / "summary.parquet"
    if not path.is_file():
        raise GrokscopeError(f"{out} has no summary.parquet (run `grokscope sweep summary {out}` first)")
    table = pd.read_parquet(path)
    missing = [c for c in [*by, metric] if c not in table.columns]
    if missing:
        raise GrokscopeError(f"no column {', '.join(missing)} in {path} (the summary's columns are listed in it)")
    epoch_metric = metric.endswith("epoch")
    finished = table["status"] == "done"
    left_out = LeftOut(unfinished=list(table.loc[~finished, "member"]), dropped=[], no_value=[])
    groups = []
    for key, rows in table[finished].groupby(by, sort=True):
        group = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        if any(all(str(group[k]) == v for k, v in d.items()) for d in drop):
            left_out.dropped.extend(rows["member"])
            continue
        values = [None if pd.isna(v) else float(v) for v in rows[metric]]
        if not epoch_metric:
            left_out.no_value.extend(m for m, v in zip(rows["member"], values) if v is None)
            values = [v for v in values if v is not None]
        if values:
            groups.append(GroupValues(group=group, values=values))
    return groups, left_out
