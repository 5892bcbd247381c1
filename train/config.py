"""Run configuration: dataclass defaults, then train/configs/DATASET/MODEL.toml, then --set overrides.

A config file has up to three sections, each a small diff over commented dataclass defaults:
[model] (the family's architecture dataclass), [train] (TrainConfig), [objective] (the objective's Params).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genmodels.config import Checks, ConfigError, from_dict, parse_value, shown_path
from genmodels.data import ImageData, load_data, native_shape
from genmodels.registry import get_family

CONFIG_DIR = Path(__file__).parent / "configs"
SECTIONS = ("model", "train", "objective")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20                          # passes over the training split
    max_steps: int = 0                        # stop after this many iterations in all (0: no limit)
    max_seconds: float = 0.0                  # stop after this much training wall time in all, resumes included (0: no limit)
    batch_size: int = 128
    lr: float = 2e-4                          # generator (or VAE) learning rate
    lr_d: float = 0.0                         # discriminator learning rate (0: same as lr)
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas; beta1 0.5 after Radford et al. 2016
    optimizer: str = "adam"                   # adam | sgd
    lr_decay: float = 1.0                     # learning rates are multiplied by this after each epoch
    ema_decay: float = 0.999                  # EMA of generator weights, which ship (0: off)
    seed: int = 0
    checkpoint_every: int = 1                 # epochs between checkpoints
    checkpoint_minutes: float = 10.0          # also checkpoint within an epoch after this much time
    precision: str = "auto"                   # auto | fp32 | bf16 | fp16 (auto: bf16 on CPU, AMP on CUDA)
    device: str = "auto"                      # auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:1 | mps
    threads: int = 0                          # CPU threads for torch (0: torch's default)
    fid_every: int = 0                        # epochs between FIDs during training (0: off); the best epoch is kept in best/
    fid_samples: int = 1000                   # generated (and, for inception, held-out real) images per FID
    keep_candidates: int = 0                  # with fid_every: keep this many lowest-FID epochs in candidates/ (train.ship --choose)
    fid_features: str = "classifier"          # classifier (the dataset's shipped classifier; seconds on a CPU) | inception
    live_every: float = 0.0                   # seconds between progress lines and fixed-seed grids in live/ (0: off; train/live.py)

    def __post_init__(self):
        check = Checks(self, "train")
        # Every number is checked here, so `--set train.lr=nan` stops with a sentence, not a traceback from
        # torch.optim; a learning rate that is merely too high is caught by the trainer's divergence checks.
        check.number("epochs", at_least=1, at_most=1_000_000)
        check.number("max_steps", at_least=0)
        check.number("max_seconds", at_least=0)
        check.number("batch_size", at_least=2, at_most=65536)  # at least 2: batch norm needs a batch
        check.number("lr", above=0)
        check.number("lr_d", at_least=0)
        check.number("betas", at_least=0, below=1)
        check.choice("optimizer", ("adam", "sgd"))
        check.number("lr_decay", above=0, at_most=1)
        check.number("ema_decay", at_least=0, below=1)
        check.number("seed", at_least=0, at_most=2**63 - 1)
        check.number("checkpoint_every", at_least=1)
        check.number("checkpoint_minutes", at_least=0)
        check.choice("precision", ("auto", "fp32", "bf16", "fp16"))
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            check.fail("device", f"must be auto, cpu, mps, cuda or cuda:N, got {self.device!r}")
        check.number("threads", at_least=0, at_most=1024)
        check.number("fid_every", at_least=0)
        check.number("fid_samples", at_least=2, at_most=1_000_000)  # a covariance needs 2 samples
        check.choice("fid_features", ("classifier", "inception"))
        check.number("keep_candidates", at_least=0, at_most=100)
        check.number("live_every", at_least=0)


@dataclass
class RunConfig:
    dataset: str
    family: str
    model: Any            # the family's config dataclass
    train: TrainConfig
    objective: Any        # the objective's Params dataclass
    source_file: str | None = None

    def to_dict(self) -> dict:
        from genmodels.config import to_dict

        return {"dataset": self.dataset, "family": self.family, "model": to_dict(self.model),
                "train": to_dict(self.train), "objective": to_dict(self.objective), "config_file": self.source_file}


def config_file(dataset: str, family: str) -> Path:
    folder = "folder" if dataset.startswith("folder:") else dataset
    return CONFIG_DIR / folder / f"{family}.toml"


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; valid sections: {', '.join(SECTIONS)}")
    return values


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """`section.key=value` strings onto a {section: {key: value}} dict."""
    values = {s: dict(values.get(s, {})) for s in SECTIONS}
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or section not in SECTIONS or not name:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE with SECTION one of {', '.join(SECTIONS)}")
        values[section][name] = parse_value(text.strip())
    return values


def resolve_config(dataset: str, family_name: str, overrides: list[str] = (), num_classes: int | None = None,
                   path: Path | None = None) -> RunConfig:
    """The full run config; `num_classes` comes from the dataset and feeds conditional families."""
    family = get_family(family_name)
    path = path or config_file(dataset, family_name)
    values = read_toml(path) if path.is_file() else {}
    values = apply_overrides(values, list(overrides))
    channels, size = native_shape(dataset)
    model_values = {"channels": channels, "image_size": size}
    if family.conditional:
        if num_classes == 0:
            raise ConfigError(f"{family_name} is conditional and needs class labels, but {dataset} has none "
                              "(give an image folder class subfolders)")
        if num_classes:
            model_values["num_classes"] = num_classes
    model_values.update(values["model"])
    return RunConfig(
        dataset=dataset,
        family=family_name,
        model=family.make_config(model_values, where=f"[model] of {path.name}"),
        train=from_dict(TrainConfig, values["train"], where=f"[train] of {path.name}"),
        objective=from_dict(family.objective.Params, values["objective"], where=f"[objective] of {path.name}"),
        source_file=shown_path(path) if path.is_file() else None,
    )


def prepare(dataset: str, model: str, overrides: list[str], config: Path | None = None, data_root: Path | None = None,
            download: bool = False, data: ImageData | None = None) -> tuple[RunConfig, ImageData]:
    """The run config and training data of a run; `data` reuses images already loaded at the right shape."""
    run = resolve_config(dataset, model, overrides, path=config)
    if data is None or data.image_shape != run.model.image_shape:
        data = load_data(dataset, "train", run.model.image_size, run.model.channels, data_root, download)
    if get_family(model).conditional:  # the dataset decides how many classes there are
        run = resolve_config(dataset, model, overrides, num_classes=data.num_classes, path=config)
    return run, data
