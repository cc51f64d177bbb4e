"""Sweep specs: a base preset, overrides for every member, and axes whose product is the grid.

```toml
preset = "nanda2023"
[set]
"task.p" = 23
"train.epochs" = 2000
[axes]
"train.seed" = [0, 1]
"train.weight_decay" = [1.0, 0.3]
```

Grids that are not products (Table 1 of seed 001: chosen (a, b, p) triples) list their
points explicitly; the points are crossed with the axes:

```toml
points = [{ "task.a" = 3, "task.b" = 3 }, { "task.a" = 7, "task.b" = 7, "task.p" = 101 }]
```

A ``[bisect]`` table replaces the grid by a bisection over one integer key (seed 003 looked
for the training-set size where 5-digit addition starts to grok by hand): each round trains
the midpoint and keeps the half where the outcome (grokked or not) changes:

```toml
[bisect]
key = "task.n_train"
low = 100     # expected not to grok
high = 3000   # expected to grok
rounds = 5
```

A spec is a file, or the name of one shipped in ``grokscope/sweeps/presets``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from grokscope.config import RunConfig, load_preset


@dataclass(frozen=True)
class Member:
    """One point of the grid: its axis values, its directory name and its full config."""

    values: dict[str, Any]  # axis key -> value
    name: str
    config: RunConfig


SPEC_KEYS = ("description", "preset", "set", "points", "axes", "bisect")
BISECT_KEYS = {"key", "low", "high", "rounds"}


def sweep_preset_names() -> list[str]:
    """Names of the sweep specs shipped in ``grokscope/sweeps/presets``."""
    files = resources.files("grokscope.sweeps.presets").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".toml"))


def sweep_preset_text(name: str) -> str:
    """The TOML text of a shipped sweep spec."""
    return resources.files("grokscope.sweeps.presets").joinpath(f"{name}.toml").read_text()


def sweep_preset_description(name: str) -> str:
    """The ``description`` line of a shipped sweep spec."""
    return tomllib.loads(sweep_preset_text(name)).get("description", "")


@dataclass(frozen=True)
class SweepSpec:
    preset: str
    set: dict[str, Any]
    axes: dict[str, list]
    points: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    text: str = ""  # the TOML it was read from
    bisect: dict[str, Any] | None = None  # key, low, high, rounds

    @classmethod
    def load(cls, spec: str | Path) -> "SweepSpec":
        """A spec file, or a shipped sweep spec by name (ValueError if neither)."""
        path = Path(spec)
        if path.is_file():
            return cls.from_text(path.read_text(), str(path))
        if str(spec) in sweep_preset_names():
            return cls.from_text(sweep_preset_text(str(spec)), str(spec))
        raise ValueError(f"no sweep spec file at {spec}, and no shipped sweep of that name "
                         f"(shipped: {', '.join(sweep_preset_names())})")

    @classmethod
    def from_toml(cls, path: str | Path) -> "SweepSpec":
        """Read and validate a spec file (ValueError with the reason if it is malformed)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no sweep spec at {path}")
        return cls.from_text(path.read_text(), str(path))

    @classmethod
    def from_text(cls, text: str, source: str) -> "SweepSpec":
        """Parse and validate a spec's TOML; every member's config must be valid before anything runs."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{source} is not valid TOML: {e}") from None
        unknown = set(data) - set(SPEC_KEYS)
        if unknown:
            raise ValueError(f"unknown sweep spec key(s) {sorted(unknown)} (known: {', '.join(SPEC_KEYS)})")
        axes = data.get("axes", {})
        for key, values in axes.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"axis {key!r} must be a non-empty list of values")
        points = data.get("points", [])
        if not isinstance(points, list) or not all(isinstance(p, dict) and p for p in points):
            raise ValueError("points must be a list of non-empty tables of config values")
        clash = {k for p in points for k in p} & set(axes)
        if clash:
            raise ValueError(f"{sorted(clash)} both in points and in axes; put each key in one of them")
        bisect = data.get("bisect")
        if bisect is not None:
            if set(bisect) != BISECT_KEYS or not all(isinstance(bisect[k], int) for k in ("low", "high", "rounds")):
                raise ValueError("[bisect] needs exactly key, and integers low, high and rounds")
            if not 0 < bisect["low"] < bisect["high"] or bisect["rounds"] < 1:
                raise ValueError("[bisect] needs 0 < low < high and rounds >= 1")
            if axes or points:
                raise ValueError("a [bisect] spec has no axes or points")
        spec = cls(preset=data.get("preset", "nanda2023"), set=data.get("set", {}), axes=axes, points=points,
                   description=data.get("description", ""), text=text, bisect=bisect)
        spec.members()
        if bisect is not None:
            spec.member_at(bisect["low"]), spec.member_at(bisect["high"])  # both ends must be valid configs
        return spec

    def member(self, values: dict[str, Any]) -> Member:
        """The member with these axis values on top of the base preset and ``set`` (one core each)."""
        overrides = ["train.threads=1"] + [f"{k}={_text(v)}" for k, v in (self.set | values).items()]
        return Member(values=values, name=member_name(values), config=load_preset(self.preset, overrides))

    def member_at(self, value: int) -> Member:
        """The bisection's member with its key at ``value``."""
        return self.member({self.bisect["key"]: value})

    def members(self) -> list[Member]:
        """Every point of the grid: each of ``points`` (or the base alone) crossed with the axes,
        in order (the last axis varies fastest)."""
        keys = list(self.axes)
        out = [self.member(dict(point) | dict(zip(keys, combo)))
               for point in self.points or [{}] for combo in itertools.product(*(self.axes[k] for k in keys))]
        names = [m.name for m in out]
        if len(set(names)) != len(names):
            raise ValueError("two sweep members have the same values; every point must differ")
        return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def member_name(values: dict[str, Any]) -> str:
    """A directory name readable from the axis values: ``train.seed=0,train.lr=0.001``."""
    if not values:
        return "base"
    text = ",".join(f"{k}={_text(v)}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)
