"""Every registered family, at every supported size: the generator interface, save/load, one training step."""
from __future__ import annotations

import re

import pytest
import torch

from genmodels import checkpoint as ckpt
from genmodels.config import ConfigError, from_dict
from genmodels.data import ImageData
from genmodels.objectives import Objective
from genmodels.registry import family_names, get_family
from train.config import resolve_config
from train.trainer import Trainer

FAMILIES = family_names()
SHAPES = [(1, 28), (1, 32), (3, 32), (1, 64), (3, 64)]


def make_config(name: str, channels: int = 1, size: int = 28):
    family = get_family(name)
    values = {"channels": channels, "image_size": size}
    if family.conditional:
        values["num_classes"] = 10
    return from_dict(family.config_cls, values)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("channels,size", SHAPES)
def test_generator_interface(name, channels, size):
    torch.manual_seed(0)
    config = make_config(name, channels, size)
    model = get_family(name).build_generator(config).eval()
    assert model.image_shape == (channels, size, size)
    assert model.latent_dim == config.latent_dim
    assert model.num_classes == (10 if get_family(name).conditional else 0)
    z = torch.randn(3, model.latent_dim) * 20  # large z pushes outputs into tanh saturation
    labels = torch.tensor([0, 4, 9]) if model.num_classes else None
    with torch.no_grad():
        x = model.generate(z, labels)
    assert x.shape == (3, channels, size, size)
    assert x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", FAMILIES)
def test_family_carries_its_facts(name):
    """What the hub card, the zoo, the reconstruct page and the trainer ask about a family is on its Family."""
    family = get_family(name)
    assert re.fullmatch(r"\d{4}\.\d{4,5}", family.arxiv) and family.paper_title and family.summary.endswith(".")
    assert re.search(r"\b(19|20)\d\d$", family.paper)
    assert issubclass(family.objective, Objective) and family.kind in ("gan", "vae")
    model = family.build_generator(make_config(name))
    assert family.has_encoder == hasattr(model, "encode")
    assert family.conditional == bool(model.num_classes) == bool(family.make_config({}).num_classes)


@pytest.mark.parametrize("name", [n for n in FAMILIES if get_family(n).conditional])
def test_conditional_generator_needs_valid_labels(name):
    model = get_family(name).build_generator(make_config(name)).eval()
    z = torch.randn(2, model.latent_dim)
    with pytest.raises(ValueError, match="pass labels"):
        model.generate(z)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        model.generate(z, torch.tensor([0, 10]))
    with torch.no_grad():  # the label changes the image
        a, b = model.generate(z, torch.tensor([1, 1])), model.generate(z, torch.tensor([2, 2]))
    assert not torch.equal(a, b)


def test_wrong_latent_shape_is_rejected():
    model = get_family("dcgan").build_generator(make_config("dcgan"))
    with pytest.raises(ValueError, match=r"z must have shape \[N, 100\]"):
        model.generate(torch.randn(2, 7))


def test_vae_encodes_and_decodes():
    model = get_family("vae").build_generator(make_config("vae", 3, 32)).eval()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, model.latent_dim)
    assert model.decode(mu).shape == x.shape
    with pytest.raises(ValueError, match="expected images of shape"):
        model.encode(torch.zeros(4, 1, 28, 28))


def mixture_vae(weights, means, scales) -> torch.nn.Module:
    """A VAE whose prior is a given mixture of Gaussians with diagonal scales."""
    means = torch.tensor(means)
    model = get_family("vae").build_generator(from_dict(get_family("vae").config_cls, {
        "latent_dim": means.shape[1], "prior_components": len(weights)})).eval()
    model.prior_weights.copy_(torch.tensor(weights))
    model.prior_means.copy_(means)
    model.prior_scale_tril.copy_(torch.diag_embed(torch.tensor(scales)))
    return model


def test_mixture_prior_turns_standard_noise_into_exact_mixture_draws():
    model = mixture_vae([0.6, 0.3, 0.1], [[8.0, 0.0], [0.0, -8.0], [-8.0, 8.0]], [[1.0, 0.5], [0.2, 1.5], [0.5, 0.5]])
    codes = model.code(torch.randn(40000, 2, generator=torch.Generator().manual_seed(0)))
    # Each draw is far nearer its own component than any other, so the nearest mean labels it.
    which = torch.cdist(codes, model.prior_means).argmin(1)
    for k, (w, scale) in enumerate([(0.6, [1.0, 0.5]), (0.3, [0.2, 1.5]), (0.1, [0.5, 0.5])]):
        mine = codes[which == k]
        assert len(mine) / len(codes) == pytest.approx(w, abs=4 * (w * (1 - w) / len(codes)) ** 0.5)
        assert torch.allclose(mine.mean(0), model.prior_means[k], atol=4 * max(scale) / len(mine) ** 0.5)
        assert torch.allclose(mine.std(0), torch.tensor(scale), rtol=0.05)


def test_mixture_prior_noise_is_the_inverse_of_code():
    torch.manual_seed(0)
    model = mixture_vae([0.5, 0.5], [[2.0, 0.0, 1.0], [-2.0, 0.0, -1.0]], [[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    z = torch.randn(500, 3)
    assert torch.allclose(model.noise(model.code(z)), z, atol=1e-4)
    mu = model.code(torch.randn(8, 3))
    with torch.no_grad():  # so a projection that starts from noise(encoder mean) starts at the reconstruction
        assert torch.allclose(model.generate(model.noise(mu)), model.decode(mu), atol=1e-5)
    # truncation shrinks the noise within its component: at 0 every draw is its component's mean
    k = model.split_noise(z)[0]
    assert torch.equal(model.code(model.truncate(z, 0.0)), model.prior_means[k])
    assert torch.equal(model.split_noise(model.truncate(z, 0.5))[0], k)


def test_fit_prior_recovers_a_known_mixture():
    torch.manual_seed(0)
    true_means = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    codes = torch.cat([true_means[0] + torch.randn(3000, 2), true_means[1] + 0.5 * torch.randn(2000, 2),
                       true_means[2] + 0.3 * torch.randn(1000, 2)])
    model = mixture_vae([1 / 3] * 3, [[0.0, 0.0]] * 3, [[1.0, 1.0]] * 3)
    model.fit_prior(codes)
    assert torch.allclose(model.prior_weights, torch.tensor([0.5, 1 / 3, 1 / 6]), atol=1e-3)  # heaviest first
    assert torch.allclose(model.prior_means, true_means, atol=0.05)
    covariances = model.prior_scale_tril @ model.prior_scale_tril.transpose(1, 2)
    assert torch.allclose(covariances, torch.diag_embed(torch.tensor([[1.0] * 2, [0.25] * 2, [0.09] * 2])), atol=0.06)
    with pytest.raises(ValueError, match="prior_components must be 0"):
        get_family("vae").build_generator(from_dict(get_family("vae").config_cls, {"prior_components": -1}))


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_config_key_names_the_valid_ones(name):
    family = get_family(name)
    with pytest.raises(ConfigError) as err:
        from_dict(family.config_cls, {"widht": 3})
    assert "'widht'" in str(err.value) and "latent_dim" in str(err.value) and "image_size" in str(err.value)


def test_wgan_gp_critic_refuses_batch_norm():
    with pytest.raises(ValueError, match="batch norm"):
        from_dict(get_family("wgan_gp").config_cls, {"d_norm": "batch"})


@pytest.mark.parametrize("label_input", ["concat", "multiply"])
def test_label_input_decides_whether_a_class_can_ignore_z(label_input):
    # With z scaled by the label embedding, a class whose embedding is zero gets the same image for every z;
    # with the embedding beside z, z still moves the image.
    config = from_dict(get_family("acgan").config_cls, {"num_classes": 10, "label_input": label_input})
    G = get_family("acgan").build_generator(config).eval()
    with torch.no_grad():
        G.embed.weight[3] = 0
        images = G.generate(torch.randn(4, config.latent_dim), torch.full((4,), 3))
    spread = (images - images[:1]).abs().max().item()
    assert (spread == 0) if label_input == "multiply" else (spread > 1e-3)
    with pytest.raises(ValueError, match="label_input must be"):
        get_family("acgan").build_generator(from_dict(get_family("acgan").config_cls, {"label_input": "add"}))


def test_projection_discriminator_adds_the_class_embeddings_inner_product_with_the_final_map():
    """Miyato & Koyama 2018, eq. 3, computed here by hand from the discriminator's own parts."""
    config = from_dict(get_family("cgan").config_cls, {"num_classes": 10, "d_conditioning": "projection"})
    D = get_family("cgan").build_discriminator(config).eval()
    torch.manual_seed(0)
    x, labels = torch.rand(6, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 3, 3, 9])
    with torch.no_grad():
        h = D.features(x)  # the image alone: no label channel in this mode
        by_hand = [D.score(h[i:i + 1]).item() + float(D.class_embedding.weight[y] @ h[i].reshape(-1))
                   for i, y in enumerate(labels.tolist())]
        scores = D(x, labels)
        other = D(x, (labels + 1) % 10)
    assert torch.allclose(scores, torch.tensor(by_hand), atol=1e-5)
    assert (scores - other).abs().min() > 1e-4  # the class moves every score
    assert D.features.net[0].in_channels == 1 and not hasattr(D, "label_map")
    with pytest.raises(ConfigError, match="d_conditioning must be 'channel' or 'projection'"):
        from_dict(get_family("cgan").config_cls, {"d_conditioning": "concat"})


def test_a_projection_cgan_trains_its_class_embeddings(tmp_path):
    run = resolve_config("mnist-5k", "cgan", ["train.batch_size=8", "train.device='cpu'", "train.fid_every=0",
                                              "model.d_conditioning='projection'"], num_classes=10)
    trainer = Trainer(run, tiny_data(), tmp_path)
    before = trainer.D.class_embedding.weight.clone()
    logs = trainer.iteration(torch.arange(8), train_g=True)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs
    assert not torch.equal(before, trainer.D.class_embedding.weight)


def test_unsupported_image_size_is_a_clear_error():
    with pytest.raises(ValueError, match="image_size must be"):
        get_family("dcgan").build_generator(make_config("dcgan", 1, 30))


@pytest.mark.parametrize("name", FAMILIES)
def test_save_then_load_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(1)
    model = get_family(name).build_generator(make_config(name, 3, 32))
    with torch.no_grad():  # move batch-norm statistics away from their defaults so they must round-trip too
        model.train()(torch.randn(8, model.latent_dim), torch.arange(8) % 10 if model.num_classes else None)
    model.eval()
    ckpt.save(model, tmp_path / "m", name, data={"dataset": "test"})
    loaded = ckpt.load(tmp_path / "m")
    z = torch.randn(5, model.latent_dim)
    labels = torch.arange(5) if model.num_classes else None
    with torch.no_grad():
        assert torch.equal(model.generate(z, labels), loaded.generate(z, labels))
    assert loaded.checkpoint["family"] == name
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]


def tiny_data(channels: int = 1, size: int = 28, n: int = 16) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return ImageData(images, torch.arange(n) % 10, [str(i) for i in range(10)], "random test images", name="tiny")


@pytest.mark.parametrize("name", FAMILIES)
def test_one_training_step_gives_finite_losses_and_changes_weights(name, tmp_path):
    n_critic = ["objective.n_critic=1"] if name == "wgan_gp" else []
    run = resolve_config("mnist-5k", name, ["train.batch_size=8", "train.device='cpu'", "train.fid_every=0", *n_critic],
                         num_classes=10)
    trainer = Trainer(run, tiny_data(), tmp_path)
    before_g = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    before_d = {k: v.clone() for k, v in trainer.D.state_dict().items()} if trainer.D is not None else {}
    logs = trainer.iteration(torch.arange(8), train_g=True)
    assert logs and all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs
    changed = lambda before, module: any(not torch.equal(v, module.state_dict()[k]) for k, v in before.items())  # noqa: E731
    assert changed(before_g, trainer.G)
    if trainer.D is not None:
        assert changed(before_d, trainer.D)
