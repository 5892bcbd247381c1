"""Metrics for generators: small pure tensor functions, with feature extraction and cached statistics apart.

    image         mse, ssim                       per-image, images in [-1, 1]
    frechet       fid_from_stats, kid, ...        over feature vectors (Heusel et al. 2017, Binkowski et al. 2018)
    inception     the FID Inception-v3            built only when first asked for
    features      InceptionExtractor, real_statistics (cached outside the repository)
    classifier    load_classifier                 conditional accuracy and classifier features
    projection    project                         "find my image in this model" (Karras et al. 2020)
    memorisation  nearest_neighbours
    suite         each metric of a model with its protocol; classifier_fid for training curves

`python -m genmodels.evaluate CHECKPOINT` runs them all and writes metrics.json beside the checkpoint:
    {"checkpoint": str, "computed_at": ISO time, "device": str, "seconds": float,
     "metrics": {NAME: {"value": float, "protocol": str, "n": ..., "ref_split": ..., "seed": ..., ...}}}
with NAME in METRIC_NAMES; METRICS says how a person reads each. Importing this package loads no weights.
"""
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """How a person reads one metrics.json entry: its name in words, which way is better, how a value is written."""
    name: str                  # key in metrics.json
    title: str                 # a column header in words
    better: str | None         # "lower", "higher", or None where neither is better
    fmt: str                   # str.format of one value
    what: str                  # one sentence on what it measures
    scale: float = 1.0         # shown value = value x scale (KID is read x 1000)

    @property
    def header(self) -> str:
        return self.title + {"lower": " ↓", "higher": " ↑"}.get(self.better, "")

    def format(self, value: float | None) -> str:
        """The value as a person reads it; a dash where the metric does not apply or was not measured."""
        return "–" if value is None or value != value else self.fmt.format(value * self.scale)


METRICS = {m.name: m for m in (
    Metric("fid", "FID", "lower", "{:.1f}",
           "Fréchet Inception Distance between generated and real images (Heusel et al. 2017); "
           "it depends on the number of samples, so compare FIDs only at the same protocol."),
    Metric("kid", "KID ×10³", "lower", "{:.1f}",
           "Kernel Inception Distance (Binkowski et al. 2018), unbiased, shown ×1000 as in the papers.", scale=1e3),
    Metric("classifier_fid", "Classifier-FID", "lower", "{:.2f}",
           "The FID formula over the features of the dataset's shipped classifier: fast, for training curves; "
           "not comparable with FID."),
    Metric("ssim", "SSIM", "higher", "{:.3f}",
           "Structural similarity between held-out real images and the model's reproduction of them "
           "(1 = identical)."),
    Metric("mse", "MSE", "lower", "{:.4f}",
           "Mean squared pixel error between held-out real images and the model's reproduction, pixels in [0, 1]."),
    Metric("conditional_accuracy", "Conditional accuracy", "higher", "{:.1%}",
           "Share of samples that the dataset's classifier labels as the class the model was asked for."),
    Metric("nn_distance", "Nearest-neighbour distance", None, "{:.3f}",
           "RMS pixel distance from each sample to its nearest training image: well below the held-out real "
           "images' distance means the model copies its training set."),
)}
METRIC_NAMES = tuple(METRICS)

# Names resolve on first use (PEP 562), so `python -m genmodels.metrics.classifier` does not import its own module twice.
EXPORTS = {
    "load_classifier": "classifier", "feature_stats": "frechet", "fid_from_features": "frechet",
    "fid_from_stats": "frechet", "kid": "frechet", "mse": "image", "ssim": "image",
    "nearest_neighbours": "memorisation", "project": "projection", "classifier_fid": "suite",
}
__all__ = ["METRIC_NAMES", "METRICS", "Metric", *EXPORTS]


def __getattr__(name: str):
    if name in EXPORTS:
        return getattr(importlib.import_module(f".{EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
