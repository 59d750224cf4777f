"""Typed configs from the command line and from files: `key=value` overrides of frozen dataclasses.

One grammar for every stage (`make oof ARGS="epochs=3"`, `make stack ARGS="trials=200 blend.space=log"`):
a config is a frozen dataclass whose dataclass-typed fields are its sections. A key is
`section.field`, or a bare `field` when that names a top-level field or a field of one section
(a config may let a bare key set every section that has it, e.g. `trials` for blend and lgbm).
`config=FILE` (YAML or JSON: a mapping, sections as nested mappings) applies a file's settings
first; later items on the line win. Values are parsed by the field's type annotation.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import UserFacingError


def split_items(overrides: list[str] | str | tuple[str, ...]) -> list[str]:
    return overrides.split() if isinstance(overrides, str) else list(overrides)


def expand_config_files(items: list[str]) -> list[tuple[str, Any]]:
    """`key=value` strings -> (key, value) pairs, each `config=FILE` replaced by the file's settings."""
    pairs: list[tuple[str, Any]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserFacingError(f"setting {item!r} is not key=value; e.g. ARGS=\"epochs=3\" or "
                                  f"ARGS=\"config=my.yaml\"")
        pairs.extend(read_config_file(raw) if key == "config" else [(key, raw)])
    return pairs


def read_config_file(path: str | Path) -> list[tuple[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"config file {path} not found; pass config=PATH to a YAML or JSON file")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # yaml and json raise several types; the message names the line
        raise UserFacingError(f"config file {path} does not parse: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserFacingError(f"config file {path} must hold a mapping of settings (key: value), "
                              f"not {type(data).__name__}")
    return _flatten(data)


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out


def sections(config: Any) -> list[str]:
    return [f.name for f in fields(config) if is_dataclass(getattr(config, f.name))]


def apply_settings(config: Any, pairs: list[tuple[str, Any]], bare_sets_all: bool = False, what: str = "config",
                   idle: tuple[str, ...] = ()) -> Any:
    """Return `config` with the (key, value) pairs applied; values may be strings or already typed.
    `idle`: sections a bare key does not reach when another section has it too (settings this config
    does not use, e.g. a neural recipe's gbdt section)."""
    for key, value in pairs:
        for section, name in resolve_key(config, key, bare_sets_all, what, idle):
            target = getattr(config, section) if section else config
            parsed = coerce(value, field_type(target, name), key)
            try:
                target = replace(target, **{name: parsed})
            except ValueError as err:  # a config's own check (__post_init__): epochs=0, amp=fp8, ...
                raise UserFacingError(f"setting {key}={value}: {err}") from None
            config = replace(config, **{section: target}) if section else target
    return config


def resolve_key(config: Any, key: str, bare_sets_all: bool, what: str,
                idle: tuple[str, ...] = ()) -> list[tuple[str | None, str]]:
    secs = sections(config)
    if "." in key:
        section, name = key.split(".", 1)
        if section in secs and name in _names(getattr(config, section)):
            return [(section, name)]
    else:
        if key in _names(config) and key not in secs:
            return [(None, key)]
        owners = [s for s in secs if key in _names(getattr(config, s))]
        if len(owners) > 1 and any(s not in idle for s in owners):
            owners = [s for s in owners if s not in idle]
        if len(owners) == 1 or (owners and bare_sets_all):
            return [(s, key) for s in owners]
        if owners:
            raise UserFacingError(f"setting {key!r} exists in {', '.join(owners)}; prefix it, "
                                  f"e.g. {owners[0]}.{key}=...")
    known = all_keys(config)
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserFacingError(f"{what} has no setting {key!r}{hint}")


def all_keys(config: Any) -> list[str]:
    secs = sections(config)
    keys = [n for n in _names(config) if n not in secs]
    return keys + [f"{s}.{n}" for s in secs for n in _names(getattr(config, s))] + \
        [n for s in secs for n in _names(getattr(config, s))]


def _names(instance: Any) -> list[str]:
    return [f.name for f in fields(instance)]


def field_type(instance: Any, name: str) -> Any:
    return typing.get_type_hints(type(instance))[name]


def coerce(value: Any, kind: Any, key: str) -> Any:
    """A string (command line) or a YAML/JSON value -> the field's type."""
    if isinstance(value, str):
        return parse_value(value, kind, key)
    origin = typing.get_origin(kind)
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(value)
    if value is None or kind in (Any, object):
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (int, bool, str) and type(value) is kind:
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return coerce(value, args[0], key)
    if kind is Path:
        return Path(value)
    return parse_value(str(value), kind, key)


def parse_value(raw: str, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"true", "1", "yes"}
        if origin is tuple:
            inner = typing.get_args(kind)[0] if typing.get_args(kind) else str
            return tuple(parse_value(part, inner, key) for part in raw.split(",") if part)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            return None if raw.lower() == "none" else parse_value(raw, args[0], key)
        if kind in (int, float, str):
            return kind(raw)
        if kind is Path:
            return Path(raw)
    except ValueError:
        raise UserFacingError(f"setting {key}={raw}: expected {getattr(kind, '__name__', kind)}") from None
    if is_dataclass(kind):
        raise UserFacingError(f"setting {key}: set its fields instead, e.g. {key}.<field>=...")
    return raw


def to_plain(config: Any) -> dict:
    """A config as JSON-ready data (paths as strings)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))
