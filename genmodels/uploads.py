"""Turn an uploaded file of any image format, size and mode into a model input that looks like training data.

Grayscale 28x28 models get the MNIST treatment (LeCun et al. 1998): dark background, the content cropped
and fitted into a 20x20 box, then pasted into 28x28 so that its centre of mass sits at the centre.
Fashion-MNIST (Xiao et al. 2017) instead fills the frame: the longest side becomes 28 and the item is centred.
RGB models get the data loaders' resize-shorter-side and centre crop.

An upload is untrusted bytes: only the formats below are parsed, sizes are checked from the header before
any pixel is decoded, and the decoded image is reduced to at most WORK_SIDE pixels a side straight away, so
memory and time stay bounded whatever the file claims. Every way a file can be unusable ends in an
`UploadError` whose message says why in words.
"""
from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from .data import fit_images, to_float

MAX_BYTES = 10 * 1024 * 1024    # an image; the server takes up to server.maxUploadSize (.streamlit/config.toml), for zips
MAX_PIXELS = 40_000_000         # about a 50-megapixel photo; a decompression bomb claims far more
MAX_ASPECT = 20                 # longer side / shorter side: a 1x400,000 strip holds no picture
WORK_SIDE = 1024                # decoded images are box-reduced to at most this many pixels a side
# The raster formats people upload (JPEG includes the MPO files many phones write). Pillow's other parsers
# (EPS runs Ghostscript; PSD, FITS, ... are rarely used and rarely fuzzed) are never given an upload.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP, TIFF, WebP or PPM/PGM"
# EXIF orientation tag (EXIF 2.3, tag 0x0112) -> the transpose that makes the picture upright.
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
NUMERIC_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # integer and float pixels, rescaled to 0-255
REDUCIBLE = ("L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "F")
# A shape is fitted into the model's box whatever its size, so a dot would become a solid disc filling it: content
# whose longer side spans less than this share of the image's longer side (or under MIN_SIDE pixels) is refused. A
# digit in MNIST spans 20 of 28 pixels; a dot of the Draw page's pen spans 22 of its 280.
MIN_SPAN, MIN_SIDE = 1 / 8, 3
# Content covering more than this share of the image leaves no background around a shape: a frame around the
# picture (taken for the background, its inside for the shape) or ink over all of it, which would fill the box.
MAX_FILL = 0.9


class UploadError(ValueError):
    """The upload cannot be used; the message says why in words a user understands."""


class NotAnImage(UploadError):
    """The bytes are empty or not an image in one of FORMATS, whatever the file's name says."""


class Damaged(UploadError):
    """An image in a readable format whose pixels cannot be decoded: truncated, corrupt, or a decompression bomb."""


class NothingToRead(UploadError):
    """The image decodes but no shape stands out from its background."""


class NoBackground(UploadError):
    """Almost all of the image stands out from its edges: there is no background around a shape."""


class TooSmall(UploadError):
    """The shape is too small to read: fitted into the box it would be a blown-up blob."""


@dataclass
class Prepared:
    image: torch.Tensor                     # [1, C, S, S] in [-1, 1], ready for the model
    notes: list[str] = field(default_factory=list)  # what was done to it, for the page to show


def check_size(width: int, height: int) -> None:
    """Refuse sizes that are empty, too many pixels to decode safely, or too thin to hold a picture."""
    if width < 1 or height < 1:
        raise UploadError("the image has no pixels")
    if width * height > MAX_PIXELS:
        raise UploadError(f"the image is {width}x{height} pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise UploadError(f"the image is {width}x{height} pixels: one side is more than {MAX_ASPECT} times the "
                          "other, too thin to hold a picture")


def reduce(im: Image.Image, side: int) -> Image.Image:
    """Box-average the image by a whole factor until neither side exceeds `side`."""
    factor = -(-max(im.size) // side)
    if factor <= 1:
        return im
    if im.mode not in REDUCIBLE:  # palette indices cannot be averaged; 1-bit and 16-bit pixels have no reduce
        im = im.convert("I" if im.mode in NUMERIC_MODES else "RGBA" if has_alpha(im) else
                        "L" if im.mode == "1" else "RGB")
    return im.reduce(factor)


def has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)


def decode(data: bytes) -> tuple[Image.Image, list[str]]:
    """The upright first frame of an image file, reduced to at most WORK_SIDE a side, and notes on what was done."""
    if len(data) > MAX_BYTES:
        raise UploadError(f"the file is {len(data) / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB")
    if not data:
        raise NotAnImage("the file is empty")
    what = "image"
    try:
        with warnings.catch_warnings():
            # PIL only warns below twice its own limit: make ours a hard error before any pixel is decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on a damaged file: the message below says it
            im = Image.open(io.BytesIO(data), formats=FORMATS)
            what = f"{im.format} image"
            width, height = im.size
            check_size(width, height)
            notes = [f"read a {width}x{height} {im.format} image in mode {im.mode}"]
            if im.format in ("JPEG", "MPO"):  # JPEG decodes at 1/2, 1/4 or 1/8 scale directly, saving memory
                factor = -(-max(width, height) // WORK_SIDE)
                im.draft(im.mode, (width // factor, height // factor))
            im.load()
            try:
                orientation = im.getexif().get(ExifTags.Base.Orientation)
            except Exception:  # noqa: BLE001  (any damage in the EXIF block: the pixels are still fine)
                orientation = None
                notes.append("its EXIF block is damaged, so any rotation recorded there was not applied")
            small = reduce(im, WORK_SIDE)
            if small.size != im.size:
                notes.append(f"reduced to {small.width}x{small.height} by averaging pixel blocks")
            if orientation in UPRIGHT:  # phone photos store their rotation in EXIF
                small = small.transpose(UPRIGHT[orientation])
                notes.append("turned upright as its EXIF orientation says")
            return small, notes
    except UploadError:
        raise
    except UnidentifiedImageError:
        raise NotAnImage(f"this file is not an image in a format this page reads ({FORMAT_NAMES})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Damaged(f"the image claims far more pixels than the {MAX_PIXELS / 1e6:.0f} megapixel limit") from None
    except Exception:  # noqa: BLE001  (a damaged file can make a decoder raise anything: OSError, SyntaxError, struct.error, ...)
        raise Damaged(f"the {what} is damaged or truncated: its pixels could not be decoded") from None


@functools.cache
def lab_to_srgb() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Any PIL mode to "L" or "RGB": transparency is composited onto white, integer and float images are
    rescaled to their own range, LAB goes through a colour-managed transform (Pillow's plain LAB conversion
    copies the channels as they are)."""
    if im.mode in NUMERIC_MODES:
        a = np.asarray(im, dtype=np.float64)
        finite = np.isfinite(a)
        lo, hi = (float(a[finite].min()), float(a[finite].max())) if finite.any() else (0.0, 0.0)
        a = np.where(finite, (a - lo) / (hi - lo) * 255, 0) if hi > lo else np.zeros_like(a)
        im = Image.fromarray(a.round().astype(np.uint8), "L")
    if im.mode == "LAB":
        im = ImageCms.applyTransform(im, lab_to_srgb())
    if im.mode in ("La", "RGBa"):  # premultiplied alpha: PIL converts these only to their straight-alpha forms
        im = im.convert(im.mode[:-1] + "A")
    if has_alpha(im):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    try:
        return im.convert(mode)
    except ValueError:
        raise UploadError(f"images in PIL mode {im.mode} cannot be converted to {mode}") from None


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
        raise NothingToRead("the image looks blank: no shape stands out from its background")
    content *= 255.0 / peak
    ink = content > 0.1 * 255
    if ink.mean() > MAX_FILL:
        raise NoBackground(f"{ink.mean():.0%} of the image stands out from its edges, so no background shows around "
                           "a shape (a frame around the picture, or ink over all of it?). Crop it to the shape, with "
                           "some background around it")
    rows, cols = np.nonzero(ink)
    crop = content[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    h, w = crop.shape
    if max(h, w) < max(MIN_SIDE, MIN_SPAN * max(gray.shape)):
        raise TooSmall(f"the shape is too small to read: it spans {w}x{h} of the image's {gray.shape[1]}x"
                       f"{gray.shape[0]} pixels, and fitting it into the {box}-pixel box would blow it up into a blob. "
                       "Draw it larger, or crop the image closer around it")
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
    im, notes = decode(data)
    channels, size, _ = image_shape
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
