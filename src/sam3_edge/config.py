"""Strict construction of frozen parameter dataclasses from plain dicts.

The library never reads yaml itself: stages (and the CLI) load ``params.yaml`` and hand each section,
a plain ``dict``, to :func:`from_dict`. Every key must be a field of the dataclass: an unknown or misspelled
key is an error naming the full key path (``distill_phase1.lr``), never a silently ignored default. Values are
type-checked against the annotations (``int``, ``float``, ``bool``, ``str``, ``Literal``, ``tuple[...]``,
``dict[str, ...]``, nested dataclasses, ``X | None``), and a dataclass may add value checks in
``__post_init__`` by raising :class:`ParamsError` through :func:`check`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ParamsError(ValueError):
    """A params value is unknown, missing, of the wrong type or impossible; the message names the key."""


def check(condition: bool, key: str, message: str) -> None:
    """Raise :class:`ParamsError` for ``key`` unless ``condition`` holds (for ``__post_init__`` checks)."""
    if not condition:
        raise ParamsError(f"{key}: {message}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ParamsError(f"{key}: {value!r} is not one of {list(allowed)}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ParamsError as err:
                errors.append(str(err))
        raise ParamsError(f"{key}: {value!r} matches none of {[_type_name(a) for a in args]}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, prefix=key)
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ParamsError(f"{key}: expected {len(args)} items, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        key_tp, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {type(value).__name__}")
        return {_convert(k, key_tp, f"{key}.<key>"): _convert(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported annotation {tp!r}")


def from_dict(cls: type[T], data: dict[str, Any] | None, *, prefix: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types.

    Fields without a default must be present. ``prefix`` is the dotted path used in error messages.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{prefix or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        path = ", ".join(f"{prefix}.{k}" if prefix else k for k in unknown)
        raise ParamsError(f"unknown key {path} (allowed: {sorted(fields)})")
    kwargs = {}
    for name, field in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ParamsError(f"missing key {key}")
    try:
        return cls(**kwargs)
    except ParamsError as err:
        raise ParamsError(f"{prefix}.{err}" if prefix and not str(err).startswith(prefix) else str(err)) from None


def to_dict(obj: Any) -> Any:
    """Plain-json form of a params dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def params_hash(obj: Any) -> str:
    """Stable sha256 of a params dataclass or plain structure, for checkpoints and cache manifests."""
    blob = json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


__all__ = ["ParamsError", "check", "from_dict", "params_hash", "to_dict"]
