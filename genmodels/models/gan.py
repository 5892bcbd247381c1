"""GAN: Goodfellow et al. 2014, "Generative Adversarial Nets", with fully connected networks."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Checks
from ..objectives import NonSaturatingGAN
from ..registry import Family, register
from .base import ModelConfig
from .blocks import MLPDiscriminator, MLPGenerator


@dataclass(frozen=True)
class GANConfig(ModelConfig):
    hidden: tuple[int, ...] = (256, 512, 1024)    # generator layer widths, from z to the image
    d_hidden: tuple[int, ...] = (1024, 512, 256)  # discriminator layer widths, from the image to the score
    d_dropout: float = 0.3                        # dropout after each discriminator layer

    def __post_init__(self):
        super().__post_init__()
        check = Checks(self, "model")
        for name in ("hidden", "d_hidden"):
            if not 1 <= len(getattr(self, name)) <= 16:
                check.fail(name, f"must list 1 to 16 layer widths, got {getattr(self, name)!r}")
            check.number(name, at_least=1, at_most=16384)
        check.number("d_dropout", at_least=0, below=1)


register(Family(
    name="gan",
    title="GAN (MLP)",
    paper="Goodfellow et al. 2014",
    arxiv="1406.2661",
    paper_title="Generative Adversarial Networks",
    summary="A generator and a discriminator of plain dense layers play a game: one fakes, the other spots fakes.",
    config_cls=GANConfig,
    build_generator=lambda c: MLPGenerator(c, c.hidden),
    build_discriminator=lambda c: MLPDiscriminator(c, c.d_hidden, c.d_dropout),
    objective=NonSaturatingGAN,
))
