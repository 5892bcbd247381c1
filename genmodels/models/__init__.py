"""Importing this package registers every model family: each module here that calls `register`.
A new family is one file here; nothing else names it."""
import importlib
import pkgutil

from .base import Generator, ModelConfig

# The app lists these first, in this order; any other family follows by module name.
LISTED_FIRST = ("vae", "gan", "dcgan", "wgan_gp", "acgan", "cgan")
# What a first visit opens on and the Train page starts from: the classic DCGAN, quick to train and to read.
SHOWCASE = "dcgan"
for _name in sorted((m.name for m in pkgutil.iter_modules(__path__)),
                    key=lambda n: (LISTED_FIRST.index(n) if n in LISTED_FIRST else len(LISTED_FIRST), n)):
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["SHOWCASE", "Generator", "ModelConfig"]
