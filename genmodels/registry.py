"""One registry of model families. A family is one file in genmodels/models/ that calls `register`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .config import ConfigError


@dataclass(frozen=True)
class Family:
    name: str                                   # registry key, e.g. "dcgan"
    title: str                                  # human name shown in the app
    paper: str                                  # where the recipe comes from
    config_cls: type                            # frozen dataclass of architecture settings
    build_generator: Callable[[Any], nn.Module]  # config -> generator (the shipped model)
    objective: str                              # key in genmodels.objectives.OBJECTIVES
    build_discriminator: Callable[[Any], nn.Module] | None = None  # None: no adversary (VAE)
    conditional: bool = False                   # needs class labels from the dataset


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered twice")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    from . import models  # noqa: F401  (importing the package registers every family)

    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def family_names() -> list[str]:
    from . import models  # noqa: F401

    return list(FAMILIES)
