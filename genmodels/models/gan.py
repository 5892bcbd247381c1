"""GAN: Goodfellow et al. 2014, "Generative Adversarial Nets", with fully connected networks."""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import Family, register
from .base import ModelConfig
from .blocks import MLPDiscriminator, MLPGenerator


@dataclass(frozen=True)
class GANConfig(ModelConfig):
    hidden: tuple[int, ...] = (256, 512, 1024)    # generator layer widths, from z to the image
    d_hidden: tuple[int, ...] = (1024, 512, 256)  # discriminator layer widths, from the image to the score
    d_dropout: float = 0.3                        # dropout after each discriminator layer


register(Family(
    name="gan",
    title="GAN (MLP)",
    paper="Goodfellow et al. 2014",
    config_cls=GANConfig,
    build_generator=lambda c: MLPGenerator(c, c.hidden),
    build_discriminator=lambda c: MLPDiscriminator(c, c.d_hidden, c.d_dropout),
    objective="gan",
))
