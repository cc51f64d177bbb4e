"""Result records and their JSON form: one codec for every analysis family's frozen dataclasses.

``to_json`` writes a record as plain JSON values (a dataclass as an object of its fields, dict
keys as strings, tuples as lists). ``from_json`` reads it back, guided by the record's type
hints: nested records, ``int`` dict keys and tuples are restored, and a JSON ``null`` where a
plain ``float`` is expected (JSON has no NaN; ``registry._finite`` writes one as null) reads as
NaN. A field missing from the JSON takes its default; a required one missing is an error
that names it. Torch-free, so that the report can read what the analysis stored.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar, Union

from grokscope.errors import GrokscopeError

R = TypeVar("R")


def to_json(value: Any) -> Any:
    """``value`` (a record, or a dict, list or tuple of them, or a plain value) as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(kind: type[R], data: Any, where: str = "analysis") -> R:
    """Read ``data`` (as ``to_json`` wrote it) as a value of type ``kind``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return from_json(options[0], data, where)
    if kind is float:
        return math.nan if data is None else float(data)
    if data is None:
        raise GrokscopeError(f"{where} is missing (null) in the stored analysis")
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise GrokscopeError(f"{where} should be an object in the stored analysis; found {type(data).__name__}")
        hints = typing.get_type_hints(kind)
        values = {}
        for f in dataclasses.fields(kind):
            if f.name in data:
                values[f.name] = from_json(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise GrokscopeError(f"{where}.{f.name} is missing from the stored analysis")
        return kind(**values)
    if origin is list:
        return [from_json(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is tuple:
        items = args if args[-1:] != (Ellipsis,) else (args[0],) * len(data)
        return tuple(from_json(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(items, data)))
    if origin is dict:
        key, value = args
        return {from_json(key, k, where): from_json(value, v, f"{where}[{k}]") for k, v in data.items()}
    if kind is int and isinstance(data, str):  # a dict key
        return int(data)
    return data
