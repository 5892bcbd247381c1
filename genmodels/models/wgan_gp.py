"""WGAN-GP: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs".

The DCGAN architecture with a critic that has no batch norm: the gradient penalty is taken per sample,
which batch norm would couple across the batch (section 4). Layer norm stands in, as the paper suggests.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError
from ..objectives import WassersteinGP
from ..registry import Family, register
from .blocks import ConvGenerator
from .dcgan import ConvDiscriminator, DCGANConfig


@dataclass(frozen=True)
class WGANGPConfig(DCGANConfig):
    d_norm: str = "layer"  # critic normalisation: layer | none (batch norm breaks the per-sample penalty)

    def __post_init__(self):
        super().__post_init__()
        if self.d_norm == "batch":
            raise ConfigError("WGAN-GP's critic cannot use batch norm (Gulrajani et al. 2017, section 4): use 'layer' or 'none'")


register(Family(
    name="wgan_gp",
    title="WGAN-GP",
    paper="Gulrajani et al. 2017",
    arxiv="1704.00028",
    paper_title="Improved Training of Wasserstein GANs",
    summary="A critic scores realism with a Wasserstein distance, kept smooth by a gradient penalty.",
    config_cls=WGANGPConfig,
    build_generator=lambda c: ConvGenerator(c, c.width, activation=c.g_activation),
    build_discriminator=ConvDiscriminator,
    objective=WassersteinGP,
))
