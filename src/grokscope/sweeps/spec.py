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
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SweepSpec:
    preset: str
    set: dict[str, Any]
    axes: dict[str, list]

    @classmethod
    def from_toml(cls, path: str | Path) -> "SweepSpec":
        """Read and validate a spec file (ValueError with the reason if it is malformed)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no sweep spec at {path}")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path} is not valid TOML: {e}") from None
        unknown = set(data) - {"preset", "set", "axes"}
        if unknown:
            raise ValueError(f"unknown sweep spec key(s) {sorted(unknown)} (known: preset, set, axes)")
        axes = data.get("axes", {})
        for key, values in axes.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"axis {key!r} must be a non-empty list of values")
        spec = cls(preset=data.get("preset", "nanda2023"), set=data.get("set", {}), axes=axes)
        spec.members()  # every member's config must be valid before anything runs
        return spec

    def members(self) -> list[Member]:
        """Every point of the grid, in axis order (the last axis varies fastest)."""
        base = ["train.threads=1"] + [f"{k}={_text(v)}" for k, v in self.set.items()]  # one core per member
        keys = list(self.axes)
        out = []
        for combo in itertools.product(*(self.axes[k] for k in keys)):
            values = dict(zip(keys, combo))
            overrides = base + [f"{k}={_text(v)}" for k, v in values.items()]
            out.append(Member(values=values, name=member_name(values), config=load_preset(self.preset, overrides)))
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
