"""Losses against independent formulations (torch.distributions, BCE on probabilities, hand-derived cases)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from genmodels import losses

torch.manual_seed(0)


def test_gan_losses_equal_bce_on_sigmoid_probabilities():
    real, fake = torch.randn(64), torch.randn(64)
    expected_d = F.binary_cross_entropy(torch.sigmoid(real), torch.ones(64)) + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(64))
    torch.testing.assert_close(losses.gan_discriminator_loss(real, fake), expected_d)
    torch.testing.assert_close(losses.gan_generator_loss(fake), F.binary_cross_entropy(torch.sigmoid(fake), torch.ones(64)))


def test_one_sided_label_smoothing_is_bce_against_the_smoothed_target_for_real_images_only():
    real, fake = torch.randn(64) * 3, torch.randn(64) * 3
    expected = F.binary_cross_entropy_with_logits(real, torch.full((64,), 0.9)) + \
        F.binary_cross_entropy_with_logits(fake, torch.zeros(64))
    torch.testing.assert_close(losses.gan_discriminator_loss(real, fake, real_target=0.9), expected)
    assert torch.equal(losses.gan_discriminator_loss(real, fake, 1.0), losses.gan_discriminator_loss(real, fake))


def test_gan_loss_is_stable_for_extreme_logits():
    assert torch.isfinite(losses.gan_discriminator_loss(torch.tensor([-1e4]), torch.tensor([1e4])))
    assert torch.isfinite(losses.gan_discriminator_loss(torch.tensor([1e4]), torch.tensor([-1e4]), real_target=0.9))
    assert losses.gan_generator_loss(torch.tensor([-1e4])).item() == 1e4


def test_least_squares_losses_equal_half_mse_to_their_targets():
    real, fake = torch.randn(64), torch.randn(64)
    expected_d = 0.5 * F.mse_loss(real, torch.ones(64)) + 0.5 * F.mse_loss(fake, torch.zeros(64))
    torch.testing.assert_close(losses.least_squares_discriminator_loss(real, fake), expected_d)
    torch.testing.assert_close(losses.least_squares_generator_loss(fake), 0.5 * F.mse_loss(fake, torch.ones(64)))
    # the -1/1/0 coding of Mao et al. 2017: scores on their targets cost nothing
    assert losses.least_squares_discriminator_loss(torch.ones(3), -torch.ones(3), 1.0, -1.0).item() == 0.0
    assert losses.least_squares_generator_loss(torch.zeros(3), 0.0).item() == 0.0


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    assert losses.wasserstein_critic_loss(real, fake).item() == -2.0
    assert losses.wasserstein_generator_loss(fake).item() == 0.0


def test_gradient_penalty_of_a_linear_critic_is_known_in_closed_form():
    # D(x) = <w, x> has gradient w everywhere, so the penalty is (||w|| - 1)^2 for any interpolate.
    w = torch.randn(1, 3, 8, 8, requires_grad=True)
    real, fake = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    penalty = losses.gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    torch.testing.assert_close(penalty, (w.detach().norm() - 1) ** 2)
    assert penalty.requires_grad  # the penalty must be differentiable w.r.t. the critic


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = torch.randn(16, 8), torch.randn(16, 8)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(losses.gaussian_kl(mu, logvar), expected)


def test_bernoulli_reconstruction_equals_bce_on_rescaled_tanh_output():
    logits, target = torch.randn(4, 1, 6, 6), torch.rand(4, 1, 6, 6) * 2 - 1
    expected = F.binary_cross_entropy((torch.tanh(logits) + 1) / 2, (target + 1) / 2, reduction="sum") / 4
    torch.testing.assert_close(losses.reconstruction_loss(logits, target, "bce"), expected, rtol=1e-4, atol=1e-4)


def test_gaussian_reconstruction_and_auxiliary_loss():
    logits, target = torch.randn(4, 1, 6, 6), torch.rand(4, 1, 6, 6) * 2 - 1
    expected = 0.5 * F.mse_loss(torch.tanh(logits), target, reduction="sum") / 4
    torch.testing.assert_close(losses.reconstruction_loss(logits, target, "mse"), expected)
    class_logits, labels = torch.randn(10, 10), torch.arange(10)
    expected_ce = -torch.log_softmax(class_logits, 1)[torch.arange(10), labels].mean()
    torch.testing.assert_close(losses.auxiliary_classifier_loss(class_logits, labels), expected_ce)


@pytest.mark.parametrize("classify_fakes", [True, False])
def test_acgan_discriminator_loss_classifies_fakes_only_when_asked(classify_fakes):
    from genmodels.objectives import AuxiliaryClassifierGAN, Batch

    class Scripted(torch.nn.Module):
        """A discriminator with fixed outputs for real and fake batches."""
        def __init__(self, outputs):
            super().__init__()
            self.outputs = outputs

        def forward(self, x):
            return self.outputs[int(x[0, 0, 0, 0] < 0)]  # real images here are positive, fakes negative

    real_score, fake_score, real_class, fake_class = torch.randn(8), torch.randn(8), torch.randn(8, 10), torch.randn(8, 10)
    labels, fake_labels = torch.randint(0, 10, (8,)), torch.randint(0, 10, (8,))
    G = lambda z, y: -torch.ones(8, 1, 4, 4)  # noqa: E731  (pre-tanh output; tanh keeps it negative)
    batch = Batch(real=torch.ones(8, 1, 4, 4), labels=labels, z=torch.randn(8, 3), fake_labels=fake_labels)
    objective = AuxiliaryClassifierGAN(AuxiliaryClassifierGAN.Params(aux_weight=0.5, classify_fakes=classify_fakes))
    loss, logs = objective.discriminator_loss(G, Scripted([(real_score, real_class), (fake_score, fake_class)]), batch)
    # Odena et al. 2017, eq. 1-2, written out with BCE and cross entropy
    adversarial = F.binary_cross_entropy_with_logits(real_score, torch.ones(8)) + \
        F.binary_cross_entropy_with_logits(fake_score, torch.zeros(8))
    auxiliary = F.cross_entropy(real_class, labels) + (F.cross_entropy(fake_class, fake_labels) if classify_fakes else 0)
    torch.testing.assert_close(loss, adversarial + 0.5 * auxiliary)
    torch.testing.assert_close(logs["aux_d"], torch.as_tensor(auxiliary, dtype=torch.float32))


def test_top_k_keeps_the_k_highest_scores():
    scores = torch.tensor([0.3, -2.0, 5.0, 1.0, -0.5])
    assert sorted(losses.top_k(scores, 2).tolist()) == [1.0, 5.0]
    assert sorted(losses.top_k(scores.reshape(5, 1), 5).tolist()) == sorted(scores.tolist())


def _least_squares_generator(s):
    return 0.5 * ((s - 1) ** 2).mean()


@pytest.mark.parametrize("family, written_out", [
    ("dcgan", lambda s: F.binary_cross_entropy_with_logits(s, torch.ones_like(s))),  # non-saturating: -log D(G(z))
    ("wgan_gp", lambda s: -s.mean()),
    ("lsgan", _least_squares_generator),                                             # Mao et al. 2017, eq. 2, c = 1
    ("acgan", lambda s: F.binary_cross_entropy_with_logits(s, torch.ones_like(s))),
])
def test_top_k_generator_loss_is_taken_over_the_fakes_d_scores_highest_on_the_papers_schedule(family, written_out):
    from genmodels.objectives import Batch
    from genmodels.registry import get_family

    objective_class = get_family(family).objective
    scores = torch.randn(100, requires_grad=True)
    class_logits, fake_labels = torch.randn(100, 10), torch.randint(0, 10, (100,))
    D = (lambda x, y=None: (scores, class_logits)) if family == "acgan" else (lambda x, y=None: scores)
    G = lambda z, y: torch.zeros(100, 1, 4, 4)  # noqa: E731
    auxiliary = F.cross_entropy(class_logits, fake_labels) if family == "acgan" else 0
    # Sinha et al. 2020: k = max(gamma^epoch, nu) of the batch, gamma = 0.99; nu = 0.5 here
    for epoch, kept in [(0, 100), (10, 91), (40, 67), (69, 50), (500, 50)]:  # ceil(100 * max(0.99^epoch, 0.5))
        objective = objective_class(objective_class.Params(top_k=0.5))
        batch = Batch(real=torch.ones(100, 1, 4, 4), labels=None, z=torch.randn(100, 3), fake_labels=fake_labels,
                      epoch=epoch)
        scores.grad = None
        loss, logs = objective.generator_loss(G, D, batch)
        best = scores.detach().sort(descending=True).values[:kept]
        torch.testing.assert_close(loss, written_out(best) + auxiliary)
        assert logs.get("top_k", torch.tensor(1.0)).item() == pytest.approx(kept / 100)
        loss.backward()
        ignored = scores.detach() < best[-1]
        assert (scores.grad[ignored] == 0).all() and (scores.grad[~ignored] != 0).all()


def test_top_k_is_refused_outside_its_range_and_where_d_scores_fakes_above_real_images():
    from genmodels.config import ConfigError
    from genmodels.models.lsgan import LeastSquaresGAN
    from genmodels.objectives import NonSaturatingGAN

    for value in (0.0, 1.5):
        with pytest.raises(ConfigError, match=f"objective.top_k must be above 0 and at most 1, got {value}"):
            NonSaturatingGAN.Params(top_k=value)
    with pytest.raises(ConfigError, match="objective.top_k keeps the fakes D scores highest, which needs real_target above"):
        LeastSquaresGAN.Params(top_k=0.5, real_target=-1.0, fake_target=1.0)
    LeastSquaresGAN.Params(real_target=-1.0, fake_target=1.0)  # without top-k the targets may be either way round
