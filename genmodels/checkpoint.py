"""Checkpoints are folders: config.json + model.safetensors (+ metrics.json, history.json, preview.png).

`load` rebuilds the model from config.json alone and loads the weights strictly. Files are written and read
through genmodels.files (atomic writes, JSON, safetensors; no pickles), whose primitives this module also
offers, so `ckpt.write_json` and the rest read as part of the checkpoint API.

A checkpoint describes itself and is checked against that description before it is used: `save` records a
content hash of the tensors (in config.json and in the weights file's metadata) with the family and
dataset; `load` refuses weights whose hash, family, dataset, names, shapes or dtypes differ from what
config.json says, and weights that are not finite. Sizes are bounded from config.json alone, before any
tensor is allocated: the model is first built on PyTorch's "meta" device, which allocates nothing.
metrics.json and history.json are read through `read_optional_json`, which checks them by their format.
Checkpoints saved before the hash existed carry none; they are checked in every other way.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .config import ConfigError, to_dict
from .files import (  # noqa: F401  (atomic_write, load_tensors, remove_temporaries: offered as ckpt.*, see above)
    CheckpointError, atomic_folder, atomic_write, content_hash, load_tensors, not_finite, read_json, read_tensors,
    remove_temporaries, save_tensors, write_json)
from .registry import get_family
from .sampling import eval_mode, sample

FORMAT = "genmodels-checkpoint"
VERSION = 1
CONFIG, WEIGHTS, METRICS, HISTORY = "config.json", "model.safetensors", "metrics.json", "history.json"
PREVIEW = "preview.png"    # the sample grid beside the weights: shipped, trained and pushed checkpoints
# A training run folder (train/trainer.py writes it; train.ship, sweeps and the run manager read it):
CHECKPOINT = "checkpoint"  # the latest checkpoint
RESUME = "resume"          # the trainer's resume state (train --resume)
BEST = "best"              # with train.fid_every, the checkpoint of the epoch with the lowest FID so far
SAMPLES = "samples"        # one preview grid per epoch
CANDIDATES = "candidates"  # the epoch checkpoints kept for the final choice (train.keep_candidates)


def candidate_name(epoch: float) -> str:
    return f"epoch-{int(epoch):04d}"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HASH = "weights_sha256"                 # config.json key (and, as "sha256", weights metadata key) of the content hash
MAX_ELEMENTS = 100_000_000              # numbers in a checkpoint's tensors (400 MB in float32); shipped ones hold ~1%
HEADER_SLACK = 1_000_000                # bytes a safetensors header may add to the tensors' own size


def samples_finite(model: nn.Module) -> bool:
    """Whether the generator draws finite images from two seeded codes (eval mode; the global RNG is not used).
    Finite weights can still be huge enough (after a learning rate of 1e30, say) that every image is NaN."""
    with eval_mode(model):
        return bool(torch.isfinite(sample(model, 2, seed=0)).all())


def save(model: nn.Module, directory: str | Path, family: str, data: dict | None = None,
         training: dict | None = None, sampling: dict | None = None) -> Path:
    """Write the generator (plus encoder, for a VAE) and the config that rebuilds it, both at once (atomic_folder;
    the folder's other files are kept). Each records the content hash, so a folder whose two files come from
    different saves (copied by hand, say) is refused. `sampling`: how its samples are drawn unless asked otherwise
    ({"truncation": psi, "chosen": how psi was chosen}; genmodels.sampling.default_truncation)."""
    directory = Path(directory)
    state = model.state_dict()
    if bad := not_finite(state):
        raise CheckpointError(f"refusing to save {directory}: the weights {', '.join(bad[:3])}"
                              f"{' and others' if len(bad) > 3 else ''} hold NaN or infinite values")
    if not samples_finite(model):
        raise CheckpointError(f"refusing to save {directory}: the model draws NaN or infinite images (its weights "
                              "have blown up)")
    digest = content_hash(state)
    data = data or {}
    config = {
        "format": FORMAT,
        "version": VERSION,
        "family": family,
        "model": to_dict(model.config),
        "data": data,
        "training": training or {},
        **({"sampling": sampling} if sampling else {}),
        HASH: digest,
    }
    metadata = {"format": FORMAT, "family": family, "dataset": str(data.get("dataset", "")), "sha256": digest}

    def write(folder: Path) -> None:
        save_tensors(folder / WEIGHTS, state, metadata=metadata)
        write_json(folder / CONFIG, config)

    atomic_folder(directory, write)
    return directory


def resolve(location: str | Path) -> Path:
    """A local checkpoint folder, or a model hub repo id fetched into (or read from) the local hub cache."""
    path = Path(location).expanduser()
    if path.exists() or not HUB_ID.match(str(location)):
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(location), allow_patterns=[CONFIG, WEIGHTS, METRICS, HISTORY, "*.png"]))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as e:
        raise CheckpointError(f"{location} is neither a local checkpoint folder nor a reachable model hub repo: {e}") from None


# ---- the formats of config.json, metrics.json and history.json ---------------------------------------------------
# Each field a reader of these files uses, with what it must be; a field that is absent is fine (older files).

def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "a string"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "number": (is_number, "a finite number"),
    "count": (is_count, "a whole number, 0 or more"),
    "table": (lambda v: isinstance(v, dict), "a table ({...})"),
    "table or null": (lambda v: v is None or isinstance(v, dict), "a table ({...}) or null"),
    "texts": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    "hash": (lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None, "64 hex digits"),
}
CONFIG_FIELDS = {"family": "text", "model": "table", "data": "table", "training": "table", "sampling": "table",
                 HASH: "hash"}
DATA_FIELDS = {"dataset": "text", "source": "text", "subset": "flag", "class_names": "texts"}
TRAINING_FIELDS = {"epochs": "number", "steps": "count", "images_seen": "count", "wall_seconds": "number",
                   "device": "text", "device_name": "text", "processes": "count", "precision": "text",
                   "command": "text", "best": "table", "choice": "table"}
SAMPLING_FIELDS = {"truncation": "number", "chosen": "text"}
MAX_TRUNCATION = 1.5  # the Sample page's slider reaches this far


def truncation_problem(value: float) -> str | None:
    """What is wrong with `value` as a truncation, for a message that names where it came from; None when nothing."""
    return None if 0 < value <= MAX_TRUNCATION else f"must lie in (0, {MAX_TRUNCATION}], got {value}"


METRICS_FIELDS = {"metrics": "table", "checkpoint": "text", "computed_at": "text", "device": "text", "seconds": "number"}
METRIC_FIELDS = {"value": "number", "protocol": "text", "n": "count", "std": "number", "seconds": "number"}
HISTORY_FIELDS = {"best": "table or null"}
EPOCH_FIELDS = {"epoch": "number", "step": "count", "images_seen": "count", "seconds": "number", "images_per_sec": "number"}
BEST_FIELDS = {"epoch": "number", "metric": "text", "value": "number"}
# The keys of a history entry, and of a live progress line (train.live), that say where a run is rather than how
# it does: every other key of an entry is a loss or a metric.
BOOKKEEPING = tuple(EPOCH_FIELDS)


def check_fields(obj: Any, fields: dict[str, str], path: Path, where: str = "", required: tuple[str, ...] = ()) -> dict:
    """`obj` must be a table whose listed fields have their kinds; `where` names it inside the file."""
    inside = f" {where}" if where else ""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}:{inside or ' the file'} must be a table ({{...}}), not {type(obj).__name__}")
    for name in required:
        if name not in obj:
            raise CheckpointError(f"{path}:{inside} has no \"{name}\"")
    for name, kind in fields.items():
        test, words = KINDS[kind]
        if name in obj and not test(obj[name]):
            raise CheckpointError(f"{path}:{inside} \"{name}\" must be {words}, got {json.dumps(obj[name])[:60]}")
    return obj


def check_metrics(obj: Any, path: Path) -> dict:
    check_fields(obj, METRICS_FIELDS, path, required=("metrics",))
    for name, entry in obj["metrics"].items():
        check_fields(entry, METRIC_FIELDS, path, where=f"metric \"{name}\"", required=("value",))
    return obj


def check_history(obj: Any, path: Path) -> dict:
    check_fields(obj, HISTORY_FIELDS, path, required=("epochs",))
    if not isinstance(obj["epochs"], list):
        raise CheckpointError(f"{path}: \"epochs\" must be a list of per-epoch tables")
    for i, entry in enumerate(obj["epochs"]):
        check_fields(entry, EPOCH_FIELDS, path, where=f"epoch entry {i + 1}", required=tuple(EPOCH_FIELDS)[:4])
        if bad := [k for k, v in entry.items() if not isinstance(v, (int, float)) or isinstance(v, bool)]:
            raise CheckpointError(f"{path}: epoch entry {i + 1} has \"{bad[0]}\" that is not a number")
    if obj.get("best") is not None:
        check_fields(obj["best"], BEST_FIELDS, path, where="\"best\"", required=tuple(BEST_FIELDS))
    return obj


CHECKS = {METRICS: check_metrics, HISTORY: check_history}


def read_config(location: str | Path) -> dict:
    """config.json of a checkpoint, checked by its format: family, model config, data and training records."""
    path = resolve(location)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint folder (expected {CONFIG} and {WEIGHTS} inside)")
    file = path / CONFIG
    config = read_json(file)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not a genmodels checkpoint config (no \"format\": \"{FORMAT}\")")
    if config.get("version") != VERSION:
        raise CheckpointError(f"{file} has format version {json.dumps(config.get('version'))}, this code reads {VERSION}")
    check_fields(config, CONFIG_FIELDS, file, required=("family",))
    check_fields(config.get("data", {}), DATA_FIELDS, file, where="\"data\"")
    check_fields(config.get("training", {}), TRAINING_FIELDS, file, where="\"training\"")
    sampling = check_fields(config.get("sampling", {}), SAMPLING_FIELDS, file, where="\"sampling\"")
    if problem := truncation_problem(sampling.get("truncation", 1.0)):
        raise CheckpointError(f"{file}: \"sampling\" \"truncation\" {problem}")
    try:
        get_family(config["family"]).make_config(config.get("model", {}))
    except ConfigError as e:
        raise CheckpointError(f"{file} does not describe a buildable model: {e}") from None
    return config


def check_weights(path: Path, config: dict, expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor],
                  metadata: dict[str, str]) -> None:
    """The weights must be the ones config.json was saved with, and fit the model it describes."""
    weights = path / WEIGHTS
    mismatch = f"{weights} does not match {path / CONFIG}:"
    family, dataset = config["family"], config.get("data", {}).get("dataset")
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{weights} was not written by genmodels (its metadata has no \"format\": \"{FORMAT}\")")
    if metadata.get("family") != family:
        raise CheckpointError(f"{mismatch} it holds {metadata.get('family') or 'unnamed'} weights, the config a {family} model")
    if metadata.get("dataset") and dataset and metadata["dataset"] != dataset:
        raise CheckpointError(f"{mismatch} its weights were trained on {metadata['dataset']}, the config says {dataset}")
    digest = content_hash(tensors) if "sha256" in metadata or HASH in config else None
    if "sha256" in metadata and digest != metadata["sha256"]:
        raise CheckpointError(f"{weights} is corrupt: its tensors no longer match the content hash recorded when it "
                              "was saved")
    if HASH in config and digest != config[HASH]:
        raise CheckpointError(f"{mismatch} the two were not saved together (their content hashes differ): a file was "
                              "replaced, or a save was interrupted between them")
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        said = [f"lacks {', '.join(missing[:3])}" if missing else "", f"has extra {', '.join(unexpected[:3])}" if unexpected else ""]
        raise CheckpointError(f"{mismatch} it {' and '.join(s for s in said if s)}")
    for name, want in expected.items():
        got = tensors[name]
        if got.shape != want.shape:
            raise CheckpointError(f"{mismatch} {name} has shape {list(got.shape)}, the model needs {list(want.shape)}")
        if got.dtype != want.dtype:
            raise CheckpointError(f"{mismatch} {name} is {str(got.dtype).removeprefix('torch.')}, the model needs "
                                  f"{str(want.dtype).removeprefix('torch.')}")
    if bad := not_finite(tensors):
        raise CheckpointError(f"{weights} holds NaN or infinite values (in {', '.join(bad[:3])}"
                              f"{' and others' if len(bad) > 3 else ''}): the model it would give is broken")


class SkipInitialisers(TorchFunctionMode):
    """Inside `torch.device("meta")`: modules get their shapes, and their initialisers (in-place calls such as
    nn.init.normal_) do nothing. Meta tensors hold no values to initialise, and the meta kernel of normal_ is a Python
    decomposition whose first call imports torch._dynamo: 2.5 CPU-s of every process that loads a checkpoint (AVX2
    CPU), the app server's start-up included."""

    FILLS = {"normal_", "uniform_", "zero_", "fill_"}  # what modules call on their own tensors in reset_parameters

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name, module = getattr(func, "__name__", ""), getattr(func, "__module__", None)
        initialiser = module == "torch.nn.init" or name in self.FILLS
        tensor = args[0] if args else kwargs.get("tensor")  # nn.init passes its tensor by keyword
        if initialiser and isinstance(tensor, torch.Tensor) and tensor.is_meta:
            return tensor
        return func(*args, **kwargs)


def load(location: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a generator from its checkpoint folder (or hub repo id), in eval mode on `device`.

    The returned model carries `.checkpoint` (the config.json dict) and `.checkpoint_dir`, which every generator
    declares (genmodels.models.base.Generator).
    """
    path = resolve(location)
    config = read_config(path)
    family = get_family(config["family"])
    with torch.device("meta"), SkipInitialisers():  # shapes and sizes, nothing allocated
        model = family.build_generator(family.make_config(config.get("model", {})))
    expected = model.state_dict()
    elements = sum(t.numel() for t in expected.values())
    if elements > MAX_ELEMENTS:
        raise CheckpointError(f"{path / CONFIG} describes a model of {elements:,} numbers; the limit is {MAX_ELEMENTS:,}")
    size = (path / WEIGHTS).stat().st_size if (path / WEIGHTS).is_file() else 0
    expected_bytes = sum(t.numel() * t.element_size() for t in expected.values())
    if size > expected_bytes + HEADER_SLACK:
        raise CheckpointError(f"{path / WEIGHTS} is {size / 1e6:.1f} MB, far more than the {expected_bytes / 1e6:.1f} MB "
                              f"of weights {path / CONFIG} describes")
    tensors, metadata = read_tensors(path / WEIGHTS)
    check_weights(path, config, expected, tensors, metadata)
    model.load_state_dict(tensors, strict=True, assign=True)  # the meta tensors become the loaded ones
    if not samples_finite(model):
        raise CheckpointError(f"{path / WEIGHTS} gives a model that draws NaN or infinite images: its weights have "
                              "blown up (a learning rate far too high?)")
    model.checkpoint = config
    model.checkpoint_dir = path
    return model.to(device).eval()


def read_optional_json(location: str | Path, name: str) -> Any | None:
    """metrics.json or history.json of a checkpoint, checked by its format, or None when it has none yet."""
    path = resolve(location) / name
    if not path.exists():
        return None
    return CHECKS[name](read_json(path), path) if name in CHECKS else read_json(path)


def check_folder(location: str | Path) -> dict:
    """config.json of a checkpoint after checking it and the metrics.json and history.json beside it (the files a
    page reads), without loading the weights; CheckpointError names the first file that is wrong."""
    config = read_config(location)
    for name in CHECKS:
        read_optional_json(location, name)
    return config
