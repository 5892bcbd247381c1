"""genmodels.explore (PCA, GANSpace directions, label text) and genmodels.uploads (any image -> model input)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from genmodels import checkpoint as ckpt
from genmodels.explore import LabelTextError, labels_from_text, pca, principal_directions, project_2d
from genmodels.uploads import MAX_BYTES, UploadError, prepare_upload

from app_fixtures import weights_dir  # noqa: F401  (fixture)

DIGITS = [str(i) for i in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def ring(size=(300, 200), mode="RGB", background=255, ink=0) -> Image.Image:
    """A dark ring drawn off-centre on a light page, like a photographed "0"."""
    im = Image.new("L", size, background)
    ImageDraw.Draw(im).ellipse((40, 30, 110, 170), outline=ink, width=14)
    return im.convert(mode)


def centre_of_mass(x: torch.Tensor) -> tuple[float, float]:
    w = (x + 1).squeeze().double()
    ys, xs = torch.meshgrid(torch.arange(w.shape[0]), torch.arange(w.shape[1]), indexing="ij")
    return float((ys * w).sum() / w.sum() + 0.5), float((xs * w).sum() / w.sum() + 0.5)


# ---- explore ---------------------------------------------------------------------------------------------

def test_pca_finds_the_axis_of_largest_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 3, generator=g) * torch.tensor([5.0, 1.0, 0.1])
    mean, components, ratio = pca(x, 2)
    assert abs(components[0] @ torch.tensor([1.0, 0, 0])) > 0.99
    assert abs(components[1] @ torch.tensor([0, 1.0, 0])) > 0.99
    assert ratio[0] > 0.9 and ratio[0] > ratio[1]


def test_project_2d_keeps_two_dimensional_codes_and_reduces_larger_ones():
    x = torch.randn(50, 2)
    coords, _ = project_2d(x)
    assert torch.equal(coords, x)
    coords, ratio = project_2d(torch.randn(50, 16))
    assert coords.shape == (50, 2) and ratio.shape == (2,)


def test_principal_directions_move_images_more_than_random_directions(weights_dir):  # noqa: F811
    model = ckpt.load(weights_dir / "mnist-5k" / "dcgan")
    d = principal_directions(model, k=4, n_samples=512)
    assert d.vectors.shape == (4, model.latent_dim)
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.all(d.explained[:-1] >= d.explained[1:])
    z = torch.randn(64, model.latent_dim, generator=torch.Generator().manual_seed(1))
    random_dir = torch.nn.functional.normalize(torch.randn(model.latent_dim, generator=torch.Generator().manual_seed(2)), dim=0)
    with torch.no_grad():
        base = model.generate(z)
        along_pc1 = (model.generate(z + 2 * d.vectors[0]) - base).square().mean()
        along_random = (model.generate(z + 2 * random_dir) - base).square().mean()
    assert along_pc1 > along_random


def test_principal_directions_of_a_conditional_model(weights_dir):  # noqa: F811
    model = ckpt.load(weights_dir / "mnist-5k" / "cgan")
    assert principal_directions(model, k=3, n_samples=256).vectors.shape == (3, model.latent_dim)


@pytest.mark.parametrize("text, names, expected", [
    ("2026", DIGITS, [2, 0, 2, 6]),
    (" 7 1 ", DIGITS, [7, 1]),
    ("Bag, sneaker,0", FASHION, [8, 7, 0]),
    ("ankle boot", FASHION, [9]),
    ("2026", FASHION, [2, 0, 2, 6]),
    ("", DIGITS, []),
])
def test_labels_from_text(text, names, expected):
    assert labels_from_text(text, names, 10) == expected


def test_labels_from_text_names_what_it_cannot_read():
    with pytest.raises(LabelTextError, match="'x'.*0=0"):
        labels_from_text("2x", DIGITS, 10)
    with pytest.raises(LabelTextError, match="'Hat'"):
        labels_from_text("Bag, Hat", FASHION, 10)


# ---- uploads ---------------------------------------------------------------------------------------------

def test_mnist_style_upload_is_inverted_fitted_and_centred_by_mass():
    prepared = prepare_upload(encode(ring()), (1, 28, 28), "mnist")
    x = prepared.image
    assert x.shape == (1, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert x[0, 0, 0, 0] == -1, "background is dark after inverting a light page"
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) < 0.6 and abs(cx - 14) < 0.6
    rows = (x[0, 0] > -0.8).any(1).nonzero()
    assert rows.max() - rows.min() + 1 <= 21, "content fits the 20-pixel box"
    assert any("inverted" in n for n in prepared.notes)


def test_dark_background_is_not_inverted():
    prepared = prepare_upload(encode(ring(background=0, ink=255)), (1, 28, 28), "mnist")
    assert not any("inverted" in n for n in prepared.notes)
    assert prepared.image[0, 0, 0, 0] == -1


def test_fashion_upload_fills_the_frame():
    x = prepare_upload(encode(ring()), (1, 28, 28), "fashion-mnist").image
    rows = (x[0, 0] > -0.8).any(1).nonzero()
    assert rows.max() - rows.min() + 1 >= 27


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "1", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_any_pil_mode_is_converted(mode):
    base = ring(mode="L")
    if mode in ("RGBA", "LA"):
        im = Image.new(mode, base.size, (0,) * len(mode))  # fully transparent page
        ImageDraw.Draw(im).ellipse((40, 30, 110, 170), outline=(0,) * (len(mode) - 1) + (255,), width=14)
    elif mode in ("I;16", "I", "F"):
        im = Image.fromarray((np.asarray(base, dtype=np.float64) * 200).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    else:
        im = base.convert(mode)
    fmt = {"CMYK": "JPEG", "YCbCr": "JPEG", "F": "TIFF", "I": "TIFF"}.get(mode, "PNG")
    x = prepare_upload(encode(im if mode != "YCbCr" else base.convert("RGB"), fmt), (1, 28, 28), "mnist").image
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1, mode


def test_rgb_models_get_resize_and_centre_crop():
    prepared = prepare_upload(encode(ring(mode="RGB"), "JPEG"), (3, 32, 32), "cifar10")
    assert prepared.image.shape == (1, 3, 32, 32)
    assert any("centre-cropped" in n for n in prepared.notes)


def test_first_frame_of_an_animated_gif():
    frames = [ring(mode="L"), Image.new("L", (300, 200), 255)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert prepare_upload(data, (1, 28, 28)).image.shape == (1, 1, 28, 28)


@pytest.mark.parametrize("data, message", [
    (b"just some text, not an image", "not an image"),
    (encode(ring())[:300], "damaged or truncated"),
    (encode(Image.new("L", (64, 64), 255)), "blank"),
    (b"\0" * (MAX_BYTES + 1), "limit is 10 MB"),
])
def test_bad_uploads_are_refused_with_a_reason(data, message):
    with pytest.raises(UploadError, match=message):
        prepare_upload(data, (1, 28, 28))


def test_huge_images_are_refused_before_decoding():
    # 8000 x 6000 one-bit pixels compress to a few kB but would decode to 48 megapixels.
    bomb = encode(Image.new("1", (8000, 6000), 1))
    assert len(bomb) < 100_000
    with pytest.raises(UploadError, match="megapixels"):
        prepare_upload(bomb, (1, 28, 28))
