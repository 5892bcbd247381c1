"""ACGAN: Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs"."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Checks
from ..objectives import AuxiliaryClassifierGAN
from ..registry import Family, register
from .blocks import ConvFeatures, ConvGenerator, init_dcgan_weights
from .dcgan import DCGANConfig


@dataclass(frozen=True)
class ACGANConfig(DCGANConfig):
    num_classes: int = 10   # classes the generator is conditioned on and the auxiliary head predicts
    embed_dim: int = 50     # size of the label embedding concatenated to z (label_input "concat")
    label_input: str = "multiply"  # concat | multiply: z scaled by a label embedding, so G cannot drop z
    dropout: float = 0.0    # dropout between discriminator blocks (Odena et al. used 0.5)

    def __post_init__(self):
        super().__post_init__()
        check = Checks(self, "model")
        check.number("embed_dim", at_least=1, at_most=4096)
        check.choice("label_input", ("concat", "multiply"))
        check.number("dropout", at_least=0, below=1)


class AuxiliaryClassifierDiscriminator(nn.Module):
    """Image -> (real/fake logit, class logits) from one shared trunk."""

    def __init__(self, config: ACGANConfig):
        super().__init__()
        self.features = ConvFeatures(config.channels, config.image_size, config.d_width, config.d_norm, config.dropout)
        self.score = self.features.head(1)
        self.classify = self.features.head(config.num_classes)
        init_dcgan_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.score(h).flatten(), self.classify(h).flatten(1)


register(Family(
    name="acgan",
    title="ACGAN",
    paper="Odena et al. 2017",
    arxiv="1610.09585",
    paper_title="Conditional Image Synthesis With Auxiliary Classifier GANs",
    summary="The discriminator also names the class, so the generator learns to draw a requested class.",
    config_cls=ACGANConfig,
    build_generator=lambda c: ConvGenerator(c, c.width, c.embed_dim, c.g_activation, c.label_input),
    build_discriminator=AuxiliaryClassifierDiscriminator,
    objective=AuxiliaryClassifierGAN,
))
