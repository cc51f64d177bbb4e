"""Frozen config dataclasses that describe themselves: ``to_dict``/``from_dict`` with a ``kind``.

Every part of a run's config (task, model, training) is a ``ConfigPart``: a frozen dataclass
whose ``__post_init__`` only validates (no seeding, no derived defaults stored as fields).
A ``Registry`` maps the ``kind`` written into each saved dict back to its class, so a
``config.json`` is enough to rebuild everything. Values arriving as text (CLI ``--set``) or
as JSON/TOML scalars are coerced by the field's annotation, with one clear ``ValueError``
naming the dotted key when they do not fit.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, Generic, Literal, TypeVar, Union

from grokscope.errors import GrokscopeError

T = TypeVar("T", bound="ConfigPart")


class ConfigPart:
    """Mixin for frozen config dataclasses; subclasses set ``kind`` and ``kind_key``."""

    kind: ClassVar[str]
    kind_key: ClassVar[str] = "kind"

    def to_dict(self) -> dict[str, Any]:
        """The dict written to ``config.json``: the discriminator first, then every field."""
        out: dict[str, Any] = {self.kind_key: self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """Resolved annotations of the dataclass fields, by name."""
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
        """Build from a dict, rejecting unknown keys and coercing values by annotation."""
        types_ = cls.field_types()
        kwargs = {}
        for key, value in data.items():
            if key == cls.kind_key:
                continue
            if key not in types_:
                known = ", ".join(sorted(types_))
                raise ValueError(f"unknown config key {prefix + key!r} (known: {known})")
            kwargs[key] = coerce(value, types_[key], f"{prefix}{key}")
        return cls(**kwargs)

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any]]:
        """(name, type, default) for each field: what ``grokscope tasks`` prints."""
        types_ = cls.field_types()
        return [
            (f.name, type_name(types_[f.name]), f.default)
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        ]


def type_name(tp: Any) -> str:
    """A short human name for an annotation: ``int``, ``float | None``, ``add|sub``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "tuple[" + ", ".join(type_name(a) for a in typing.get_args(tp)) + "]"
    return getattr(tp, "__name__", str(tp))


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (text, or a JSON/TOML scalar or list) to the annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return coerce(value, a, key)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if len(errors) == 1 else f"{key}: cannot read {value!r} as {type_name(tp)}")
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ValueError(f"{key} must be one of {', '.join(map(str, args))}; got {value!r}")
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"{key} must be a list; got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], key) for v in items)
        if len(items) != len(args):
            raise ValueError(f"{key} must have {len(args)} entries; got {value!r}")
        return tuple(coerce(v, a, key) for v, a in zip(items, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"{key} must be true or false; got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"{key} must be an integer; got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                pass
        raise ValueError(f"{key} must be an integer; got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"{key} must be a number; got {value!r}")
        number = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ValueError(f"{key} must be a number; got {value!r}")
        if not math.isfinite(number):
            raise ValueError(f"{key} must be a finite number; got {value!r}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{key} must be text; got {value!r}")
    raise TypeError(f"{key}: unsupported config annotation {tp!r}")


class Registry(Generic[T]):
    """Maps each ``kind`` to its ConfigPart class (and whatever that class builds)."""

    def __init__(self, what: str, kind_key: str = "kind", plugins: str | None = None):
        self.what = what
        self.kind_key = kind_key
        self.plugins = plugins  # an entry-point group whose modules register more kinds on import
        self._plugins_loaded = plugins is None
        self._classes: dict[str, type[T]] = {}

    def _load_plugins(self) -> None:
        """Import every module of the entry-point group ``plugins`` once (their imports register
        their classes); a module that fails to import raises GrokscopeError naming it."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for point in entry_points(group=self.plugins):
            try:
                point.load()
            except Exception as e:  # any error in someone else's package: name it, do not crash deep inside
                raise GrokscopeError(f"the {self.plugins} entry point {point.name!r} ({point.value}) failed to load: "
                                 f"{type(e).__name__}: {e}") from None

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: register ``cls`` under ``cls.kind``."""
        if cls.kind in self._classes:
            raise RuntimeError(f"{self.what} '{cls.kind}' registered twice")
        self._classes[cls.kind] = cls
        return cls

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._classes)

    def get(self, kind: str) -> type[T]:
        if kind not in self._classes:
            self._load_plugins()
        try:
            return self._classes[kind]
        except KeyError:
            raise ValueError(
                f"unknown {self.what} {kind!r} (known: {', '.join(self.names())})"
            ) from None

    def from_dict(self, data: dict[str, Any], prefix: str) -> T:
        """Build the registered class named by ``data[kind_key]``."""
        if self.kind_key not in data:
            raise ValueError(f"config part '{prefix.rstrip('.')}' has no '{self.kind_key}'")
        return self.get(str(data[self.kind_key])).from_dict(data, prefix)
