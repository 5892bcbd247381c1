"""Random crops of the colour photographs that ship inside scikit-image, as 32x32 PNGs: the dataset `skimage-photos`.

    python -m train.fetch_photos [--root data] [--count 20000]

A small real colour dataset that needs no network: the eight colour photographs bundled in the scikit-image wheel
(PHOTOS; the synthetic colour wheel and logo, the grayscale images and the images scikit-image would download are left
out), each cropped COUNT / 8 times at a random place and a random size between an eighth of its shorter side and the
whole of it (log-uniform, so details and whole views are equally common), resized to 32x32 with Pillow's bicubic
filter (antialiased when it shrinks). The crops are the same on every machine for the same scikit-image images: one
seeded generator draws them all. They go to ROOT/skimage-photos/ with recipe.json (what was cropped, and how), written
into a temporary folder beside it and renamed into place whole, so a cut-short run leaves nothing half-written; a
second run finds the same recipe there and does nothing. `genmodels.data` loads the folder as an image folder: a
fixed 5% of the crops is the held-out split (1,000 of 20,000). The held-out crops come from the same eight
photographs as the training crops, so they measure how well a model draws crops of these photographs, not how it
generalises to new ones; and eight photographs are not CIFAR-10 and stand in for no benchmark.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

NAME = "skimage-photos"
RECIPE = "recipe.json"
SIZE = 32
SEED = 0
COUNT = 20_000
# The skimage.data function of each colour photograph, and what it shows.
PHOTOS = {
    "astronaut": "astronaut Eileen Collins (NASA)",
    "chelsea": "Chelsea the cat",
    "coffee": "a cup of coffee",
    "hubble_deep_field": "the Hubble eXtreme Deep Field (NASA)",
    "immunohistochemistry": "immunohistochemical staining of colon tissue",
    "retina": "a human retina",
    "rocket": "a Falcon 9 launch (SpaceX)",
    "stereo_motorcycle": "a motorcycle, the left view of the Middlebury stereo pair",
}


@functools.cache
def photograph(name: str):
    """The photograph as an RGB uint8 array, from the files inside the scikit-image package; decoded once per process
    (the retina is a 1411x1411 JPEG), which the caller only reads."""
    from skimage import data

    image = getattr(data, name)()
    return image[0] if name == "stereo_motorcycle" else image  # (left, right, disparity): the left view


def recipe(count: int) -> dict:
    import skimage

    return {"dataset": NAME, "photos": PHOTOS, "count": count, "size": SIZE, "seed": SEED,
            "crop": "side log-uniform in [shorter side / 8, shorter side], place uniform, bicubic resize",
            "scikit-image": skimage.__version__}


def crops(count: int):
    """(file name, 32x32 RGB PIL image) for each of `count` crops, photographs taken in turn."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(SEED)
    photos = {name: photograph(name) for name in PHOTOS}
    for i in range(count):
        name = list(PHOTOS)[i % len(PHOTOS)]
        image = photos[name]
        h, w = image.shape[:2]
        short = min(h, w)
        side = round(math.exp(rng.uniform(math.log(short / 8), math.log(short))))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(image[top:top + side, left:left + side])
        yield f"{name}-{i:05d}.png", crop.resize((SIZE, SIZE), Image.Resampling.BICUBIC)


def is_complete(folder: Path, count: int) -> bool:
    try:
        found = json.loads((folder / RECIPE).read_text())
    except (OSError, ValueError):
        return False
    return found == recipe(count) and sum(1 for _ in folder.glob("*.png")) == count


def fetch(root: Path, count: int = COUNT) -> Path:
    """ROOT/skimage-photos with `count` crops: written, or found complete with the same recipe already."""
    folder = root / NAME
    if is_complete(folder, count):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=root))
    try:
        for name, image in crops(count):
            image.save(tmp / name, format="PNG")
        (tmp / RECIPE).write_text(json.dumps(recipe(count), indent=2) + "\n")
        if folder.exists():  # another recipe's crops (another count, another scikit-image): replaced whole
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.fetch_photos", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("GENMODELS_DATA", "data")),
                    help=f"data folder (default ./data or $GENMODELS_DATA); the crops go to ROOT/{NAME}/")
    ap.add_argument("--count", type=int, default=COUNT, help=f"number of crops (default {COUNT:,})")
    args = ap.parse_args(argv)
    if args.count < len(PHOTOS):
        ap.error(f"--count must be at least {len(PHOTOS)}, one crop of each photograph")
    folder = fetch(args.root, args.count)
    print(f"{NAME}: {args.count:,} crops of {len(PHOTOS)} scikit-image photographs in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
