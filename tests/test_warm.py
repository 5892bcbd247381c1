"""The server's start-up (pages/app/warm.py): the model a first visit opens on, and its GANSpace directions, are in
the server's caches before it answers; a checkpoint that cannot load costs the warm-up, never the start."""
from __future__ import annotations

import asyncio
import gc
import shutil
import weakref

import torch

from app_fixtures import weights_dir  # noqa: F401  (fixture)
from genmodels import checkpoint as ckpt
from genmodels.config import WEIGHTS_ENV
from genmodels.explore import principal_directions
from pages.app import warm as warm_module
from pages.app.browser import free_port, start_server, stop_server
from pages.app.common import N_DIRECTIONS, directions, first_entry, load


def test_the_warm_up_fills_the_caches_a_first_visit_reads(weights_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_dir))
    said = warm_module.warm()
    entry = first_entry(weights_dir)
    assert entry.key == "mnist-5k/dcgan" and said.startswith("mnist-5k/dcgan loaded on cpu")
    model = load(entry, "cpu")
    assert model is load(entry, "cpu"), "the page's load finds the warmed model, not a new one"
    found = directions(entry, "cpu", model)
    fresh = principal_directions(ckpt.load(entry.location), k=N_DIRECTIONS, n_samples=1024)
    assert torch.equal(found.vectors, fresh.vectors) and torch.equal(found.explained, fresh.explained)


def test_a_folder_without_checkpoints_starts_with_nothing_to_warm(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    assert warm_module.warm() == "no checkpoint to load ahead of the first visit"


def test_a_broken_opening_model_is_said_and_the_server_still_starts(weights_dir, tmp_path, monkeypatch, capsys):  # noqa: F811
    weights = tmp_path / "weights"
    shutil.copytree(weights_dir / "mnist-5k" / "dcgan", weights / "mnist-5k" / "dcgan")
    data = (weights / "mnist-5k" / "dcgan" / ckpt.WEIGHTS).read_bytes()
    (weights / "mnist-5k" / "dcgan" / ckpt.WEIGHTS).write_bytes(data[: len(data) // 2])
    monkeypatch.setenv(WEIGHTS_ENV, str(weights))

    async def start():
        async with warm_module.lifespan(None):
            return "served"

    assert asyncio.run(start()) == "served"
    assert "genmodels: nothing loaded ahead of the first visit:" in capsys.readouterr().out


class Node:
    """An object in a reference cycle: only the garbage collector can free it."""

    def __init__(self):
        self.me = self


def test_the_start_up_collects_the_garbage_then_freezes_the_heap(tmp_path, monkeypatch):
    """Streamlit collects all garbage after every script run: what start-up leaves alive is frozen out of those
    collections, and what was already garbage is freed first, not frozen for ever."""
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    garbage, alive = Node(), Node()
    freed = weakref.ref(garbage)
    del garbage

    async def start():
        async with warm_module.lifespan(None):
            return "served"

    try:
        assert asyncio.run(start()) == "served"
        assert freed() is None, "garbage from before the start-up is collected, not frozen"
        assert not any(o is alive for o in gc.get_objects()), "what start-up leaves alive is out of the collections"
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_real_server_answers_only_once_warm(weights_dir, tmp_path):  # noqa: F811
    log = tmp_path / "streamlit.log"
    server = start_server(weights_dir, free_port(), log)
    try:
        said = log.read_text()  # read the moment /_stcore/health first answers
    finally:
        stop_server(server)
    assert "genmodels: mnist-5k/dcgan loaded on cpu and its principal directions found in" in said
    assert "ScriptRunContext" not in said
