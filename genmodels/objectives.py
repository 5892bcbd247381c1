"""Objectives: what one training iteration optimises, built from the pure losses in `losses`.

Each objective supplies a discriminator (critic) loss and a generator loss for one batch and returns
(loss, scalars to log). The trainer owns everything else: the loop, n_critic, optimisers, precision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from . import losses
from .augment import diff_augment, parse_policy
from .config import Checks
from .data import ImageData


@dataclass
class Batch:
    """One iteration's tensors. `fake` is made once per iteration and shared by both steps."""

    real: torch.Tensor
    labels: torch.Tensor | None       # real labels (None for unconditional models)
    z: torch.Tensor
    fake_labels: torch.Tensor | None  # labels the generator is asked for
    fake: torch.Tensor | None = field(default=None, repr=False)
    grad_scale: float = 1.0           # the fp16 gradient scaler's factor, for gradients taken inside a loss
    epoch: int = 0                    # epochs completed before this batch, for schedules

    def fake_images(self, generator: nn.Module) -> torch.Tensor:
        if self.fake is None:
            self.fake = torch.tanh(generator(self.z, self.fake_labels))
        return self.fake


class Objective:
    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: "Objective.Params"):
        self.params = params

    @property
    def n_critic(self) -> int:
        return 1

    def discriminator_loss(self, G: nn.Module, D: nn.Module, b: Batch) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def generator_loss(self, G: nn.Module, D: nn.Module | None, b: Batch) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def after_epoch(self, shipped: nn.Module, data: ImageData, copies: tuple[nn.Module, ...] = ()) -> None:
        """Called on the main process after each epoch, before its FID: a post-hoc step on the generator that
        ships, carried over to `copies` of it (the raw weights beside their EMA)."""


class AdversarialObjective(Objective):
    """A game between G and D. What D is shown passes through `seen_by_d`, real and fake images alike."""

    @dataclass(frozen=True)
    class Params:
        # DiffAugment (Zhao et al. 2020): a comma-separated policy of color, translation, cutout; "" shows D the images
        # as they are.
        augment: str = ""
        # Top-k training (Sinha et al. 2020): the generator learns only from the fraction of each batch's fakes that
        # D scores most real. The fraction starts at 1 and is multiplied by TOP_K_DECAY each epoch, down to this
        # floor (the paper's nu); 1 keeps every fake. Each process ranks its own share of the batch.
        top_k: float = 1.0

        def __post_init__(self):
            check = Checks(self, "objective")
            try:
                parse_policy(self.augment)
            except ValueError as e:
                check.fail("augment", str(e))
            check.number("top_k", above=0, at_most=1)

    TOP_K_DECAY = 0.99  # gamma, the per-epoch decay of Sinha et al. 2020, section 4

    def __init__(self, params: "AdversarialObjective.Params"):
        super().__init__(params)
        self.policy = parse_policy(params.augment)

    def seen_by_d(self, images: torch.Tensor) -> torch.Tensor:
        return diff_augment(images, self.policy) if self.policy else images

    def kept(self, fake_scores: torch.Tensor, b: Batch) -> tuple[torch.Tensor, dict]:
        """The fakes' scores the generator's loss is taken over, and what to log: all of them, or with top_k < 1
        the highest (every objective here has D score real images above fakes)."""
        fraction = max(self.params.top_k, self.TOP_K_DECAY ** b.epoch)
        if fraction >= 1:
            return fake_scores, {}
        k = max(1, math.ceil(fraction * len(fake_scores)))
        return losses.top_k(fake_scores, k), {"top_k": torch.tensor(k / len(fake_scores))}

    def generator_scores(self, G: nn.Module, D: nn.Module, b: Batch) -> tuple[torch.Tensor, dict]:
        """D's scores of this batch's fakes that the generator's loss is taken over (`kept`), and what to log."""
        return self.kept(D(self.seen_by_d(b.fake_images(G)), b.fake_labels).float(), b)


class NonSaturatingGAN(AdversarialObjective):
    """Goodfellow et al. 2014; with labels passed to D it is the CGAN of Mirza & Osindero 2014."""

    @dataclass(frozen=True)
    class Params(AdversarialObjective.Params):
        # One-sided label smoothing (Salimans et al. 2016, section 3.4): D's target for real images is
        # 1 - label_smoothing; fakes keep 0, which would otherwise reinforce G's mistakes where data is absent.
        label_smoothing: float = 0.0

        def __post_init__(self):
            super().__post_init__()
            Checks(self, "objective").number("label_smoothing", at_least=0, at_most=0.5)

    def discriminator_loss(self, G, D, b):
        fake = b.fake_images(G).detach()
        loss = losses.gan_discriminator_loss(D(self.seen_by_d(b.real), b.labels).float(),
                                             D(self.seen_by_d(fake), b.fake_labels).float(),
                                             1 - self.params.label_smoothing)
        return loss, {"loss_d": loss}

    def generator_loss(self, G, D, b):
        scores, logs = self.generator_scores(G, D, b)
        loss = losses.gan_generator_loss(scores)
        return loss, {"loss_g": loss, **logs}


class WassersteinGP(AdversarialObjective):
    """Gulrajani et al. 2017, Algorithm 1."""

    @dataclass(frozen=True)
    class Params(AdversarialObjective.Params):
        gp_weight: float = 10.0  # lambda, Gulrajani et al. 2017, section 4
        n_critic: int = 5        # critic iterations per generator iteration

        def __post_init__(self):
            super().__post_init__()
            check = Checks(self, "objective")
            check.number("gp_weight", at_least=0)
            check.number("n_critic", at_least=1, at_most=1000)

    @property
    def n_critic(self) -> int:
        return self.params.n_critic

    def discriminator_loss(self, G, D, b):
        fake = b.fake_images(G).detach()
        wasserstein = losses.wasserstein_critic_loss(D(self.seen_by_d(b.real), b.labels).float(),
                                                     D(self.seen_by_d(fake), b.fake_labels).float())
        # Interpolates pair a real and a fake image; a conditional critic scores them under the real labels. The
        # penalty is on the critic D is trained as, augmentation included.
        penalty = losses.gradient_penalty(lambda x: D(self.seen_by_d(x), b.labels), b.real, fake, b.grad_scale)
        loss = wasserstein + self.params.gp_weight * penalty
        return loss, {"loss_d": loss, "wasserstein": -wasserstein, "gp": penalty}

    def generator_loss(self, G, D, b):
        scores, logs = self.generator_scores(G, D, b)
        loss = losses.wasserstein_generator_loss(scores)
        return loss, {"loss_g": loss, **logs}


class AuxiliaryClassifierGAN(AdversarialObjective):
    """Odena et al. 2017: D maximises L_S + L_C, G maximises L_C - L_S (section 3)."""

    @dataclass(frozen=True)
    class Params(NonSaturatingGAN.Params):
        aux_weight: float = 1.0      # weight of the class log-likelihood L_C
        classify_fakes: bool = True  # D's class head also learns L_C on fakes, as in the paper; False: real images only

        def __post_init__(self):
            super().__post_init__()
            Checks(self, "objective").number("aux_weight", at_least=0)

    def discriminator_loss(self, G, D, b):
        fake = b.fake_images(G).detach()
        real_score, real_class = D(self.seen_by_d(b.real))
        fake_score, fake_class = D(self.seen_by_d(fake))
        adversarial = losses.gan_discriminator_loss(real_score.float(), fake_score.float(),
                                                    1 - self.params.label_smoothing)
        auxiliary = losses.auxiliary_classifier_loss(real_class, b.labels)
        if self.params.classify_fakes:
            # Learning the class of fakes from their requested labels lets D's head accept any mark G gives a
            # class; on the MNIST subset, G then drew one fixed wrong digit per class and ignored z.
            auxiliary = auxiliary + losses.auxiliary_classifier_loss(fake_class, b.fake_labels)
        loss = adversarial + self.params.aux_weight * auxiliary
        accuracy = (real_class.argmax(1) == b.labels).float().mean()
        return loss, {"loss_d": loss, "aux_d": auxiliary, "real_class_acc": accuracy}

    def generator_loss(self, G, D, b):
        fake_score, fake_class = D(self.seen_by_d(b.fake_images(G)))
        scores, logs = self.kept(fake_score.float(), b)  # top-k drops fakes from the adversarial term only
        auxiliary = losses.auxiliary_classifier_loss(fake_class, b.fake_labels)
        loss = losses.gan_generator_loss(scores) + self.params.aux_weight * auxiliary
        return loss, {"loss_g": loss, "aux_g": auxiliary, **logs}


class ELBO(Objective):
    """Negative evidence lower bound, Kingma & Welling 2014, eq. 10; kl_weight != 1 gives a beta-VAE."""

    @dataclass(frozen=True)
    class Params:
        reconstruction: str = "bce"  # bce (Bernoulli) | mse (Gaussian)
        kl_weight: float = 1.0       # beta of Higgins et al. 2017; 1 is the plain ELBO

        def __post_init__(self):
            check = Checks(self, "objective")
            check.choice("reconstruction", ("bce", "mse"))
            check.number("kl_weight", at_least=0)

    def generator_loss(self, G, D, b):
        mu, logvar = G.encode(b.real)
        logits = G.decode_logits(G.reparameterize(mu, logvar))
        recon = losses.reconstruction_loss(logits, b.real, self.params.reconstruction)
        kl = losses.gaussian_kl(mu, logvar)
        loss = recon + self.params.kl_weight * kl
        return loss, {"loss": loss, "recon": recon, "kl": kl}

    @torch.no_grad()
    def after_epoch(self, shipped, data, copies=()):
        """Fit a mixture prior to the encoder means of the whole training split (Ghosh et al. 2020, section 4)."""
        if not getattr(shipped, "prior_components", 0):
            return
        shipped.fit_prior_to(data.images)
        for model in copies:
            model.load_state_dict({k: v for k, v in shipped.state_dict().items() if k.startswith("prior_")}, strict=False)

