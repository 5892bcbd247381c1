"""Metrics for generators: small pure tensor functions, with feature extraction and cached statistics apart.

    image         mse, ssim                       per-image, images in [-1, 1]
    frechet       fid_from_stats, kid, ...        over feature vectors (Heusel et al. 2017, Binkowski et al. 2018)
    inception     the FID Inception-v3            built only when first asked for
    features      InceptionExtractor, real_statistics (cached outside the repository)
    classifier    load_classifier                 conditional accuracy and classifier features
    projection    project                         "find my image in this model" (Karras et al. 2020)
    memorisation  nearest_neighbours
    suite         METRICS, the registry: each metric's name, when it applies, how it is computed and read;
                  classifier_fid for training curves

`python -m genmodels.evaluate CHECKPOINT` runs them all and writes metrics.json beside the checkpoint:
    {"checkpoint": str, "computed_at": ISO time, "device": str, "seconds": float,
     "metrics": {NAME: {"value": float, "protocol": str, "n": ..., "ref_split": ..., "seed": ..., ...}}}
with NAME in METRIC_NAMES; METRICS says how each is computed and read. Importing this package loads no weights.
"""
import importlib

# Names resolve on first use (PEP 562), so `python -m genmodels.metrics.classifier` does not import its own module twice.
EXPORTS = {
    "load_classifier": "classifier", "feature_stats": "frechet", "fid_from_features": "frechet",
    "fid_against_stats": "frechet", "fid_from_stats": "frechet", "kid": "frechet", "mse": "image", "ssim": "image",
    "nearest_neighbours": "memorisation", "project": "projection", "classifier_fid": "suite",
    "METRICS": "suite", "METRIC_NAMES": "suite", "Metric": "suite",
}
__all__ = [*EXPORTS]


def __getattr__(name: str):
    if name in EXPORTS:
        return getattr(importlib.import_module(f".{EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
