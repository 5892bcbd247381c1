"""Frozen dataclass configs built strictly from dicts: an unknown key raises and names the valid ones, a value
of the wrong type raises and says which type, and each config's __post_init__ bounds its numbers and names
its choices (`Checks`), so an impossible config fails before anything is allocated."""
from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration names a key or value that does not exist."""


def from_dict(cls: type[T], values: dict[str, Any] | None, where: str = "") -> T:
    """Build the dataclass `cls` from `values`, rejecting keys it does not define and values of another type."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    label = f" in {where}" if where else ""
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}{label}; "
            f"valid keys for {cls.__name__}: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        if not has_type(value, hints[name]):
            raise ConfigError(f"{where + ': ' if where else ''}{name} must be {type_in_words(hints[name])}, got {value!r}")
        # JSON has no tuples: restore them where the field is one, so configs compare equal after a round trip.
        if typing.get_origin(hints[name]) is tuple:
            values[name] = tuple(value)
    return cls(**values)


def has_type(value: Any, hint: Any) -> bool:
    """Whether a value read from TOML or JSON fits a field's annotation (bool is not a number here)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool or hint is str or hint is dict:
        return isinstance(value, hint)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(has_type(v, args[0]) for v in value)
        return len(value) == len(args) and all(has_type(v, a) for v, a in zip(value, args))
    return True  # Any and the like: the config's own checks decide


def type_in_words(hint: Any) -> str:
    words = {bool: "true or false", str: "a string", int: "a whole number", float: "a number", dict: "a table"}
    if hint in words:
        return words[hint]
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return f"a list of {type_in_words(args[0]).removeprefix('a ')}s"
    return f"a list of {len(args)} {type_in_words(args[0]).removeprefix('a ')}s"


class Checks:
    """Range and choice checks for a config's __post_init__; messages name the field as SECTION.KEY."""

    def __init__(self, config: Any, section: str):
        self.config, self.section = config, section

    def number(self, name: str, at_least: float | None = None, at_most: float | None = None,
               above: float | None = None, below: float | None = None) -> None:
        """Every value of the field (a number, or a tuple of numbers) must be finite and within the bounds given:
        at_least / at_most inclusive, above / below exclusive."""
        value = getattr(self.config, name)
        bounds = [(at_least, "at least", lambda v, b: v >= b), (above, "above", lambda v, b: v > b),
                  (at_most, "at most", lambda v, b: v <= b), (below, "below", lambda v, b: v < b)]
        for v in value if isinstance(value, tuple) else (value,):
            if not math.isfinite(v) or not all(test(v, b) for b, _, test in bounds if b is not None):
                limits = " and ".join(f"{words} {b:g}" for b, words, _ in bounds if b is not None)
                raise ConfigError(f"{self.section}.{name} must be {limits}, got {value!r}")

    def choice(self, name: str, options: tuple) -> None:
        value = getattr(self.config, name)
        if value not in options:
            raise ConfigError(f"{self.section}.{name} must be {' or '.join(map(repr, options))}, got {value!r}")

    def fail(self, name: str, what: str) -> None:
        raise ConfigError(f"{self.section}.{name} {what}")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def parse_value(text: str) -> Any:
    """Parse the value of a `--set key=value` override: TOML scalars, else a plain string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


WEIGHTS_ENV = "GENMODELS_WEIGHTS"


def weights_root(root: str | Path | None = None) -> Path:
    """The folder of shipped weights (DATASET/MODEL checkpoints, each dataset's classifier and FID statistics):
    `root` when given, else $GENMODELS_WEIGHTS, else ./weights. The library assumes no repository around it."""
    return Path(root or os.environ.get(WEIGHTS_ENV, "weights"))


def shown_path(path: str | Path) -> str:
    """A path as shipped files record it: relative to the working folder when it lies inside (commands run from the
    repository's root), so a config.json or metrics.json names train/configs/... or weights/..., not the folder it
    happened to be made in."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
