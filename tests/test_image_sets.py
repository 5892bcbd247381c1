"""genmodels.image_sets on zips and files made here: real photo crops (scikit-image's sample photographs) in class
folders become a labelled dataset the trainer's folder loader reads; every hostile zip is refused in words, and the
file system shows that nothing of it was kept or landed outside the temporary folder."""
from __future__ import annotations

import functools
import importlib.util
import io
import re
import stat
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genmodels import image_sets as sets
from genmodels.data import load_data

# Sample photographs inside scikit-image's data folder, read as files (importing skimage.data pulls in SciPy).
PHOTOS = {"cats": ("chelsea.png",), "things": ("coffee.png", "rocket.jpg", "astronaut.png")}


@functools.cache
def photograph(name: str) -> np.ndarray:
    folder = Path(importlib.util.find_spec("skimage").submodule_search_locations[0]) / "data"
    with Image.open(folder / name) as im:
        return np.asarray(im.convert("RGB"))


def crops(kind: str, n: int, seed: int = 0, fmt: str = "JPEG") -> list[bytes]:
    """n random crops of the sample photographs of a kind, encoded as image files."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        picture = photograph(PHOTOS[kind][i % len(PHOTOS[kind])])
        h, w = rng.integers(48, 160, 2)
        y, x = rng.integers(0, picture.shape[0] - h), rng.integers(0, picture.shape[1] - w)
        buf = io.BytesIO()
        Image.fromarray(picture[y:y + h, x:x + w]).save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


def zip_of(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def raw_zip(name: str, deflated: bytes, crc: int, size: int) -> bytes:
    """A one-entry zip with the deflate stream and the header fields as given, true or not (zipfile cannot write a
    stream it did not compress itself, nor a size that is not the stream's)."""
    encoded = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded), 0)
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded),
                          0, 0, 0, 0, 0, 0)
    body = local + encoded + deflated
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(encoded), len(body), 0)
    return body + central + encoded + end


def zeros_stream(megabytes: int) -> bytes:
    """A deflate stream of `megabytes` MiB of zeros in about a kilobyte a MiB, made without compressing them all:
    one sync-flushed block repeated, then an empty final block."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = block.compress(bytes(2**20)) + block.flush(zlib.Z_SYNC_FLUSH)
    return one * megabytes + b"\x03\x00"


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if not p.is_dir())


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "sets"


def test_a_labelled_zip_of_photos_becomes_a_dataset_once(root):
    good = {kind: crops(kind, 8, seed=i) for i, kind in enumerate(PHOTOS)}
    truncated = good["cats"][0][: len(good["cats"][0]) // 3]
    upload = zip_of([*((f"holiday/{kind}/{i}.jpg", d) for kind, ds in good.items() for i, d in enumerate(ds)),
                     ("holiday/cats/broken.jpg", truncated),
                     ("holiday/things/notes.png", b"shopping list: milk, eggs\n"),
                     ("holiday/things/photo.png", crops("things", 1, seed=9, fmt="PNG")[0]),  # PNG named for what it is
                     ("holiday/readme.jpg", good["cats"][1]),
                     ("__MACOSX/holiday/cats/._0.jpg", b"\0\5\26\7"), ("holiday/empty-folder/", b"")])

    made = sets.from_zip(upload, root, 64, name="holiday.zip")
    report = made.report
    assert report.classes == {"cats": 8, "things": 9} and report.used == 17 and report.class_names == ["cats", "things"]
    assert report.skipped == {
        sets.DAMAGED: {"count": 1, "examples": ["holiday/cats/broken.jpg"]},
        sets.NOT_AN_IMAGE: {"count": 1, "examples": ["holiday/things/notes.png"]},
        sets.UNLABELLED: {"count": 1, "examples": ["holiday/readme.jpg"]},
        sets.SYSTEM_FILE: {"count": 1, "examples": ["__MACOSX/holiday/cats/._0.jpg"]}}
    said = report.sentences()
    assert said[0] == "17 images used in 2 classes (cats: 8, things: 9), each 64x64 RGB."
    assert f"1 skipped as {sets.NOT_AN_IMAGE}: holiday/things/notes.png." in said
    pngs = files_under(made.folder)
    assert len(pngs) == 18 and made.folder.parent == root and made.folder.name == made.digest
    with Image.open(made.folder / "cats" / "00001.png") as im:
        assert (im.format, im.mode, im.size) == ("PNG", "RGB", (64, 64))

    # The trainer's folder loader reads it, labels from the class folders, at 64 px and at 32 px.
    for size in (64, 32):
        both = [load_data(made.dataset, split, size, 3) for split in ("train", "test")]
        assert sum(len(d) for d in both) == 17 and both[0].class_names == ["cats", "things"]
        assert both[0].image_shape == (3, size, size) and set(both[0].labels.tolist()) == {0, 1}
    assert sets.preview_images(made.folder, 8).shape == (8, 3, 64, 64)

    # The same upload twice is the same folder; at another size it is another.
    again = sets.from_zip(upload, root, 64, name="holiday (1).zip")
    assert again.folder == made.folder and again.report == report
    small = sets.from_zip(upload, root, 32)
    assert small.folder != made.folder and small.report.image_size == 32
    assert sorted(p.name for p in root.iterdir()) == sorted([made.digest, small.digest]), "no temporary folder left"


def test_image_files_in_any_order_are_one_unlabelled_dataset(root):
    photos = crops("things", 5, fmt="PNG")
    files = [(f"p{i}.png", d) for i, d in enumerate(photos)] + [("fake.png", b"this is text, not a PNG")]
    made = sets.from_files(files, root, 32)
    assert made.report.used == 5 and made.report.classes == {} and made.report.class_names == []
    assert made.report.skipped == {sets.NOT_AN_IMAGE: {"count": 1, "examples": ["fake.png"]}}
    assert sets.from_files(files[::-1], root, 32).folder == made.folder and len(list(root.iterdir())) == 1
    assert load_data(made.dataset, "train", 32, 3).class_names == []
    # A single zip among the files is unpacked as a zip; a zip among other files is refused.
    assert sets.from_files([("set.zip", zip_of(files))], root, 32).report.used == 5
    with pytest.raises(sets.ImageSetError, match="upload one zip on its own, or image files"):
        sets.from_files([*files, ("set.zip", zip_of(files))], root, 32)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with one empty data chunk: a few dozen bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">L", len(body)) + kind + body + struct.pack(">L", zlib.crc32(kind + body))
    header = struct.pack(">2L5B", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_a_decompression_bomb_or_an_oversized_image_costs_that_image_only(root):
    """Pillow's bomb limit (89 megapixels, an error past twice that) counts as damage; under it, the uploads' own
    40-megapixel limit as a size: each skips its file, and the other images make the set."""
    photos = [(f"{i}.png", d) for i, d in enumerate(crops("cats", 3, fmt="PNG"))]
    made = sets.from_files([*photos, ("bomb.png", png_claiming(30_000, 30_000)),
                            ("huge.png", png_claiming(8_000, 6_000))], root, 32)
    assert made.report.used == 3 and made.report.skipped == {
        sets.DAMAGED: {"count": 1, "examples": ["bomb.png"]}, sets.BAD_SIZE: {"count": 1, "examples": ["huge.png"]}}


def hostile(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (the zip, words its refusal must contain)."""
    png = crops("cats", 1, fmt="PNG")[0]
    good = [(f"ok/{i}.png", png) for i in range(3)]
    link = zipfile.ZipInfo("cats/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    bomb = zeros_stream(sets.LIMITS.unpacked_bytes // 2**20 + 1)
    return {
        "dot-dot": (zip_of([*good, ("ok/../../escaped.png", png)]), "climbs out of its folder with '..'"),
        "absolute": (zip_of([*good, (str(tmp_path / "absolute.png"), png)]), "has an absolute path"),
        "drive": (zip_of([*good, ("C:\\Users\\escaped.png", png)]), "names a drive"),
        "symlink": (zip_of([*good, (link, b"/etc/passwd")]), "is a symbolic link"),
        "bomb": (raw_zip("zeros.png", bomb, 0, sets.LIMITS.unpacked_bytes + 2**20),
                 "it would unpack to 501 MB, more than the 500 MB allowed here (a zip bomb looks like this)"),
        "many": (zip_of([(f"{i}.png", b"") for i in range(sets.LIMITS.entries + 1)]), "lists 5,001 entries"),
        "lying": (raw_zip("small.png", zeros_stream(16), 0, 1000), "its headers do not match its contents"),
        "nested": (zip_of([*good, ("ok/more.zip", zip_of(good))]), "is an archive inside the archive"),
        "nested-disguised": (zip_of([*good, ("ok/photo.png", zip_of(good))]), "is an archive inside the upload"),
        "text-named-png": (zip_of([("photo.png", b"hello, I am text")]),
                           f"it holds 0 usable images, and training needs at least 2. 1 skipped as {sets.NOT_AN_IMAGE}"),
        "not-a-zip": (b"GIF89a but not really", "is not a zip archive"),
    }


def test_each_hostile_zip_is_refused_in_words_and_nothing_is_kept(tmp_path, root):
    zips = hostile(tmp_path)
    assert len(zips["bomb"][0]) < 600_000, "a small zip that would inflate past the cap"
    for name, (upload, words) in zips.items():
        with pytest.raises(sets.ImageSetError) as refused:
            sets.from_zip(upload, root, 64, name="upload.zip")
        assert words in str(refused.value), (name, str(refused.value))
        assert files_under(tmp_path) == [], (name, "nothing written, in the sets folder or beside it")
        assert not root.exists() or list(root.iterdir()) == [], (name, "no temporary folder left")
    assert not (tmp_path / "escaped.png").exists() and not Path("C:\\Users\\escaped.png").exists()


def test_a_header_that_lies_about_its_size_bounds_what_is_unpacked(root):
    """An entry whose headers declare 1,000 bytes (with the CRC of 1,000 zeros) over a stream of 2 GiB of zeros: the
    reader stops at what the central directory declares, so the upload costs 1,000 bytes, not 2 GiB."""
    upload = raw_zip("big.png", zeros_stream(2048), zlib.crc32(bytes(1000)), 1000)
    tracemalloc.start()
    try:
        with pytest.raises(sets.ImageSetError, match=f"1 skipped as {re.escape(sets.NOT_AN_IMAGE)}: big.png"):
            sets.from_zip(upload, root, 32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(upload), f"{peak / 2**20:.0f} MiB allocated while reading a {len(upload) / 2**20:.0f} MiB zip"
