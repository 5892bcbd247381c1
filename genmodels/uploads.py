"""Turn an uploaded file of any image format, size and mode into a model input that looks like training data.

Grayscale 28x28 models get the MNIST treatment (LeCun et al. 1998): dark background, the content cropped
and fitted into a 20x20 box, then pasted into 28x28 so that its centre of mass sits at the centre.
Fashion-MNIST (Xiao et al. 2017) instead fills the frame: the longest side becomes 28 and the item is centred.
RGB models get the data loaders' resize-shorter-side and centre crop.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .data import fit_images, to_float

MAX_BYTES = 10 * 1024 * 1024    # matches server.maxUploadSize in .streamlit/config.toml
MAX_PIXELS = 40_000_000         # about a 50-megapixel photo; a decompression bomb claims far more


class UploadError(ValueError):
    """The upload cannot be used; the message says why in words a user understands."""


@dataclass
class Prepared:
    image: torch.Tensor                     # [1, C, S, S] in [-1, 1], ready for the model
    notes: list[str] = field(default_factory=list)  # what was done to it, for the page to show


def open_image(data: bytes) -> Image.Image:
    """Decode the first frame of an image file, refusing non-images and images too large to decode safely."""
    if len(data) > MAX_BYTES:
        raise UploadError(f"the file is {len(data) / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB")
    try:
        with warnings.catch_warnings():
            # PIL only warns below twice its own limit: make ours a hard error before any pixel is decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise UploadError(f"the image is {w}x{h} pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels")
            if w < 1 or h < 1:
                raise UploadError("the image has no pixels")
            im.seek(0)
            im.load()
    except UploadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        if isinstance(e, UnidentifiedImageError):
            raise UploadError("this file is not an image PIL can read (try PNG or JPEG)") from None
        raise UploadError(f"the image is too large to decode safely ({e})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt image data
        raise UploadError(f"the image file is damaged or truncated ({e})") from None
    ImageOps.exif_transpose(im, in_place=True)  # phone photos store their rotation in EXIF
    return im


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Any PIL mode to "L" or "RGB": transparency is composited onto white, high-bit-depth images rescaled."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        im = Image.fromarray(a.round().astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return im.convert(mode)


def centre_digit(gray: np.ndarray, size: int, box: int, by_mass: bool) -> tuple[np.ndarray, list[str]]:
    """Light-on-dark content cropped, fitted into box x box and centred in size x size (float 0-255 in, uint8 out)."""
    notes = []
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 127:
        gray, background = 255.0 - gray, 255.0 - background
        notes.append("inverted: the training images are light on a dark background")
    content = np.clip(gray - background, 0, None)
    peak = content.max()
    if peak < 16:
        raise UploadError("the image looks blank: no shape stands out from its background")
    content *= 255.0 / peak
    rows, cols = np.nonzero(content > 0.1 * 255)
    crop = content[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    fitted = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize((new_w, new_h), Image.LANCZOS))
    fitted = np.clip(fitted, 0, 255)
    canvas = np.zeros((size, size), dtype=np.float64)
    if by_mass:
        ys, xs = np.mgrid[0:new_h, 0:new_w]
        mass = fitted.sum()
        cy, cx = (ys * fitted).sum() / mass, (xs * fitted).sum() / mass
        top, left = round(size / 2 - cy - 0.5), round(size / 2 - cx - 0.5)
    else:
        top, left = (size - new_h) // 2, (size - new_w) // 2
    # Paste with clipping: a lopsided shape's centre of mass can push part of the box off the canvas.
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + new_h, size), min(left + new_w, size)
    canvas[y0:y1, x0:x1] = fitted[y0 - top: y1 - top, x0 - left: x1 - left]
    notes.append(f"cropped to its content ({w}x{h}), fitted into {box}x{box} and centred "
                 f"{'by centre of mass' if by_mass else 'in the frame'} in {size}x{size}")
    return canvas.round().astype(np.uint8), notes


def prepare_upload(data: bytes, image_shape: tuple[int, int, int], dataset: str = "") -> Prepared:
    """The uploaded file as a [1, C, S, S] model input in [-1, 1], converted like the model's training data."""
    im = open_image(data)
    channels, size, _ = image_shape
    notes = [f"read a {im.width}x{im.height} {im.format or ''} image in mode {im.mode}".replace("  ", " ")]
    if channels == 1:
        gray = np.asarray(to_mode(im, "L"), dtype=np.float64)
        fashion = dataset == "fashion-mnist"
        box = size if fashion else round(size * 20 / 28)
        pixels, steps = centre_digit(gray, size, box, by_mass=not fashion)
        notes += ["converted to grayscale", *steps]
        tensor = torch.from_numpy(pixels)[None, None]
    elif channels == 3:
        rgb = np.asarray(to_mode(im, "RGB"), dtype=np.uint8)
        tensor = fit_images(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None], size, 3)
        notes.append(f"converted to RGB, shorter side resized to {size} and centre-cropped")
    else:
        raise UploadError(f"models with {channels} channels are not supported for uploads")
    return Prepared(to_float(tensor), notes)
