"""DiffAugment (genmodels.augment; Zhao et al. 2020) checked transform by transform against what the paper says each
does, written out independently with slicing, and in the objectives: D sees real and fake images augmented alike, in
both steps, and G's gradient passes through the augmentation."""
from __future__ import annotations

import pytest
import torch

from genmodels import augment
from genmodels.config import ConfigError
from genmodels.models.lsgan import LeastSquaresGAN
from genmodels.objectives import AuxiliaryClassifierGAN, Batch, NonSaturatingGAN, WassersteinGP


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """image moved down dy and right dx rows / columns, zeros where nothing moved in."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_translation_shifts_each_image_by_at_most_an_eighth_with_zeros_coming_in():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 28, 28) + 0.5  # no zeros of its own
    out = augment.translation(x)
    shifts = set()
    for image, moved in zip(x, out):
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if torch.equal(shifted(image, dy, dx), moved)]
        assert len(found) == 1, "each output is one shift of its input, up to round(28 / 8) = 4 pixels"
        shifts.add(found[0])
    assert len(shifts) > 30, "the shifts are drawn per image"


def test_cutout_zeroes_one_square_of_half_the_size_clipped_at_the_edges_and_nothing_else():
    torch.manual_seed(0)
    x = torch.rand(256, 1, 28, 28) + 0.5
    out = augment.cutout(x)
    whole = 0
    for image, cut in zip(x, out):
        zero = cut[0] == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert zero.sum() == len(rows) * len(cols), "the zeroed pixels form one rectangle"
        assert torch.equal(rows, torch.arange(rows[0], rows[-1] + 1)) and len(rows) <= 14 and len(cols) <= 14
        assert len(rows) == 14 or rows[0] == 0 or rows[-1] == 27, "a square of 14, cut short only by an edge"
        assert torch.equal(cut[0][~zero], image[0][~zero]), "everything else is untouched"
        whole += len(rows) == len(cols) == 14
    assert 0.1 < whole / len(x) < 0.6, "about a quarter of the centres keep the whole square inside (14/28 squared)"


def test_color_on_one_channel_is_a_brightness_shift_then_a_contrast_scale_in_the_papers_ranges():
    torch.manual_seed(0)
    x = torch.rand(200, 1, 8, 8) * 2 - 1
    out = augment.color(x)
    # brightness b, then contrast c about the image mean m: out = c (x + b - mean(x + b)) + mean(x + b)
    centred_in, centred_out = x - x.mean((1, 2, 3), keepdim=True), out - out.mean((1, 2, 3), keepdim=True)
    c = (centred_out * centred_in).sum((1, 2, 3)) / centred_in.square().sum((1, 2, 3))
    torch.testing.assert_close(centred_out, c[:, None, None, None] * centred_in)
    b = (out - x).mean((1, 2, 3))
    assert 0.5 <= c.min() and c.max() <= 1.5 and c.max() - c.min() > 0.8
    assert -0.5 <= b.min() and b.max() <= 0.5 and b.max() - b.min() > 0.8


def test_saturation_scales_colour_about_the_grey_of_each_pixel():
    torch.manual_seed(0)
    x = torch.rand(50, 3, 4, 4)
    torch.manual_seed(1)
    out = augment.color(x)
    grey_in, grey_out = x.mean(1, keepdim=True), out.mean(1, keepdim=True)
    ratio = (out - grey_out) / (x - grey_in)  # saturation times contrast, one number per image
    flat = ratio.flatten(1)
    torch.testing.assert_close(flat, flat[:, :1].expand_as(flat), rtol=1e-3, atol=1e-3)
    assert 0 <= flat.min() and flat.max() <= 3 and flat.max() > 1.5


def test_the_policy_is_read_in_the_papers_order_and_gradients_pass_through_every_transform():
    assert augment.parse_policy("cutout, translation") == ("cutout", "translation") and augment.parse_policy("") == ()
    with pytest.raises(ValueError, match="'flip'"):
        augment.parse_policy("color,flip")
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    torch.manual_seed(3)
    out = augment.diff_augment(x, ("cutout", "translation", "color"))
    torch.manual_seed(3)
    assert torch.equal(out, augment.cutout(augment.translation(augment.color(x))))
    # Each input pixel's gradient of the sum counts the output pixels it lands on: 1 if still shown, 0 if shifted out
    # or cut.
    torch.manual_seed(4)
    out = augment.diff_augment(x, ("translation", "cutout"))
    out.sum().backward()
    assert set(x.grad.unique().tolist()) == {0.0, 1.0} and x.grad.sum() == (out != 0).sum()
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: (torch.manual_seed(5), augment.color(x))[1], (x,))


class Recording(torch.nn.Module):
    """A discriminator that keeps every batch it is shown: a linear score, so G gets a gradient through it."""

    def __init__(self, heads: int = 1):
        super().__init__()
        self.weight, self.seen, self.heads = torch.nn.Parameter(torch.randn(16)), [], heads

    def forward(self, x, labels=None):
        self.seen.append(x.detach().clone())
        score = x.flatten(1) @ self.weight
        return score if self.heads == 1 else (score, score[:, None].expand(-1, 10))


@pytest.mark.parametrize("objective", [NonSaturatingGAN, LeastSquaresGAN, WassersteinGP, AuxiliaryClassifierGAN])
def test_every_adversarial_objective_shows_d_real_and_fake_images_augmented_in_both_steps(objective):
    heads = 2 if objective is AuxiliaryClassifierGAN else 1
    theta = torch.nn.Parameter(torch.zeros(8, 1, 4, 4))
    G = lambda z, y: theta + z[:, :, None, None]  # noqa: E731  (a generator with one parameter tensor)
    real = torch.rand(8, 1, 4, 4) + 0.5
    batch = Batch(real=real, labels=torch.arange(8), z=torch.rand(8, 1) * 0.1, fake_labels=torch.arange(8))
    plain, augmented = objective(objective.Params()), objective(objective.Params(augment="translation,cutout"))
    for obj in (plain, augmented):
        D = Recording(heads)
        obj.discriminator_loss(G, D, batch)
        batch.fake = None
        loss, _ = obj.generator_loss(G, D, batch)
        batch.fake = None
        theta.grad = None
        loss.backward()
        assert theta.grad.abs().sum() > 0, "G's gradient passes through what D was shown"
        first, fake_d, fake_g = D.seen[0], D.seen[1], D.seen[-1]
        expected_fake = torch.tanh(theta + batch.z[:, :, None, None]).detach()
        if obj is plain:
            assert torch.equal(first, real) and torch.equal(fake_d, expected_fake) and torch.equal(fake_g, expected_fake)
        else:
            for seen, source in ((first, real), (fake_d, expected_fake), (fake_g, expected_fake)):
                assert not torch.equal(seen, source) and (seen == 0).any(), "augmented: zeros moved or cut in"


def test_augment_and_label_smoothing_are_config_fields_off_by_default_and_checked():
    from train.config import resolve_config

    run = resolve_config("mnist", "dcgan", [])
    assert run.objective.augment == "" and run.objective.label_smoothing == 0
    run = resolve_config("mnist", "wgan_gp", ['objective.augment="color,translation,cutout"'])
    assert run.objective.augment == "color,translation,cutout"
    with pytest.raises(ConfigError, match="objective.augment names 'flip'"):
        resolve_config("mnist", "dcgan", ['objective.augment="translation,flip"'])
    with pytest.raises(ConfigError, match="label_smoothing"):
        resolve_config("mnist", "acgan", ["objective.label_smoothing=0.7"])
    with pytest.raises(ConfigError, match="label_smoothing"):
        resolve_config("mnist", "wgan_gp", ["objective.label_smoothing=0.1"])
