"""Frozen dataclass configs built strictly from dicts: an unknown key raises and names the valid ones."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration names a key or value that does not exist."""


def from_dict(cls: type[T], values: dict[str, Any] | None, where: str = "") -> T:
    """Build the dataclass `cls` from `values`, rejecting keys it does not define."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        label = f" in {where}" if where else ""
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}{label}; "
            f"valid keys for {cls.__name__}: {', '.join(sorted(fields))}"
        )
    # JSON has no tuples: restore them where the default is one, so configs compare equal after a round trip.
    for name, value in values.items():
        default = fields[name].default
        if isinstance(default, tuple) and isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def parse_value(text: str) -> Any:
    """Parse the value of a `--set key=value` override: TOML scalars, else a plain string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


REPO_ROOT = Path(__file__).resolve().parents[1]


def shown_path(path: str | Path) -> str:
    """A path as shipped files record it: relative to the repository when it lies inside, so a config.json
    or metrics.json names train/configs/... or weights/..., not the folder it happened to be made in."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
