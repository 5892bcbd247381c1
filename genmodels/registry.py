"""One registry of model families. A family is one file in genmodels/models/ that calls `register`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .config import ConfigError, from_dict


@dataclass(frozen=True)
class Family:
    """Everything the rest of the code asks about a family: the hub card, the app's pages, the trainer and the
    tests read these fields and never name a family."""
    name: str                                   # registry key: the module name in genmodels/models/
    title: str                                  # human name shown in the app
    paper: str                                  # where the recipe comes from, e.g. "Radford et al. 2016"
    arxiv: str                                  # that paper's arXiv id (the hub card links it and tags arxiv:ID)
    paper_title: str                            # that paper's title
    summary: str                                # one line on what the family does, for a reader new to it
    config_cls: type                            # frozen dataclass of architecture settings
    build_generator: Callable[[Any], nn.Module]  # config -> generator (the shipped model)
    objective: type                             # the genmodels.objectives.Objective subclass that trains it
    build_discriminator: Callable[[Any], nn.Module] | None = None  # None: no adversary (VAE)
    has_encoder: bool = False                   # the generator also has encode / decode (reconstruction without projection)
    kind: str = "gan"                           # the broad kind of model, a hub tag: gan | vae

    @property
    def conditional(self) -> bool:
        """Needs class labels from the dataset: the config's default class count says so."""
        return bool(self.config_cls.num_classes)

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
