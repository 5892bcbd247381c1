"""LSGAN: Mao et al. 2017, "Least Squares Generative Adversarial Networks".

The DCGAN networks trained with least-squares losses: D regresses the scores of real images to b and of fakes to
a, G pulls the scores of its fakes to c. The 0-1 coding (a = 0, b = c = 1, section 3.2.2) is the default.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import losses
from ..config import Checks
from ..objectives import AdversarialObjective
from ..registry import Family, register
from .blocks import ConvGenerator
from .dcgan import ConvDiscriminator, DCGANConfig


class LeastSquaresGAN(AdversarialObjective):
    """Mao et al. 2017, eq. 2; the discriminator's raw score is the regression output (no sigmoid)."""

    @dataclass(frozen=True)
    class Params(AdversarialObjective.Params):
        fake_target: float = 0.0       # a: what D regresses the scores of fakes to
        real_target: float = 1.0       # b: what D regresses the scores of real images to
        generator_target: float = 1.0  # c: what G wants D to score its fakes

        def __post_init__(self):
            super().__post_init__()
            check = Checks(self, "objective")
            for name in ("fake_target", "real_target", "generator_target"):
                check.number(name, at_least=-10, at_most=10)
            if self.top_k < 1 and self.real_target <= self.fake_target:
                check.fail("top_k", "keeps the fakes D scores highest, which needs real_target above fake_target")

    def discriminator_loss(self, G, D, b):
        fake = b.fake_images(G).detach()
        loss = losses.least_squares_discriminator_loss(D(self.seen_by_d(b.real), b.labels).float(),
                                                       D(self.seen_by_d(fake), b.fake_labels).float(),
                                                       self.params.real_target, self.params.fake_target)
        return loss, {"loss_d": loss}

    def generator_loss(self, G, D, b):
        scores, logs = self.generator_scores(G, D, b)
        loss = losses.least_squares_generator_loss(scores, self.params.generator_target)
        return loss, {"loss_g": loss, **logs}


register(Family(
    name="lsgan",
    title="LSGAN",
    paper="Mao et al. 2017",
    arxiv="1611.04076",
    paper_title="Least Squares Generative Adversarial Networks",
    summary="The GAN game scored by squared distances to targets, so fakes far from the data still get a push.",
    config_cls=DCGANConfig,
    build_generator=lambda c: ConvGenerator(c, c.width, activation=c.g_activation),
    build_discriminator=ConvDiscriminator,
    objective=LeastSquaresGAN,
))
