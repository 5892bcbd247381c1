"""Importing this package registers every model family, in the order the app lists them.
A new family: one file here plus its import below."""
from . import vae, gan, dcgan, wgan_gp, acgan, cgan  # noqa: F401,I001
from .base import Generator, ModelConfig

__all__ = ["Generator", "ModelConfig"]
