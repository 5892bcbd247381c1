"""One registry of model families. A family is one file in genmodels/models/ that calls `register`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .config import ConfigError, from_dict


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

    def make_config(self, values: dict | None, where: str = "") -> Any:
        """The family's architecture config from a dict, checked like any config and for the conditioning the
        family needs: a class count for conditional families, none for the others."""
        config = from_dict(self.config_cls, values, where)
        if self.conditional and config.num_classes < 2:
            raise ConfigError(f"model.num_classes must be at least 2 for {self.name}, which is conditional; "
                              f"got {config.num_classes}")
        if not self.conditional and config.num_classes:
            raise ConfigError(f"model.num_classes must be 0 for {self.name}, which is unconditional; "
                              f"got {config.num_classes}")
        return config


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
