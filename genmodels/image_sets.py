"""A training dataset made from an upload: a .zip, or a few image files, in; a folder of same-size RGB PNGs out.

    ROOT/DIGEST/[CLASS/]NNNNN.png   every usable image, converted to RGB, resized (shorter side) and centre-cropped
    ROOT/DIGEST/dataset.json        the report: what was used, what was skipped and why

DIGEST is a hash of the upload's bytes and the image size, so the same upload twice is the same folder. Class
subfolders of a zip become class subfolders here, which `genmodels.data.load_folder` reads as labels: train on it
with `python -m train folder:ROOT/DIGEST MODEL`.

An upload is untrusted input. A zip is refused, with a sentence saying why and before anything is written outside a
temporary folder, when an entry would land outside the target (`../`, an absolute path, a drive letter), is a
symlink or another special file, is encrypted, or is itself an archive; or when the central directory lists more
entries or more unpacked bytes than the caps. The caps hold while reading too: an entry yields no more bytes than its
header declares (a header that lies about its size is refused), and the running total stays under the cap. No entry
name ever becomes a path here: files are numbered, and class folder names are cleaned. Each image is decoded by
`genmodels.uploads.decode` (only the raster formats the app reads, sizes checked from the header, decompression bombs
refused); one that is not an image or is damaged costs that file only, and the report names it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from . import uploads
from .data import fit_images, is_image

SIZES = (32, 64)                      # the image sizes the recipes train at
VERSION = 1                           # of how images are made: part of the digest, so a change makes new folders
REPORT = "dataset.json"
BUILDING = ".building-"               # prefix of the temporary folders a build writes into
STALE_SECONDS = 3600                  # a temporary folder this old was left by a killed build
MIN_IMAGES = 2                        # a held-out image and a training image
EXAMPLES = 3                          # names shown per reason a file was skipped
# Archives inside the upload are refused, by name and by content (their first bytes).
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".zst", ".7z", ".rar", ".lz",
                    ".lzma", ".cab", ".jar", ".war", ".apk", ".whl", ".iso", ".dmg", ".cpio", ".z"}
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
                 b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd", b"MSCF", b"\x1f\x9d", b"LZIP")
TAR_MAGIC = (257, b"ustar")           # offset and bytes of a tar header's magic
READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# Files that operating systems add to folders and zips: never pictures, and never class folders.
SYSTEM_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
SYSTEM_FOLDERS = {"__macosx"}

# Why a file was skipped, in the words the report uses; one place for each reason.
NOT_AN_IMAGE = f"not an image in a format the app reads ({uploads.FORMAT_NAMES})"
DAMAGED = "a damaged or truncated image, or one that claims too many pixels to decode safely"
BAD_SIZE = f"too large (over {uploads.MAX_BYTES // 2**20} MB or {uploads.MAX_PIXELS // 10**6} megapixels) or too thin"
UNLABELLED = "outside the class folders (the other images are in class folders, which become the labels)"
SYSTEM_FILE = "a file the operating system adds (__MACOSX, .DS_Store, Thumbs.db)"


class ImageSetError(ValueError):
    """The upload is refused as a whole; the message says why in words and nothing of it was kept."""


@dataclass(frozen=True)
class Limits:
    upload_bytes: int = 50 * 2**20    # the upload itself; matches server.maxUploadSize in .streamlit/config.toml
    entries: int = 5_000              # files and folders listed in a zip
    unpacked_bytes: int = 500 * 2**20  # all entries of a zip, unpacked

    def describe(self) -> str:
        return (f"at most {self.upload_bytes // 2**20} MB uploaded, {self.entries:,} files in a zip and "
                f"{self.unpacked_bytes // 2**20} MB unpacked")


LIMITS = Limits()


@dataclass
class Report:
    """What became of an upload: the images used per class, and each skipped file's reason."""
    upload: str                                 # the upload's name(s), for the page
    image_size: int
    used: int = 0
    classes: dict[str, int] = field(default_factory=dict)  # class folder -> images ({} when unlabelled)
    skipped: dict[str, dict] = field(default_factory=dict)  # reason -> {"count": n, "examples": [names]}

    @property
    def class_names(self) -> list[str]:
        """The labels, in the order genmodels.data.load_folder numbers them (sorted folder names)."""
        return sorted(self.classes)

    @property
    def skipped_count(self) -> int:
        return sum(s["count"] for s in self.skipped.values())

    def skip(self, name: str, reason: str) -> None:
        entry = self.skipped.setdefault(reason, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < EXAMPLES:
            entry["examples"].append(name)

    def sentences(self) -> list[str]:
        """The report in words: one sentence for what was used, one per reason a file was skipped."""
        labels = (f" in {len(self.classes)} classes ({', '.join(f'{c}: {n:,}' for c, n in sorted(self.classes.items()))})"
                  if self.classes else ", without labels")
        said = [f"{self.used:,} image{'s' if self.used != 1 else ''} used{labels}, each {self.image_size}x"
                f"{self.image_size} RGB."]
        for reason, s in self.skipped.items():
            more = f" and {s['count'] - len(s['examples']):,} more" if s["count"] > len(s["examples"]) else ""
            said.append(f"{s['count']:,} skipped as {reason}: {', '.join(s['examples'])}{more}.")
        return said


@dataclass
class ImageSet:
    folder: Path
    report: Report

    @property
    def dataset(self) -> str:
        """The name `python -m train` and genmodels.data.load_data take."""
        return f"folder:{self.folder}"

    @property
    def digest(self) -> str:
        return self.folder.name


def digest_of(parts: Sequence[bytes], image_size: int) -> str:
    h = hashlib.sha256(f"genmodels image set v{VERSION} {image_size}px\0".encode())
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def is_archive(name: str, head: bytes) -> bool:
    if PurePosixPath(name.lower()).suffix in ARCHIVE_SUFFIXES:
        return True
    offset, magic = TAR_MAGIC
    return head.startswith(ARCHIVE_MAGIC) or head[offset:offset + len(magic)] == magic


def is_system_file(parts: Sequence[str]) -> bool:
    return (any(p.lower() in SYSTEM_FOLDERS for p in parts[:-1]) or parts[-1].lower() in SYSTEM_NAMES
            or parts[-1].startswith("._"))


def entry_parts(name: str) -> list[str]:
    """The folders and file name of a zip entry; ImageSetError for a name that would leave the target folder."""
    shown = name[:80]
    if "\\" in name:  # zips written on Windows may use backslashes; judged as separators
        name = name.replace("\\", "/")
    if name.startswith("/"):
        raise ImageSetError(f"the zip is refused: the entry {shown!r} has an absolute path")
    if re.match(r"[A-Za-z]:", name):
        raise ImageSetError(f"the zip is refused: the entry {shown!r} names a drive")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageSetError(f"the zip is refused: the entry {shown!r} climbs out of its folder with '..'")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ImageSetError(f"the zip is refused: the entry {shown!r} has control characters in its name")
    return parts


def check_directory(zf: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
    """The zip's file entries, every one checked from the central directory before any is unpacked."""
    infos = zf.infolist()
    if len(infos) > limits.entries:
        raise ImageSetError(f"the zip is refused: it lists {len(infos):,} entries, more than the {limits.entries:,} "
                            "allowed here")
    total = sum(i.file_size for i in infos)
    if total > limits.unpacked_bytes:
        raise ImageSetError(f"the zip is refused: it would unpack to {total / 2**20:,.0f} MB, more than the "
                            f"{limits.unpacked_bytes // 2**20:,} MB allowed here (a zip bomb looks like this)")
    files = []
    for info in infos:
        parts = entry_parts(info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # the Unix file type, where the zip records one
        if kind == stat.S_IFLNK:
            raise ImageSetError(f"the zip is refused: {info.filename[:80]!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ImageSetError(f"the zip is refused: {info.filename[:80]!r} is not a plain file or folder")
        if info.is_dir() or not parts:
            continue
        if info.flag_bits & 0x1:
            raise ImageSetError(f"the zip is refused: {info.filename[:80]!r} is encrypted")
        if info.compress_type not in READABLE_METHODS:
            raise ImageSetError(f"the zip is refused: {info.filename[:80]!r} is compressed with a method this app "
                                "does not unpack (use the zip tool's default, deflate)")
        if is_archive(parts[-1], b""):
            raise ImageSetError(f"the zip is refused: {info.filename[:80]!r} is an archive inside the archive; "
                                "unpack it and zip the images themselves")
        files.append(info)
    return files


def labelled(names: list[list[str]]) -> tuple[list[str | None], list[str]]:
    """The class of each file from its first folder, after dropping folders every file shares ("photos/cats/a.jpg"
    is in class "cats"), and the class names. No classes when fewer than two folders hold files; None for a file
    outside the class folders."""
    names = [list(n) for n in names]
    while names and all(len(n) > 1 for n in names) and len({n[0] for n in names}) == 1:
        names = [n[1:] for n in names]
    folders = sorted({n[0] for n in names if len(n) > 1})
    if len(folders) < 2:
        return [None] * len(names), []
    return [n[0] if len(n) > 1 else None for n in names], folders


def clean_class_names(folders: list[str]) -> dict[str, str]:
    """Each class folder's name as written here: letters, digits, spaces, '-', '_' and '.', not starting with '.',
    at most 60 characters, each distinct."""
    cleaned: dict[str, str] = {}
    for folder in folders:
        name = re.sub(r"[^\w .-]", "_", folder).strip().lstrip(".")[:60] or "class"
        base, n = name, 2
        while name in cleaned.values():
            name, n = f"{base} ({n})", n + 1
        cleaned[folder] = name
    return cleaned


def to_png_pixels(data: bytes, image_size: int) -> np.ndarray:
    """An image file as [S, S, 3] uint8: decoded as the app decodes uploads, in RGB, resized (shorter side) and
    centre-cropped as the data loaders fit images."""
    im, _ = uploads.decode(data)
    rgb = np.asarray(uploads.to_mode(im, "RGB"), dtype=np.uint8)
    fitted = fit_images(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None], image_size, 3)
    return fitted[0].permute(1, 2, 0).numpy()


def reason_for(error: uploads.UploadError) -> str:
    if isinstance(error, uploads.NotAnImage):
        return NOT_AN_IMAGE
    if isinstance(error, uploads.Damaged):
        return DAMAGED
    return BAD_SIZE


def write_set(folder: Path, report: Report, classes: list[str],
              items: Sequence[tuple[str, str | None, Callable[[], bytes]]],
              progress: Callable[[int, int], None] | None) -> ImageSet:
    """Write each (name, class or None, read) of an upload into a temporary folder beside `folder`, then rename it to
    `folder`; a refusal on the way removes the temporary folder."""
    builder = Builder(folder.parent, report, classes)
    try:
        for done, (name, label, read) in enumerate(items):
            builder.add(name, read(), label)
            if progress:
                progress(done + 1, len(items))
        return builder.finish(folder)
    except BaseException:
        shutil.rmtree(builder.tmp, ignore_errors=True)
        raise


class Builder:
    """Writes the usable images of one upload into a temporary folder under `root`."""

    def __init__(self, root: Path, report: Report, classes: list[str]):
        root.mkdir(parents=True, exist_ok=True)
        remove_stale(root)
        self.report = report
        self.tmp = Path(tempfile.mkdtemp(prefix=BUILDING, dir=root))
        self.counts: dict[str | None, int] = {}
        self.class_folders = clean_class_names(classes)

    def add(self, name: str, data: bytes, label: str | None) -> None:
        """One file: written as the next PNG of its class, or skipped with its reason."""
        if is_archive(name, data[:512]):
            raise ImageSetError(f"the upload is refused: {name[:80]!r} is an archive inside the upload; unpack it "
                                "and upload the images themselves")
        try:
            pixels = to_png_pixels(data, self.report.image_size)
        except uploads.UploadError as e:
            self.report.skip(name, reason_for(e))
            return
        folder = self.tmp / self.class_folders[label] if label is not None else self.tmp
        folder.mkdir(exist_ok=True)
        n = self.counts[label] = self.counts.get(label, 0) + 1
        Image.fromarray(pixels, "RGB").save(folder / f"{n:05d}.png", format="PNG")

    def finish(self, folder: Path) -> ImageSet:
        """Refuse a set too small to train on; else record the report and rename the folder into place (another
        process that built the same upload first wins, and its folder is the same)."""
        used = sum(self.counts.values())
        if used < MIN_IMAGES:
            why = " ".join(self.report.sentences()[1:])
            raise ImageSetError(f"the upload is refused: it holds {used} usable image{'s' if used != 1 else ''}, and "
                                f"training needs at least {MIN_IMAGES}. {why}".strip())
        self.report.used = used
        self.report.classes = {self.class_folders[c]: n for c, n in self.counts.items() if c is not None}
        with open(self.tmp / REPORT, "w") as f:
            json.dump(asdict(self.report), f, indent=2)
        try:
            os.rename(self.tmp, folder)
        except OSError:
            if not (folder / REPORT).is_file():
                raise
            shutil.rmtree(self.tmp, ignore_errors=True)
        return read_set(folder)


def read_set(folder: Path) -> ImageSet:
    with open(folder / REPORT) as f:
        return ImageSet(folder, Report(**json.load(f)))


def existing(root: Path, digest: str) -> ImageSet | None:
    """The set already built from the same upload, marked as used now (the runs folder removes the least recently
    used sets first), or None."""
    folder = root / digest
    if not (folder / REPORT).is_file():
        return None
    os.utime(folder)
    return read_set(folder)


def remove_stale(root: Path) -> None:
    """Temporary folders of builds that were killed."""
    for tmp in root.glob(f"{BUILDING}*"):
        if time.time() - tmp.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(tmp, ignore_errors=True)


def check_size(image_size: int) -> None:
    if image_size not in SIZES:
        raise ValueError(f"image_size must be one of {SIZES}, got {image_size!r}")


def from_zip(data: bytes, root: str | Path, image_size: int = 64, name: str = "upload.zip", limits: Limits = LIMITS,
             progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """The image set of a zip's images; ImageSetError (nothing kept) when the zip is refused."""
    check_size(image_size)
    if len(data) > limits.upload_bytes:
        raise ImageSetError(f"the upload is {len(data) / 2**20:.1f} MB; the limit is {limits.upload_bytes // 2**20} MB")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ImageSetError(f"{name} is not a zip archive, or it is damaged") from None
    with zf:
        files = check_directory(zf, limits)  # every refusal by the listing comes before anything is written
        root = Path(root)
        digest = digest_of([data], image_size)
        found = existing(root, digest)
        if found:
            return found
        report = Report(upload=name, image_size=image_size)
        kept = []
        for info in files:
            parts = entry_parts(info.filename)
            if is_system_file(parts):
                report.skip(info.filename, SYSTEM_FILE)
            elif info.file_size > uploads.MAX_BYTES:
                report.skip(info.filename, BAD_SIZE)
            else:
                kept.append((info, parts))
        labels, folders = labelled([parts for _, parts in kept])
        items = []
        for (info, _), label in zip(kept, labels):
            if folders and label is None:
                report.skip(info.filename, UNLABELLED)
            else:
                items.append((info.filename, label, lambda info=info: read_entry(zf, info)))
        return write_set(root / digest, report, folders, items, progress)


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """An entry's bytes, never more than the central directory declares, whose sizes check_directory has held to
    the caps: so the caps hold however the data inflates. An entry whose data does not match its headers refuses
    the zip."""
    what = f"{info.filename[:80]!r}"
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)  # one byte more than declared: enough to catch a lying header
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, RuntimeError,
            NotImplementedError) as e:
        raise ImageSetError(f"the zip is refused: it is damaged, or its headers do not match its contents, at "
                            f"{what} ({e})") from None
    if len(data) != info.file_size:
        raise ImageSetError(f"the zip is refused: {what} holds {len(data):,} bytes where its header says "
                            f"{info.file_size:,}")
    return data


def from_files(files: Sequence[tuple[str, bytes]], root: str | Path, image_size: int = 64, limits: Limits = LIMITS,
               progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """The image set of some image files (no labels); a single zip among them is unpacked by `from_zip`."""
    check_size(image_size)
    if not files:
        raise ImageSetError("nothing was uploaded")
    zips = [n for n, data in files if is_archive(n, data[:512])]
    if zips and len(files) == 1:
        return from_zip(files[0][1], root, image_size, files[0][0], limits, progress)
    if zips:
        raise ImageSetError(f"upload one zip on its own, or image files; not {zips[0]!r} among other files")
    if len(files) > limits.entries:
        raise ImageSetError(f"{len(files):,} files were uploaded; at most {limits.entries:,} at once")
    total = sum(len(data) for _, data in files)
    if total > limits.unpacked_bytes:
        raise ImageSetError(f"the files hold {total / 2**20:,.0f} MB; at most {limits.unpacked_bytes // 2**20:,} MB "
                            "at once")
    root = Path(root)
    ordered = sorted(files, key=lambda f: (f[0], hashlib.sha256(f[1]).digest()))  # the browser's order varies
    digest = digest_of([part for n, data in ordered for part in (n.encode(), data)], image_size)
    found = existing(root, digest)
    if found:
        return found
    more = f" and {len(files) - EXAMPLES} more" if len(files) > EXAMPLES else ""
    names = ", ".join(n for n, _ in ordered[:EXAMPLES]) + more
    return write_set(root / digest, Report(upload=names, image_size=image_size), [],
                     [(n, None, lambda data=data: data) for n, data in ordered], progress)


def preview_images(folder: str | Path, n: int = 32) -> torch.Tensor:
    """Up to n of a set's images, spread over it (so over its classes), as uint8 [n, 3, S, S]."""
    paths = sorted(p for p in Path(folder).rglob("*") if is_image(p))
    k = min(n, len(paths))
    picked = [paths[round(i * (len(paths) - 1) / max(1, k - 1))] for i in range(k)]
    images = []
    for path in picked:
        with Image.open(path) as im:
            images.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1))
    return torch.stack(images)
