"""Uploads as a hostile visitor makes them: a seeded generator of odd and broken files, each prepared for
every kind of model. The bar (issue 17): at least 1,000 generated uploads give no exception other than
UploadError, and none costs more than MAX_PEAK_MB of memory."""
from __future__ import annotations

import io
import random
import struct
import time
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from genmodels.uploads import MAX_PIXELS, UploadError, prepare_upload
from peak_memory import peak_mb

N_UPLOADS = 1000
# A 40-megapixel RGBA or float image, the largest that passes the header checks, takes 160 MB decoded, and
# Pillow's reduce of RGBA premultiplies into a second copy; everything after that works on <= 1024 x 1024 pixels.
MAX_PEAK_MB = 320
TARGETS = [((1, 28, 28), "mnist"), ((1, 28, 28), "fashion-mnist"), ((3, 32, 32), "cifar10"), ((3, 64, 64), "folder:x")]
# Modes and the formats that can hold them (Pillow's writers), so valid files of every mode exist.
WRITERS = {
    "1": ["PNG", "BMP", "TIFF", "GIF", "PPM"], "L": ["PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP", "PPM"],
    "P": ["PNG", "BMP", "TIFF", "GIF"], "RGB": ["PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP", "PPM"],
    "RGBA": ["PNG", "TIFF", "WEBP", "BMP"], "CMYK": ["JPEG", "TIFF"], "YCbCr": ["TIFF"], "LAB": ["TIFF"],
    "I": ["PNG", "TIFF", "PPM"], "I;16": ["PNG", "TIFF", "PPM"], "F": ["TIFF"], "LA": ["PNG", "TIFF", "WEBP"],
    "RGBX": ["TIFF"], "PA": ["TIFF"], "La": ["TIFF"], "RGBa": ["TIFF"],
}
EXTRA_SAMPLES = b"R\x01\x03\x00\x01\x00\x00\x00"  # TIFF tag 338 (ExtraSamples), SHORT, 1 value, little-endian
OTHER_FORMATS = ["ICO", "TGA", "PCX", "SGI", "IM", "QOI", "DDS", "EPS", "PDF", "SPIDER", "MSP"]
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF\0\0\0\0WEBPVP8 ",
         b"P5\n", b"P6\n", b"%!PS-Adobe-3.0 EPSF-3.0\n", b"8BPS"]


@dataclass
class Upload:
    what: str     # how it was made, to reproduce a failure by hand
    data: bytes


def encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def premultiplied_tiff(im: Image.Image) -> bytes:
    """An La or RGBa TIFF (alpha premultiplied), which Pillow reads but cannot write: write the straight-alpha
    image and mark its extra sample as associated alpha (1) instead of unassociated (2)."""
    data = bytearray(encode(im.convert("LA" if im.mode == "La" else "RGBA"), "TIFF"))
    at = data.find(EXTRA_SAMPLES)
    assert at > 0 and data[at + 8] == 2
    data[at + 8] = 1
    return bytes(data)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header claims width x height and whose data is a few compressed zero rows: what a bomb looks like."""
    row = b"\0" * (1 + min(width, 4096))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(row * 8)) + png_chunk(b"IEND", b""))


def random_image(rng: random.Random, mode: str) -> Image.Image:
    """A small image of `mode`: noise, a blank page or a drawn ring, at a random (sometimes extreme) size."""
    side = rng.choice([1, 2, 3, 7, 28, 64, 150, 300])
    other = max(1, int(side * rng.choice([1, 1, 0.5, 2, 0.05, 19, 25])))
    w, h = (side, other) if rng.random() < 0.5 else (other, side)
    w, h = min(w, 3000), min(h, 3000)
    base = Image.new("L", (w, h), rng.choice([0, 255, rng.randrange(256)]))
    style = rng.choice(["noise", "blank", "ring"])
    if style == "noise":
        base = Image.fromarray(np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (h, w), dtype=np.uint8))
    elif style == "ring":
        from PIL import ImageDraw
        ImageDraw.Draw(base).ellipse((w * 0.2, h * 0.1, w * 0.8, h * 0.9), outline=255 - base.getpixel((0, 0)),
                                     width=max(1, min(w, h) // 8))
    if mode in ("I", "I;16", "F"):
        scale = rng.choice([1, 200, 1e-3, 1e30])
        dtype = {"I": np.int32, "I;16": np.uint16, "F": np.float32}[mode]
        a = np.asarray(base, dtype=np.float64) * (scale if mode == "F" else min(scale, 200))
        if mode == "F" and rng.random() < 0.3:
            a[rng.randrange(h), rng.randrange(w)] = rng.choice([np.nan, np.inf, -np.inf])
        return Image.fromarray(a.astype(dtype), mode if mode != "I;16" else None)
    if mode in ("La", "RGBa", "PA", "LA", "RGBA"):
        alpha = base.point(lambda v: 255 - v) if rng.random() < 0.5 else Image.new("L", base.size, rng.randrange(256))
        if mode in ("LA", "La"):
            return Image.merge(mode, (base, alpha))
        rgba = Image.merge("LA", (base, alpha)).convert("RGBA")
        return Image.merge("RGBa", rgba.split()) if mode == "RGBa" else rgba.convert(mode)
    if mode == "P" and rng.random() < 0.5:
        im = base.convert("P")
        im.info["transparency"] = rng.randrange(256)
        return im
    if mode == "LAB":
        return Image.merge("LAB", (base, base.point(lambda v: v // 2 + 64), base.point(lambda v: 255 - v)))
    return base.convert(mode)


def valid_file(rng: random.Random) -> Upload:
    mode = rng.choice(list(WRITERS))
    fmt = rng.choice(WRITERS[mode])
    im = random_image(rng, mode)
    kwargs = {}
    if fmt in ("PNG", "WEBP", "JPEG") and rng.random() < 0.3:
        kwargs["exif"] = rng.choice([
            b"MM\x00\x1a\x00\x00\x00\x08",                      # the issue's corrupt EXIF block
            b"Exif\x00\x00" + rng.randbytes(rng.randrange(40)),
            orientation_exif(rng.choice([0, 1, 3, 6, 8, 9, 65535])),
        ])
    if fmt == "GIF" and rng.random() < 0.3:  # animated: the first frame counts
        kwargs.update(save_all=True, append_images=[Image.new(im.mode, im.size, 0)])
    if fmt == "TIFF" and rng.random() < 0.3:
        kwargs["compression"] = rng.choice(["tiff_lzw", "tiff_adobe_deflate", "packbits"])
    try:
        data = premultiplied_tiff(im) if im.mode in ("La", "RGBa") else encode(im, fmt, **kwargs)
    except (OSError, ValueError, KeyError):  # a writer that does not take this mode or option after all
        fmt, data = "TIFF", encode(im, "TIFF")
    return Upload(f"{fmt} {im.mode} {im.width}x{im.height} {sorted(kwargs)}", data)


def orientation_exif(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def broken_file(rng: random.Random, good: Upload) -> Upload:
    data = bytearray(good.data)
    how = rng.choice(["truncate", "flip", "splice", "zero-tail"])
    if how == "truncate":
        cut = rng.randrange(len(data))
        data = data[:cut]
    elif how == "flip":
        for _ in range(rng.choice([1, 2, 8, 64])):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == "splice":
        a, b = sorted(rng.randrange(len(data)) for _ in range(2))
        data = data[:a] + data[b:] + data[a:b]
    else:
        start = rng.randrange(len(data))
        data[start:] = bytes(len(data) - start)
    return Upload(f"{how} of {good.what}", bytes(data))


def random_bytes(rng: random.Random) -> Upload:
    body = rng.randbytes(rng.choice([0, 1, 10, 200, 2000]))
    prefix = rng.choice([b"", *MAGIC])
    return Upload(f"random bytes after {prefix[:8]!r}", prefix + body)


def other_format(rng: random.Random) -> Upload:
    fmt = rng.choice(OTHER_FORMATS)
    im = Image.new("RGB", (rng.randrange(1, 64), rng.randrange(1, 64)), (200, 10, 10))
    try:
        data = encode(im, fmt)
    except (OSError, ValueError, KeyError):  # no writer here (e.g. EPS needs Ghostscript): a plausible header
        data = {"EPS": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "PDF": b"%PDF-1.4\n"}.get(fmt, b"") + b"\0" * 64
    return Upload(f"{fmt} file", data)


def bomb(rng: random.Random) -> Upload:
    width, height = rng.choice([(6300, 6300), (8000, 6000), (1, 400_000), (1, 39_990_000), (65535, 65535),
                                (2**31 - 1, 1), (0, 10), (400_000, 1)])
    return Upload(f"PNG header claiming {width}x{height}", png_header_only(width, height))


def uploads(seed: int, n: int) -> list[Upload]:
    """n uploads drawn from a seeded mix: valid files of every mode, damaged ones, bombs, non-images."""
    rng = random.Random(seed)
    big = [  # decodable and large: the worst cases for memory and time, made once
        Upload("PNG 1-bit 6300x6300", encode(Image.new("1", (6300, 6300), 1), "PNG")),
        Upload("PNG RGBA 6300x6300", encode(Image.new("RGBA", (6300, 6300), (10, 20, 30, 40)), "PNG")),
        Upload("TIFF F 6300x6300", encode(Image.new("F", (6300, 6300), 3.5), "TIFF", compression="tiff_adobe_deflate")),
        Upload("JPEG RGB 4000x3000", encode(Image.new("RGB", (4000, 3000), (250, 250, 250)), "JPEG")),
        Upload("PNG I;16 5000x5000", encode(Image.fromarray(np.full((5000, 5000), 60000, np.uint16)), "PNG")),
        Upload("PNG 1x400000 strip", encode(Image.new("L", (1, 400_000), 0), "PNG")),
    ]
    out = list(big)
    while len(out) < n:
        kind = rng.random()
        if kind < 0.45:
            out.append(valid_file(rng))
        elif kind < 0.80:
            out.append(broken_file(rng, valid_file(rng)))
        elif kind < 0.90:
            out.append(random_bytes(rng))
        elif kind < 0.95:
            out.append(other_format(rng))
        else:
            out.append(bomb(rng))
    return out


@pytest.fixture(scope="module")
def generated():
    return uploads(seed=17, n=N_UPLOADS)


def test_generated_uploads_raise_nothing_but_upload_error_within_a_memory_bound(generated):
    rng = random.Random(0)
    failures, peaks, outcomes = [], [], {"prepared": 0, "refused": 0}
    started = time.perf_counter()
    for i, upload in enumerate(generated):
        shape, dataset = TARGETS[i % len(TARGETS)] if i >= 6 else TARGETS[rng.randrange(len(TARGETS))]
        prepared = None
        with peak_mb() as peak:
            try:
                prepared = prepare_upload(upload.data, shape, dataset)
            except UploadError as e:
                outcomes["refused"] += 1
                assert str(e) and "Traceback" not in str(e)
            except Exception as e:  # noqa: BLE001  (exactly what the bar counts)
                failures.append(f"#{i} {upload.what} for {shape}: {type(e).__name__}: {e}")
        peaks.append((peak[0], upload.what))
        if prepared is not None:
            outcomes["prepared"] += 1
            x = prepared.image
            assert x.shape == (1, *shape) and bool(x.isfinite().all()) and x.min() >= -1 and x.max() <= 1, upload.what
    seconds = time.perf_counter() - started
    worst = max(peaks)
    print(f"\n{len(generated)} uploads in {seconds:.1f} s: {outcomes}; worst peak {worst[0]:.0f} MB ({worst[1]})")
    assert len(generated) >= 1000
    assert not failures, "\n".join(failures)
    assert worst[0] < MAX_PEAK_MB, worst
    assert outcomes["prepared"] > 200 and outcomes["refused"] > 200  # the mix holds both, or it tests little


@pytest.mark.parametrize("data, message", [
    (png_header_only(1, 39_990_000), "more than 20 times"),
    (encode(Image.new("L", (1, 400_000), 0), "PNG"), "more than 20 times"),
    (png_header_only(70_000, 70_000), "claims far more pixels"),
    (encode(Image.new("RGB", (20, 20), 0), "ICO"), "not an image in a format this page reads"),
    (b"", "empty"),
])
def test_the_issues_reproducers_are_refused_with_a_reason(data, message):
    with pytest.raises(UploadError, match=message):
        prepare_upload(data, (3, 32, 32))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_damaged_exif_block_is_skipped_and_said(fmt):
    square = Image.new("RGB", (60, 60), 0)
    square.paste((255, 255, 255), (20, 20, 40, 40))
    data = encode(square, fmt, exif=b"MM\x00\x1a\x00\x00\x00\x08")  # the issue's reproducer
    for shape, dataset in TARGETS:
        prepared = prepare_upload(data, shape, dataset)
        assert any("EXIF block is damaged" in n for n in prepared.notes)
        assert (prepared.image[0, :, shape[1] // 2, shape[2] // 2] > 0.5).all()


@pytest.mark.parametrize("mode", ["LAB", "La"])
def test_lab_and_premultiplied_tiffs_are_converted(mode):
    # A light disc on black, in each mode: the model input shows the disc (its bounding box's corners stay dark).
    from PIL import ImageDraw

    disc = Image.new("L", (80, 80), 0)
    ImageDraw.Draw(disc).ellipse((20, 20, 60, 60), fill=190)
    flat = Image.new("L", disc.size, 128 if mode == "LAB" else 255)
    im = Image.merge(mode, (disc, flat, flat) if mode == "LAB" else (disc, flat))
    data = premultiplied_tiff(im) if mode == "La" else encode(im, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == mode
    for shape, dataset in TARGETS:
        x = prepare_upload(data, shape, dataset).image
        centre, corner = x[0, :, shape[1] // 2, shape[2] // 2], x[0, :, 0, 0]
        assert (centre > corner + 0.5).all(), (mode, shape)


def test_big_images_are_decoded_reduced():
    # A 6300 x 6300 page with a digit-sized square: 40 megapixels in, a 28 x 28 input out, the square kept.
    im = Image.new("L", (6300, 6300), 255)
    im.paste(0, (2000, 2000, 4000, 4000))
    prepared = prepare_upload(encode(im, "PNG"), (1, 28, 28), "mnist")
    assert any("reduced to 900x900" in n for n in prepared.notes)
    assert prepared.image[0, 0, 14, 14] == 1 and prepared.image[0, 0, 0, 0] == -1
    assert MAX_PIXELS >= 6300 * 6300


def page(side: int = 280, ink: tuple | None = None, dot: tuple | None = None, frame: bool = False) -> Image.Image:
    """A white page, dark ink on it: a disc in the box `ink` (x0, y0, x1, y1), one pixel at `dot`, or a
    one-pixel-wide frame around the edge."""
    from PIL import ImageDraw

    im = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(im)
    if ink:
        draw.ellipse(ink, fill=0)
    if dot:
        im.putpixel(dot, 0)
    if frame:
        draw.rectangle((0, 0, side - 1, side - 1), outline=0)
    return im


# Found by fault injection (issue 27): each became a solid 20x20 square, 400 of the 784 pixels, in the model input.
@pytest.mark.parametrize("image, refusal", [
    (page(dot=(140, 140)), "too small to read: it spans 1x1 of the image's 280x280 pixels.*Draw it larger"),
    (page(28, dot=(14, 14)), "too small to read: it spans 1x1 of the image's 28x28"),
    (page(ink=(129, 129, 151, 151)), "too small to read: it spans 23x23"),  # a tap with the Draw page's 22 px pen
    (page(frame=True), "no background shows around a shape .*a frame around the picture"),
])
def test_a_dot_or_a_frame_is_refused_not_blown_up_to_fill_the_box(image, refusal):
    for shape, dataset in TARGETS[:2]:
        with pytest.raises(UploadError, match=refusal):
            prepare_upload(encode(image, "PNG"), shape, dataset)


def test_a_small_but_readable_shape_is_still_fitted():
    # The smallest span taken: an eighth of the page, dark on white, fitted into MNIST's 20-pixel box.
    x = prepare_upload(encode(page(ink=(122, 122, 157, 157)), "PNG"), (1, 28, 28), "mnist").image
    assert x[0, 0, 14, 14] == 1 and x[0, 0, 0, 0] == -1
