"""Importing this package registers every model family. A new family: one file here plus its import."""
from . import acgan, cgan, dcgan, gan, vae, wgan_gp  # noqa: F401
from .base import Generator, ModelConfig

__all__ = ["Generator", "ModelConfig"]
