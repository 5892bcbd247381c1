"""Share checkpoints on the Hugging Face model hub, with a model card written from what the checkpoint records.

    python -m genmodels.hub card CHECKPOINT [--repo-id OWNER/NAME] [--out README.md]
    python -m genmodels.hub push CHECKPOINT OWNER/NAME [--private] [--token TOKEN]

`push` stages the checkpoint's files and a generated README.md in a temporary folder and uploads that folder
as one commit (HfApi.create_repo, then HfApi.upload_folder). Anyone can then call `genmodels.load("OWNER/NAME")`:
genmodels.checkpoint.resolve fetches a repo id through the local hub cache.
"""
from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
from pathlib import Path, PurePath

from . import checkpoint as ckpt
from .checkpoint import CheckpointError
from .data import parent_dataset
from .registry import get_family

CARD = "README.md"
REQUIRED = (ckpt.CONFIG, ckpt.WEIGHTS)
OPTIONAL = (ckpt.METRICS, ckpt.HISTORY, ckpt.PREVIEW)

# The hub's own copies of the datasets we read, so the card links to them.
HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist", "cifar10": "uoft-cs/cifar10"}
DATASET_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
                  "skimage-photos": "scikit-image photo crops"}


class HubError(RuntimeError):
    """A push that cannot happen (offline, not logged in, hub unreachable); the message says what to do."""


def dataset_title(dataset: str) -> str:
    """A dataset in words; an image folder by its name, never its place on the machine that trained on it."""
    if dataset.startswith("folder:"):
        return f"the image folder {PurePath(dataset[len('folder:'):]).name}"
    return DATASET_TITLES.get(parent_dataset(dataset), dataset)


def duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {s} s" if minutes else f"{seconds:.1f} s"


def front_matter(config: dict, metrics: dict, repo_id: str) -> str:
    """The card's YAML metadata: what the hub indexes (library, tags, datasets, papers, metric values)."""
    from huggingface_hub import EvalResult, ModelCardData

    family, dataset = get_family(config["family"]), config["data"].get("dataset", "")
    conditional = bool(config["model"].get("num_classes"))
    task = "conditional-image-generation" if conditional else "unconditional-image-generation"
    tags = ["genmodels", family.kind, family.name, dataset.partition(":")[0], task, f"arxiv:{family.arxiv}"]
    hub_dataset = HUB_DATASETS.get(parent_dataset(dataset))
    results = [EvalResult(task_type=task, dataset_type=hub_dataset or dataset, dataset_name=dataset_title(dataset),
                          dataset_split=m.get("ref_split"), metric_type=name, metric_value=m["value"], metric_name=name.upper())
               for name, m in metrics.items()]
    data = ModelCardData(
        library_name="genmodels",
        tags=list(dict.fromkeys(tags)),
        datasets=[hub_dataset] if hub_dataset else None,
        metrics=list(metrics) or None,
        # The hub has a task for unconditional generation only; class-conditional models are found by their tags.
        pipeline_tag=None if conditional else task,
        model_name=repo_id if results else None,  # names the model-index entry that holds the metric values
        eval_results=results or None,
    )
    return data.to_yaml()


def usage(repo_id: str, config: dict) -> str:
    model = config["model"]
    shape = f"[16, {model['channels']}, {model['image_size']}, {model['image_size']}]"
    lines = ["import torch", "import genmodels", "",
             f'model = genmodels.load("{repo_id}")  # fetches config.json + model.safetensors into the hub cache',
             "z = torch.randn(16, model.latent_dim)"]
    if model.get("num_classes"):
        lines += ["labels = torch.arange(16) % model.num_classes  # class indices, see the class names above",
                  f"images = model.generate(z, labels)  # {shape}, in [-1, 1]"]
    else:
        lines.append(f"images = model.generate(z)  # {shape}, in [-1, 1]")
    if get_family(config["family"]).has_encoder:
        lines.append("mu, logvar = model.encode(images)  # the encoder ships too: reconstruct with model.decode(mu)")
    return "\n".join(lines)


def model_card(location: str | Path, repo_id: str = "OWNER/NAME") -> str:
    """README.md for a checkpoint folder (or hub repo id), from its config.json, metrics.json and history.json."""
    path = ckpt.resolve(location)
    model = ckpt.load(path)
    config = model.checkpoint
    metrics = (ckpt.read_optional_json(path, ckpt.METRICS) or {}).get("metrics", {})
    family = get_family(config["family"])
    data, training, arch = config["data"], config["training"], config["model"]
    dataset = data.get("dataset", "")
    paper = f"{family.paper}, [*{family.paper_title}*](https://arxiv.org/abs/{family.arxiv})"
    kind = (f"class-conditional on {arch['num_classes']} classes" if arch.get("num_classes") else "unconditional")
    parameters = sum(p.numel() for p in model.parameters())
    processes = training.get("processes", 1)
    lines = ["---", front_matter(config, metrics, repo_id).rstrip(), "---", "",
             f"# {family.title} trained on {dataset_title(dataset)}", "",
             f"A {family.title} ({paper}) trained with genmodels. It is {kind}: it maps z ~ N(0, I) of size "
             f"{arch['latent_dim']} to {arch['channels']}x{arch['image_size']}x{arch['image_size']} images in [-1, 1].", ""]
    if (path / ckpt.PREVIEW).exists():
        lines += [f"![64 samples from fixed latent vectors]({ckpt.PREVIEW})", ""]
    lines += ["## Data", "", f"- dataset: `{dataset}`", f"- source: {data.get('source', 'not recorded')}"]
    if data.get("size"):
        lines.append(f"- training images: {data['size']:,}")
    if data.get("class_names"):
        lines.append(f"- classes: {', '.join(data['class_names'])}")
    if data.get("subset"):
        lines += ["", f"**Trained on a subset of {dataset_title(dataset)}, not the full dataset.** Compare its metrics "
                      "only with models trained on the same subset, not with published numbers."]
    lines += ["", "## Architecture", "", f"{parameters:,} generator parameters"
              f"{' (encoder included)' if family.has_encoder else ''}; config.json rebuilds the model:", "",
              "| setting | value |", "|---|---|", *(f"| {k} | `{json.dumps(v)}` |" for k, v in arch.items())]
    lines += ["", "## Training", "", "| | |", "|---|---|",
              f"| epochs | {training.get('epochs', 0):.3g} |", f"| steps | {training.get('steps')} |",
              f"| images seen | {training.get('images_seen', 0):,} |",
              f"| device | {training.get('device_name', training.get('device'))} ({training.get('device')}), "
              f"{processes} process{'es' if processes > 1 else ''}, {training.get('precision')} |",
              f"| wall time | {duration(training.get('wall_seconds', 0))} |", f"| torch | {training.get('torch')} |",
              "", "Command:", "", "```bash", training.get("command") or "(not recorded)", "```", "",
              "Training and objective settings:", "", "```json",
              json.dumps({"train": training.get("train", {}), "objective": training.get("objective", {})}, indent=2),
              "```", "", "## Metrics", ""]
    if metrics:
        lines += ["| metric | value | protocol |", "|---|---|---|",
                  *(f"| {name} | {m['value']:.4g} | {m.get('protocol', '')} |" for name, m in metrics.items())]
    else:
        lines.append("None measured yet: `python -m genmodels.evaluate CHECKPOINT` writes metrics.json.")
    lines += ["", "## Usage", "", "```python", usage(repo_id, config), "```", "",
              "## Files", "", "- `config.json`: family, architecture, data and training record",
              "- `model.safetensors`: generator weights (EMA weights when the run kept an EMA)"]
    lines += [f"- `{name}`: {what}" for name, what in ((ckpt.METRICS, "metrics, each with its protocol"),
                                                        (ckpt.HISTORY, "losses per epoch"), (ckpt.PREVIEW, "sample grid"))
              if (path / name).exists()]
    return "\n".join(lines) + "\n"


def stage(location: str | Path, folder: str | Path, repo_id: str) -> list[str]:
    """Copy what a hub repo should hold (checkpoint files and README.md) into `folder`; returns the file names."""
    path, folder = ckpt.resolve(location), Path(folder)
    for name in REQUIRED:
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name} is missing: {path} is not a checkpoint folder")
    folder.mkdir(parents=True, exist_ok=True)
    names = [n for n in REQUIRED + OPTIONAL if (path / n).is_file()]
    for name in names:
        shutil.copyfile(path / name, folder / name)
    (folder / CARD).write_text(model_card(path, repo_id))
    return names + [CARD]


def transport_errors() -> tuple[type[BaseException], ...]:
    """huggingface_hub lets its HTTP client's connection errors through: requests' (OSError) before 1.0,
    httpx's in 1.x, httpx2's in 2.x."""
    errors: list[type[BaseException]] = [OSError]
    for name in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except ImportError:
            pass
    return tuple(errors)


def push(location: str | Path, repo_id: str, private: bool = False, token: str | None = None,
         message: str | None = None) -> str:
    """Create (or reuse) the model repo and upload the staged checkpoint as one commit; returns the commit URL."""
    if not ckpt.HUB_ID.match(repo_id):
        raise HubError(f"{repo_id!r} is not a hub repo id: expected OWNER/NAME (letters, digits, '-', '_', '.')")
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="genmodels-hub-") as folder:
        stage(location, folder, repo_id)
        try:
            api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model",
                                     commit_message=message or f"Upload genmodels checkpoint from {Path(location).name}")
        except OfflineModeIsEnabled:
            raise HubError(f"cannot push {repo_id}: HF_HUB_OFFLINE is set, so huggingface_hub makes no network "
                           "requests; unset it where there is internet") from None
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            hint = (" (log in with `hf auth login` or pass --token with write access)" if status in (401, 403) else "")
            raise HubError(f"the hub refused {repo_id}{hint}: {e}") from None
        except transport_errors() as e:
            raise HubError(f"cannot reach the hub at {constants.ENDPOINT} to push {repo_id}: {e}") from None
    return info.commit_url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m genmodels.hub", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = ap.add_subparsers(dest="command", required=True)
    card = commands.add_parser("card", help="print (or write) the model card of a checkpoint")
    card.add_argument("checkpoint", help="checkpoint folder (or hub repo id)")
    card.add_argument("--repo-id", default="OWNER/NAME", help="repo id the usage snippet loads")
    card.add_argument("--out", type=Path, help="write the card here instead of printing it")
    up = commands.add_parser("push", help="upload a checkpoint and its model card to the hub")
    up.add_argument("checkpoint", help="checkpoint folder")
    up.add_argument("repo_id", help="OWNER/NAME on the hub; created when it does not exist")
    up.add_argument("--private", action="store_true", help="create the repo private")
    up.add_argument("--token", help="hub token with write access (default: the one `hf auth login` saved, or $HF_TOKEN)")
    up.add_argument("--message", help="commit message")
    args = ap.parse_args(argv)
    try:
        if args.command == "card":
            text = model_card(args.checkpoint, args.repo_id)
            if args.out:
                ckpt.atomic_write(args.out, lambda tmp: Path(tmp).write_text(text))
                print(f"wrote {args.out}", file=sys.stderr)
            else:
                print(text, end="")
            return 0
        print(push(args.checkpoint, args.repo_id, args.private, args.token, args.message))
    except (CheckpointError, HubError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
