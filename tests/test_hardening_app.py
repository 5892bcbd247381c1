"""The app beside malformed checkpoint folders, one malformed file of each kind next to good checkpoints. The
bar (issue 17): the zoo draws every good card and a clear card for each bad one, and every other page works."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from genmodels import checkpoint as ckpt
from genmodels.registry import get_family

MAIN = Path(__file__).resolve().parents[1] / "pages" / "app" / "main.py"
PAGES = re.findall(r'st\.Page\("(\.\./\w+\.py)"', MAIN.read_text())  # every page the app navigates to, the zoo first
DATASET = "mnist"  # the reconstruct page reads its held-out split: the official IDX files load in milliseconds


def good(folder: Path, family: str) -> Path:
    """A real checkpoint of a small untrained model, as checkpoint.save writes it, with a preview and metrics."""
    fam = get_family(family)
    values = {"width": 8} if fam.build_discriminator is None else {"width": 8, "d_width": 8, **({"num_classes": 10} if fam.conditional else {})}
    torch.manual_seed(0)
    ckpt.save(fam.build_generator(fam.make_config(values)), folder, family,
              data={"dataset": DATASET, "source": "test", "subset": True}, training={"epochs": 1.0, "steps": 1})
    ckpt.write_json(folder / ckpt.METRICS, {"metrics": {"fid": {"value": 99.5, "protocol": "test"}}})
    ckpt.write_json(folder / ckpt.HISTORY, {"epochs": [{"epoch": 1, "step": 1, "images_seen": 32, "seconds": 1.0,
                                                        "loss_g": 0.7}], "best": None})
    return folder


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / ckpt.CONFIG).read_text())
    (folder / ckpt.CONFIG).write_text(json.dumps({**config, **changes}))


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


# Each bad folder: a good DCGAN checkpoint with one file broken, and words its card must show.
BREAKS = {
    "family-list": (lambda f: edit_config(f, family=["dcgan"]), "\"family\" must be a string"),
    "data-string": (lambda f: edit_config(f, data="x"), "\"data\" must be a table"),
    "training-string": (lambda f: edit_config(f, training="x"), "\"training\" must be a table"),
    "config-not-json": (lambda f: (f / ckpt.CONFIG).write_text("{oops"), "is not valid JSON"),
    "no-config": (lambda f: (f / ckpt.CONFIG).unlink(), "config.json is missing"),
    "weights-truncated": (lambda f: (f / ckpt.WEIGHTS).write_bytes((f / ckpt.WEIGHTS).read_bytes()[:5000]),
                          "truncated or corrupt"),
    "weights-flipped": (lambda f: flip_last_byte(f / ckpt.WEIGHTS), "corrupt"),
    "weights-of-wgan": (lambda f: shutil.copy(good(f.parent.parent / "wgan", "wgan_gp") / ckpt.WEIGHTS, f / ckpt.WEIGHTS),
                        "holds wgan_gp weights"),
    "metrics-list": (lambda f: (f / ckpt.METRICS).write_text('{"metrics": []}'), "\"metrics\" must be a table"),
    "metrics-text-value": (lambda f: (f / ckpt.METRICS).write_text('{"metrics": {"fid": {"value": "abc"}}}'),
                           "\"value\" must be a finite number"),
    "history-string": (lambda f: (f / ckpt.HISTORY).write_text('{"epochs": "x"}'), "\"epochs\" must be a list"),
}


WEIGHTS_BROKEN = ("weights-truncated", "weights-flipped", "weights-of-wgan")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("app") / "weights"
    for family in ("vae", "dcgan", "cgan"):
        good(root / DATASET / family, family)
    # A good checkpoint whose preview.png is damaged: its card is drawn, with fresh samples and a note.
    shutil.copytree(root / DATASET / "dcgan", root / DATASET / "preview-damaged")
    (root / DATASET / "preview-damaged" / "preview.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    for name, (damage, _) in BREAKS.items():
        shutil.copytree(root / DATASET / "dcgan", root / DATASET / name)
        damage(root / DATASET / name)
    return root


def open_app(monkeypatch, weights: Path) -> AppTest:
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(weights))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.run()
    return at


def shown(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in (*at.error, *at.warning, *at.info)]
    return "\n".join(parts)


def test_zoo_draws_every_good_card_and_a_clear_card_for_each_bad_one(monkeypatch, weights):
    at = open_app(monkeypatch, weights)
    assert not at.exception, [e.value for e in at.exception]
    text = shown(at)
    assert "Something went wrong" not in text and "Traceback" not in text
    for key, title in (("vae", "VAE"), ("dcgan", "DCGAN"), ("cgan", "CGAN"), ("preview-damaged", "DCGAN")):
        assert f"### {title}\n" in text and f"`{DATASET}/{key}`" in text, key
    errors = [e.value for e in at.error]
    for name, (_, words) in BREAKS.items():
        card = [e for e in errors if f"{DATASET}/{name}" in e]
        assert len(card) == 1 and words in card[0], (name, card)
    assert len(errors) == len(BREAKS), "one error card per bad folder, nothing else"
    # A preview per good card, none for a bad one; the damaged preview is replaced and said so.
    assert len(at.get("image")) == 4
    assert any("preview.png cannot be shown" in w.value and "fresh samples" in w.value for w in at.warning)


def test_every_other_page_works_beside_them(monkeypatch, weights):
    at = open_app(monkeypatch, weights)
    for page in [p for p in PAGES if p != "../zoo.py"]:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        text = shown(at)
        assert at.title and "Something went wrong" not in text and "Traceback" not in text, (page, text[:500])
        # The sidebar offers the good checkpoints, and those whose config, metrics and history are sound but whose
        # weights fail only when loaded (checking them all on every rerun would cost a load each).
        options = at.sidebar.selectbox(key="model").options
        offered = [*("vae", "dcgan", "cgan", "preview-damaged"), *WEIGHTS_BROKEN]
        assert len(options) == len(offered) and all(any(f"{DATASET}/{k})" in o for o in options) for k in offered), options


def test_a_checkpoint_whose_weights_fail_costs_a_message_on_the_page(monkeypatch, weights):
    at = open_app(monkeypatch, weights)
    at.switch_page("../sample.py").run()
    for name in WEIGHTS_BROKEN:
        at.sidebar.selectbox(key="model").set_value(f"{DATASET}/{name}").run()
        assert not at.exception and any(BREAKS[name][1] in e.value for e in at.error), name
    at.sidebar.selectbox(key="model").set_value(f"{DATASET}/dcgan").run()
    assert not at.exception and not at.error and at.get("image"), "the page works again with a good model"
