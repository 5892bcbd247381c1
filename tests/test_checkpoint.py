"""Checkpoint folders: strict loading, clear errors naming the file, atomic writes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genmodels import checkpoint as ckpt
from genmodels.checkpoint import CheckpointError
from genmodels.config import from_dict
from genmodels.registry import get_family

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def saved(tmp_path):
    family = get_family("dcgan")
    model = family.build_generator(from_dict(family.config_cls, {"width": 16, "d_width": 16}))
    return ckpt.save(model, tmp_path / "dcgan", "dcgan")


def test_missing_folder_and_files(tmp_path, saved):
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        ckpt.load(tmp_path / "nothing-here")
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        ckpt.load(saved)


def test_truncated_weights_name_the_file(saved):
    path = saved / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is not a readable safetensors file"):
        ckpt.load(saved)


def test_weights_that_do_not_match_the_config(saved):
    config = json.loads((saved / "config.json").read_text())
    config["model"]["width"] = 32
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not match .*config\.json: net\.0\.weight has "
                                              r"shape \[100, 32, 7, 7\], the model needs \[100, 64, 7, 7\]"):
        ckpt.load(saved)


def test_config_with_unknown_key_or_family(saved):
    config = json.loads((saved / "config.json").read_text())
    config["model"]["colour"] = "red"
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="'colour'.*valid keys for DCGANConfig: channels, d_norm, d_width"):
        ckpt.load(saved)
    config["model"].pop("colour")
    config["family"] = "diffusion"
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unknown model family 'diffusion'"):
        ckpt.load(saved)
    (saved / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        ckpt.load(saved)


def test_extra_tensor_in_weights_is_rejected(saved):
    # Hashes recomputed as a save would write them, so that only the extra name is wrong.
    tensors, metadata = ckpt.read_tensors(saved / "model.safetensors")
    tensors["stray.weight"] = torch.zeros(2)
    digest = ckpt.content_hash(tensors)
    ckpt.save_tensors(saved / "model.safetensors", tensors, {**metadata, "sha256": digest})
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**config, ckpt.HASH: digest}))
    with pytest.raises(CheckpointError, match="has extra stray.weight"):
        ckpt.load(saved)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    ckpt.write_json(target, {"fid": 1.0})

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write('{"fid": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"fid": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("swap", ["exchange", "two renames"])
def test_a_second_save_swaps_the_folder_whole_and_keeps_its_other_files(saved, monkeypatch, swap):
    from genmodels import files
    if swap == "two renames":  # a system without renameat2: the fallback
        monkeypatch.setattr(files, "exchange", lambda a, b: False)
    ckpt.write_json(saved / "history.json", {"epochs": []})
    first = json.loads((saved / "config.json").read_text())
    model = ckpt.load(saved)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    opened = (saved / "config.json").open()  # a reader that opened the old folder's file keeps reading the old one
    ckpt.save(model, saved, "dcgan")
    assert json.loads(opened.read()) == first
    opened.close()
    second = json.loads((saved / "config.json").read_text())
    assert second[ckpt.HASH] != first[ckpt.HASH]
    assert torch.equal(next(ckpt.load(saved).parameters()), next(model.parameters()))
    assert sorted(p.name for p in saved.parent.iterdir()) == ["dcgan"], "no temporary folder is left"
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "history.json", "model.safetensors"]


def test_a_failed_save_keeps_the_old_folder_and_leaves_no_temporary(saved, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    model = ckpt.load(saved)
    monkeypatch.setattr(ckpt, "write_json", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        ckpt.save(model, saved, "dcgan")
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["dcgan"]


def test_weights_are_safetensors_not_pickles(saved):
    head = (saved / "model.safetensors").read_bytes()[:9]
    header_len = int.from_bytes(head[:8], "little")
    assert head[8:9] == b"{" and header_len < 100_000  # safetensors: u64 header length, then a JSON header


def test_load_by_model_hub_repo_id_from_the_local_cache(tmp_path, saved):
    # The hub's cache layout: models--OWNER--NAME/{refs/main, snapshots/COMMIT/...}; offline, load resolves
    # the repo id through huggingface_hub without touching the network.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--fashion-dcgan"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in saved.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    # One fresh process (huggingface_hub reads HF_HUB_CACHE when imported) loads the repo, then fails on an absent
    # one, its error written to stderr as an uncaught one would be: a process for each cost ~3.5 CPU-s of imports more.
    code = ("import sys, torch, genmodels; m = genmodels.load('someone/fashion-dcgan'); "
            "print(m.checkpoint['family'], tuple(m.generate(torch.zeros(1, m.latent_dim)).shape))\n"
            "try:\n    genmodels.load('someone/absent')\nexcept Exception as e:\n    sys.exit(f'{type(e).__name__}: {e}')")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "dcgan (1, 1, 28, 28)", out.stderr
    assert out.returncode == 1 and "neither a local checkpoint folder nor a reachable model hub repo" in out.stderr
