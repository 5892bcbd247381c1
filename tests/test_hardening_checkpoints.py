"""Broken, mismatched and impossible checkpoints, made the way a damaged disk, a careless copy or a hostile
visitor (who can type any folder or hub repo id into the sidebar) would make them. The bar (issue 17): every
variant is refused with a CheckpointError that names the file and says what is wrong in words; 0 load silently."""
from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from genmodels import checkpoint as ckpt
from genmodels.checkpoint import CheckpointError
from genmodels.registry import get_family
from peak_memory import peak_mb

# Text that would mean an internal error leaked into a message instead of words.
INTERNAL = ("Traceback", "unhashable", "object has no attribute", "invalid literal", "math domain", "KeyError",
            "TypeError", "NoneType", "Error while deserializing", "size mismatch", "Unexpected key")


def make(folder: Path, family: str = "dcgan", dataset: str = "mnist", seed: int = 0, **model) -> Path:
    """A real checkpoint of an untrained small model, written by checkpoint.save."""
    fam = get_family(family)
    small = {"vae": {"width": 8}, "gan": {"hidden": (32, 64), "d_hidden": (64, 32)}}.get(family, {"width": 8, "d_width": 8})
    values = {**small, **model}
    if fam.conditional:
        values.setdefault("num_classes", 10)
    torch.manual_seed(seed)
    generator = fam.build_generator(fam.make_config(values))
    return ckpt.save(generator, folder, family, data={"dataset": dataset, "source": "test"}, training={"steps": 1})


def edit_config(folder: Path, change: Callable[[dict], None]) -> None:
    config = json.loads((folder / ckpt.CONFIG).read_text())
    change(config)
    (folder / ckpt.CONFIG).write_text(json.dumps(config))


def resave_weights(folder: Path, change: Callable[[dict], dict], keep_hashes_true: bool = True) -> None:
    """Rewrite the tensors through `change`; with keep_hashes_true, the recorded hashes are updated to match, so
    that only what `change` did is wrong (a careful forger, or another tool writing the file)."""
    tensors, metadata = ckpt.read_tensors(folder / ckpt.WEIGHTS)
    tensors = change(tensors)
    if keep_hashes_true:
        digest = ckpt.content_hash(tensors)
        metadata["sha256"] = digest
        edit_config(folder, lambda c: c.update({ckpt.HASH: digest}))
    ckpt.save_tensors(folder / ckpt.WEIGHTS, tensors, metadata)


def data_start(path: Path) -> int:
    """Offset of the first tensor byte in a safetensors file (8-byte header length, then the JSON header)."""
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def variants(root: Path) -> list[tuple[str, Path, str]]:
    """(what was done, checkpoint folder, words the refusal must contain)."""
    out: list[tuple[str, Path, str]] = []
    rng = random.Random(17)
    counter = iter(range(10_000))
    templates: dict[tuple, Path] = {}

    def fresh(family: str = "dcgan", **kwargs) -> Path:
        """A copy of a good checkpoint of this family (saved once) to break."""
        key = (family, *sorted(kwargs.items()))
        if key not in templates:
            templates[key] = make(root / f"template-{len(templates)}", family, **kwargs)
        return Path(shutil.copytree(templates[key], root / f"v{next(counter):03d}"))

    # Bytes changed in the tensor data (40 random positions, one byte each, across three families), bytes
    # changed in the header (10), and truncation anywhere (10).
    for i in range(60):
        folder = fresh(["dcgan", "vae", "cgan"][i % 3])
        path = folder / ckpt.WEIGHTS
        data = bytearray(path.read_bytes())
        if i < 50:
            at = rng.randrange(data_start(path), len(data)) if i < 40 else rng.randrange(8, data_start(path))
            data[at] ^= rng.randrange(1, 256)
            what = f"byte {at} {'of the tensor data' if i < 40 else 'of the header'} changed"
        else:
            data = data[: rng.randrange(len(data))]
            what = f"weights truncated to {len(data)} bytes"
        path.write_bytes(bytes(data))
        out.append((what, folder, "corrupt" if i < 40 else "model.safetensors"))

    # Swaps: the weights of another family, another dataset, another run.
    folder = fresh("dcgan")
    shutil.copy(make(root / "src-wgan", "wgan_gp") / ckpt.WEIGHTS, folder / ckpt.WEIGHTS)
    out.append(("WGAN-GP weights in a DCGAN folder", folder, "holds wgan_gp weights, the config a dcgan model"))
    folder = fresh("dcgan", dataset="mnist")
    shutil.copy(make(root / "src-fashion", "dcgan", dataset="fashion-mnist", seed=1) / ckpt.WEIGHTS, folder / ckpt.WEIGHTS)
    out.append(("Fashion-MNIST weights in an MNIST folder", folder, "trained on fashion-mnist, the config says mnist"))
    folder = fresh("dcgan", dataset="mnist")
    shutil.copy(make(root / "src-other-run", "dcgan", dataset="mnist", seed=2) / ckpt.WEIGHTS, folder / ckpt.WEIGHTS)
    out.append(("weights of another MNIST DCGAN run", folder, "were not saved together"))
    folder = fresh("dcgan")
    resave_weights(folder, lambda t: {**t, "net.0.weight": t["net.0.weight"][:, :4].contiguous()})
    out.append(("a tensor of another shape", folder, "net.0.weight has shape"))
    folder = fresh("dcgan")
    resave_weights(folder, lambda t: {k: v for k, v in t.items() if k != "net.1.bias"})
    out.append(("a tensor missing", folder, "lacks net.1.bias"))

    # dtypes and values, with the hashes made to match so that only the dtype or value is wrong.
    for dtype in (torch.int8, torch.float64, torch.float16, torch.bfloat16):
        folder = fresh("dcgan")
        resave_weights(folder, lambda t, d=dtype: {k: v.to(d) if v.is_floating_point() else v for k, v in t.items()})
        out.append((f"weights stored as {dtype}", folder, f"is {str(dtype).removeprefix('torch.')}, the model needs float32"))
    for bad in (float("nan"), float("inf")):
        folder = fresh("vae")
        resave_weights(folder, lambda t, b=bad: {k: torch.full_like(v, b) if v.is_floating_point() else v for k, v in t.items()})
        out.append((f"all weights {bad}", folder, "NaN or infinite values"))
    folder = fresh("dcgan")
    resave_weights(folder, lambda t: {**t, "net.0.weight": t["net.0.weight"].index_fill(0, torch.tensor([3]), float("nan"))})
    out.append(("one row of NaN", folder, "NaN or infinite values (in net.0.weight"))
    folder = fresh("dcgan")
    resave_weights(folder, lambda t: {k: v * 1e30 if v.is_floating_point() else v for k, v in t.items()})
    out.append(("finite weights blown up to 1e30", folder, "draws NaN or infinite images"))
    folder = fresh("dcgan")
    tensors = ckpt.load_tensors(folder / ckpt.WEIGHTS)
    ckpt.save_tensors(folder / ckpt.WEIGHTS, tensors)  # no metadata: not written by genmodels
    out.append(("weights without genmodels metadata", folder, "was not written by genmodels"))

    # Impossible or malformed config.json.
    for what, change, words in [
        ("a VAE with num_classes 10", lambda c: c["model"].update(num_classes=10), "num_classes must be 0 for vae"),
        ("a CGAN with num_classes 0", lambda c: c["model"].update(num_classes=0), "num_classes must be at least 2"),
        ("latent_dim -1", lambda c: c["model"].update(latent_dim=-1), "latent_dim must be at least 1"),
        ("latent_dim 50000", lambda c: c["model"].update(latent_dim=50_000), "latent_dim must be at least 1 and at most 4096"),
        ("latent_dim 'abc'", lambda c: c["model"].update(latent_dim="abc"), "latent_dim must be a whole number"),
        ("latent_dim true", lambda c: c["model"].update(latent_dim=True), "latent_dim must be a whole number"),
        ("latent_dim 1.5", lambda c: c["model"].update(latent_dim=1.5), "latent_dim must be a whole number"),
        ("width 10^6", lambda c: c["model"].update(width=10**6), "width must be at least 1 and at most 1024"),
        ("image_size 30", lambda c: c["model"].update(image_size=30), "image_size must be 28, 32, 64"),
        ("channels 2", lambda c: c["model"].update(channels=2), "channels must be 1 or 3"),
        ("width 1024 at 256x256", lambda c: c["model"].update(width=1024, image_size=256), "describes a model of"),
        ("d_norm 'magic'", lambda c: c["model"].update(d_norm="magic"), "d_norm must be"),
        ("an unknown model key", lambda c: c["model"].update(colour="red"), "unknown key 'colour'"),
        ("family ['dcgan']", lambda c: c.update(family=["dcgan"]), "\"family\" must be a string"),
        ("an unknown family", lambda c: c.update(family="diffusion"), "unknown model family 'diffusion'"),
        ("data 'x'", lambda c: c.update(data="x"), "\"data\" must be a table"),
        ("training 'x'", lambda c: c.update(training="x"), "\"training\" must be a table"),
        ("data.class_names 7", lambda c: c["data"].update(class_names=7), "\"class_names\" must be a list of strings"),
        ("training.epochs 'many'", lambda c: c["training"].update(epochs="many"), "\"epochs\" must be a finite number"),
        ("model [] ", lambda c: c.update(model=[]), "\"model\" must be a table"),
        ("version 2", lambda c: c.update(version=2), "format version 2"),
        ("no format", lambda c: c.pop("format"), "not a genmodels checkpoint config"),
        ("a malformed hash", lambda c: c.update({ckpt.HASH: "xyz"}), "must be 64 hex digits"),
    ]:
        folder = fresh("cgan" if "CGAN" in what else "vae" if "VAE" in what else "dcgan")
        edit_config(folder, change)
        out.append((f"config.json with {what}", folder, words))
    for what, text, words in [("not JSON", "{not json", "is not valid JSON"), ("a list", "[1, 2]", "not a genmodels"),
                              ("empty", "", "is not valid JSON"), ("binary", "\udcff", "is not valid JSON")]:
        folder = fresh()
        (folder / ckpt.CONFIG).write_bytes(text.encode("utf-8", "surrogateescape"))
        out.append((f"config.json {what}", folder, words))

    # Files missing, empty, or far larger than the config describes.
    folder = fresh()
    (folder / ckpt.CONFIG).unlink()
    out.append(("no config.json", folder, "config.json is missing"))
    folder = fresh()
    (folder / ckpt.WEIGHTS).unlink()
    out.append(("no model.safetensors", folder, "model.safetensors is missing"))
    folder = fresh()
    (folder / ckpt.WEIGHTS).write_bytes(b"")
    out.append(("empty model.safetensors", folder, "truncated or corrupt"))
    folder = fresh()
    with open(folder / ckpt.WEIGHTS, "ab") as f:
        f.truncate(50_000_000)
    out.append(("model.safetensors padded to 50 MB", folder, "far more than"))
    out.append(("no folder at all", root / "nothing-here", "not a checkpoint folder"))
    return out


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return variants(tmp_path_factory.mktemp("broken"))


def test_every_broken_variant_is_refused_in_words(broken):
    silent, unclear = [], []
    started = time.perf_counter()
    for what, folder, words in broken:
        try:
            ckpt.load(folder)
        except CheckpointError as e:
            message = str(e)
            named = str(folder) in message
            if words not in message or not named or any(t in message for t in INTERNAL):
                unclear.append(f"{what}: {message}")
        except Exception as e:  # noqa: BLE001  (exactly what the bar counts)
            unclear.append(f"{what}: {type(e).__name__}: {e}")
        else:
            silent.append(what)
    print(f"\n{len(broken)} broken checkpoint variants refused in {time.perf_counter() - started:.1f} s")
    assert len(broken) >= 100
    assert not silent, f"loaded silently: {silent}"
    assert not unclear, "\n".join(unclear)


def test_sizes_are_refused_before_anything_is_allocated(tmp_path):
    # A config asking for a huge network is refused from config.json alone: no memory, no time.
    for change in ({"latent_dim": 50_000}, {"width": 1024, "image_size": 256}, {"width": 1024, "d_width": 1024}):
        folder = make(tmp_path / "x")
        edit_config(folder, lambda c, ch=change: c["model"].update(ch))
        started = time.perf_counter()
        with peak_mb() as peak:
            with pytest.raises(CheckpointError, match="config.json"):
                ckpt.load(folder)
        assert peak[0] < 50 and time.perf_counter() - started < 2, (change, peak[0])


@pytest.mark.parametrize("family", ["vae", "gan", "dcgan", "wgan_gp", "acgan", "cgan"])
def test_good_and_pre_hash_checkpoints_load_with_identical_outputs(tmp_path, family):
    folder = make(tmp_path / "good", family)
    model = ckpt.load(folder)
    config = json.loads((folder / ckpt.CONFIG).read_text())
    assert len(config[ckpt.HASH]) == 64
    # A checkpoint saved before hashes existed: no hash in config.json or in the weights' metadata.
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    edit_config(old, lambda c: c.pop(ckpt.HASH))
    tensors, _ = ckpt.read_tensors(old / ckpt.WEIGHTS)
    ckpt.save_tensors(old / ckpt.WEIGHTS, tensors, {"format": ckpt.FORMAT, "family": family})
    legacy = ckpt.load(old)
    z = torch.randn(4, model.latent_dim)
    labels = torch.arange(4) if model.num_classes else None
    with torch.no_grad():
        assert torch.equal(model.generate(z, labels), legacy.generate(z, labels))
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])


def test_shipped_checkpoints_load_and_carry_their_hash():
    # Every weights/DATASET/MODEL folder: loads, and records the hash its weights have.
    root = Path(__file__).resolve().parents[1] / "weights"
    folders = sorted(p.parent for p in root.glob("*/*/config.json") if p.parent.name not in ("classifier", "stats"))
    assert folders
    for folder in folders:
        model = ckpt.load(folder)
        ckpt.check_folder(folder)
        assert model.checkpoint.get(ckpt.HASH) == ckpt.content_hash(model.state_dict()), folder


NAN = float("nan")
EPOCH = {"epoch": 1, "step": 1, "images_seen": 1, "seconds": 1.0}


@pytest.mark.parametrize("name, content, words", [
    (ckpt.METRICS, {"metrics": []}, "\"metrics\" must be a table"),
    (ckpt.METRICS, {"fid": {"value": "abc"}}, "has no \"metrics\""),
    (ckpt.METRICS, {"metrics": {"fid": {"value": "abc"}}}, "metric \"fid\" \"value\" must be a finite number"),
    (ckpt.METRICS, {"metrics": {"fid": {"value": NAN}}}, "must be a finite number"),
    (ckpt.METRICS, {"metrics": {"fid": 3}}, "metric \"fid\" must be a table"),
    (ckpt.METRICS, [], "the file must be a table"),
    (ckpt.HISTORY, {"epochs": "x"}, "\"epochs\" must be a list"),
    (ckpt.HISTORY, {"epochs": [{**EPOCH, "step": "abc"}]}, "\"step\" must be"),
    (ckpt.HISTORY, {"epochs": [{"epoch": 1}]}, "has no \"step\""),
    (ckpt.HISTORY, {"epochs": [{**EPOCH, "loss": "x"}]}, "\"loss\" that is not a number"),
    (ckpt.HISTORY, {"epochs": [], "best": {"epoch": 1}}, "has no \"metric\""),
    (ckpt.HISTORY, "{not json", "is not valid JSON"),
])
def test_metrics_and_history_are_checked_by_their_format(tmp_path, name, content, words):
    folder = make(tmp_path / "c")
    (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(CheckpointError) as err:
        ckpt.check_folder(folder)
    assert words in str(err.value) and str(folder / name) in str(err.value)
