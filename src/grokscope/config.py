"""A run's config: task, model and training parts, presets (TOML) and dotted overrides.

``RunConfig.to_dict()`` is what ``config.json`` holds; each part carries its discriminator
(``task.name``, ``model.kind``, ``train.kind``) so a run directory describes itself.
"""

from __future__ import annotations

import fnmatch
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from grokscope.devices import DEVICE_PATTERN
from grokscope.models import MODELS, ModelConfig
from grokscope.schema import ConfigPart, Registry
from grokscope.tasks import TASKS, TaskConfig

FORMAT = "grokscope.run/1"
PRESETS_ENV = "GROKSCOPE_PRESETS"  # folders of the user's own presets
LOGGERS = ("tensorboard", "wandb")  # what train.log may name (grokscope/loggers.py)

TRAINERS: Registry[ConfigPart] = Registry("train kind")


@TRAINERS.register
@dataclass(frozen=True)
class TrainConfig(ConfigPart):
    """Full-batch AdamW training, as in Nanda et al. (2023)."""

    kind = "full_batch"
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 1.0  # AdamW decoupled decay, on the parameters named by decay_params
    betas: tuple[float, float] = (0.9, 0.98)  # AdamW betas
    warmup_steps: int = 10  # lr of step t is lr * min(t / warmup_steps, 1), t = 0, 1, ...
    epochs: int = 40_000  # maximum number of full-batch steps
    seed: int = 0  # seed of the weight initialisation
    eval_every: int = 10  # evaluate the test set every this many epochs
    checkpoint_every: int = 100  # save weights every this many epochs (plus log-spaced early ones)
    loss_dtype: Literal["float64", "float32"] = "float64"  # dtype of log_softmax; float32 shows slingshots
    decay_params: str = "W_*"  # comma-separated glob patterns over parameter leaf names
    stop_after_grok: int | None = None  # stop this many epochs after grokking; None: run all epochs
    grok_threshold: float = 0.99  # test accuracy that counts as grokked
    threads: int = 1  # torch intra-op threads (one is fastest at these shapes)
    device: str = "auto"  # auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps (grokscope/devices.py)
    log: tuple[str, ...] = ()  # where metrics also stream: tensorboard, wandb (grokscope/loggers.py)
    folded: bool = True  # train 1-layer LayerNorm-free models through exact per-token tables (models/folded.py)
    normaliser: Literal["softmax", "stablemax"] = "softmax"  # output normalisation of the loss (StableMax: Prieto et al. 2025)
    orthograd: bool = False  # ⊥Grad: drop each gradient's component along its weight (Prieto et al. 2025)
    grokfast: Literal["none", "ema", "ma"] = "none"  # Grokfast gradient filter (Lee et al. 2024)
    grokfast_alpha: float = 0.98  # EMA decay of the ema filter
    grokfast_lamb: float = 2.0  # amplification of the slow gradient component
    grokfast_window: int = 100  # window of the ma filter, in steps

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.seed < 2**63, f"train.seed must be in [0, 2^63); got {self.seed}"),
            (all(math.isfinite(v) for v in (self.lr, self.weight_decay, *self.betas, self.grokfast_lamb)),
             "train.lr, train.weight_decay, train.betas and train.grokfast_lamb must be finite"),
            (self.lr > 0, f"train.lr must be positive; got {self.lr}"),
            (self.weight_decay >= 0, f"train.weight_decay must be >= 0; got {self.weight_decay}"),
            (all(0 <= b < 1 for b in self.betas), f"train.betas must be in [0, 1); got {self.betas}"),
            (self.warmup_steps >= 0, f"train.warmup_steps must be >= 0; got {self.warmup_steps}"),
            (self.epochs > 0, f"train.epochs must be positive; got {self.epochs}"),
            (self.eval_every >= 1, f"train.eval_every must be at least 1; got {self.eval_every}"),
            (self.checkpoint_every >= 1,
             f"train.checkpoint_every must be at least 1; got {self.checkpoint_every}"),
            (self.stop_after_grok is None or self.stop_after_grok >= 0,
             f"train.stop_after_grok must be >= 0 or none; got {self.stop_after_grok}"),
            (0 < self.grok_threshold <= 1,
             f"train.grok_threshold must be in (0, 1]; got {self.grok_threshold}"),
            (self.threads >= 1, f"train.threads must be at least 1; got {self.threads}"),
            (all(name in LOGGERS for name in self.log),
             f"train.log may name {', '.join(LOGGERS)}; got {','.join(self.log)!r}"),
            (DEVICE_PATTERN.fullmatch(self.device) is not None,
             f"train.device must be auto, cpu, cuda, cuda:N or mps; got {self.device!r}"),
            (bool(self.decay_patterns), "train.decay_params must name at least one pattern"),
            (0 <= self.grokfast_alpha < 1, f"train.grokfast_alpha must be in [0, 1); got {self.grokfast_alpha}"),
            (self.grokfast_window >= 1, f"train.grokfast_window must be at least 1; got {self.grokfast_window}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def decay_patterns(self) -> list[str]:
        return [p.strip() for p in self.decay_params.split(",") if p.strip()]

    def decays(self, param_name: str) -> bool:
        """Whether weight decay applies to the parameter with this dotted name."""
        leaf = param_name.rsplit(".", 1)[-1]
        return any(fnmatch.fnmatchcase(leaf, pattern) for pattern in self.decay_patterns)


@TRAINERS.register
@dataclass(frozen=True)
class MinibatchConfig(TrainConfig):
    """AdamW on minibatches: each step ("epoch" in the metrics) draws ``batch_size`` examples,
    from the training pool or, with ``fresh_data``, new ones from the task (infinite data)."""

    kind = "minibatch"
    batch_size: int = 256  # examples per step
    fresh_data: bool = False  # sample new examples every step (tasks that sample, e.g. digit_add)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1:
            raise ValueError(f"train.batch_size must be at least 1; got {self.batch_size}")


PARTS: dict[str, Registry] = {"task": TASKS, "model": MODELS, "train": TRAINERS}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run: what to learn, with what, and how."""

    task: TaskConfig
    model: ModelConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **{part: getattr(self, part).to_dict() for part in PARTS}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Build and validate; raises ValueError naming the first bad key or value."""
        unknown = set(data) - set(PARTS) - {"format"}
        if unknown:
            raise ValueError(f"unknown config part(s) {sorted(unknown)} (parts: task, model, train)")
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"config format {data['format']!r} is not {FORMAT!r}")
        parts = {}
        for part, registry in PARTS.items():
            if not isinstance(data.get(part), dict):
                raise ValueError(f"config has no '{part}' table")
            parts[part] = registry.from_dict(data[part], prefix=f"{part}.")
        return cls(**parts)

    def with_overrides(self, overrides: list[str]) -> "RunConfig":
        """Apply ``part.key=value`` overrides (values read by the field's type)."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))

    def diff(self, other: "RunConfig", ignore: frozenset[str] = frozenset()) -> list[str]:
        """Dotted keys whose values differ between two configs (``ignore``: keys left out)."""
        a, b = flatten(self.to_dict()), flatten(other.to_dict())
        return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in ignore)


# How a run executes, not what it computes: a resumed run may change them (summary.json
# records those of the session that finished it). Both change float rounding, not the maths.
EXECUTION_KEYS = frozenset({"train.threads", "train.folded", "train.device", "train.log"})


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"task": {"p": 113}} -> {"task.p": 113}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def parse_override(text: str) -> tuple[str, str, str]:
    """``"task.p=97" -> ("task", "p", "97")``; ValueError if not of that form."""
    key, sep, value = text.partition("=")
    part, dot, field = key.strip().partition(".")
    if not sep or not dot or not field:
        raise ValueError(f"override {text!r} must look like part.key=value (e.g. task.p=97)")
    if part not in PARTS:
        raise ValueError(f"unknown config key {key.strip()!r} (parts: task, model, train)")
    return part, field, value.strip()


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of a config dict with overrides applied; a changed ``kind`` (or task
    ``name``) is applied first and keeps only the fields the new class also has."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    parsed = [parse_override(o) for o in overrides]
    for part, field, value in parsed:
        registry = PARTS[part]
        if field == registry.kind_key:
            fields = registry.get(value).field_types()
            data[part] = {registry.kind_key: value,
                          **{k: v for k, v in data[part].items() if k in fields}}
    for part, field, value in parsed:
        if field != PARTS[part].kind_key:
            data[part][field] = value
    return data


def preset_dirs() -> list[Path]:
    """The folders named by ``GROKSCOPE_PRESETS`` (separated by ``os.pathsep``), searched before
    the shipped presets."""
    return [Path(d) for d in os.environ.get(PRESETS_ENV, "").split(os.pathsep) if d]


def preset_names() -> list[str]:
    """Names of the presets: those in ``GROKSCOPE_PRESETS``'s folders and those shipped in ``grokscope/presets``."""
    files = [*resources.files("grokscope.presets").iterdir(), *(f for d in preset_dirs() if d.is_dir() for f in d.iterdir())]
    return sorted({f.name[:-5] for f in files if f.name.endswith(".toml")})


def _parse_preset(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"preset {where} is not valid TOML: {e}") from None


def preset_text(name: str) -> dict[str, Any]:
    """The parsed TOML of a preset: a path to a ``.toml`` file, or a name found first in
    ``GROKSCOPE_PRESETS``'s folders, then among the shipped presets."""
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"no preset file at {name}")
        return _parse_preset(path.read_text(), name)
    for folder in preset_dirs():
        if (folder / f"{name}.toml").is_file():
            return _parse_preset((folder / f"{name}.toml").read_text(), str(folder / f"{name}.toml"))
    shipped = resources.files("grokscope.presets").joinpath(f"{name}.toml")
    if not shipped.is_file():
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(preset_names())}; or give a path to a .toml file)")
    return _parse_preset(shipped.read_text(), name)


def preset_run_name(name: str) -> str:
    """The run directory name for a preset: its name, or a preset file's stem."""
    return Path(name).stem if name.endswith(".toml") else name


def load_preset(name: str, overrides: list[str] = ()) -> RunConfig:
    """A shipped preset with overrides applied."""
    data = preset_text(name)
    data.pop("description", None)
    return RunConfig.from_dict(apply_overrides(data, list(overrides)))
