"""The Real or fake? page and the Metrics page's human score through streamlit.testing's AppTest, on real
checkpoints trained for a few steps and a real SQLite votes file in the test's folder. The bars (issue 30): a round
of 20 answers stores 20 rows and the Metrics page shows the model's HYPE∞ with its interval; a damaged, read-only
or missing votes file, or a full disk, gets words on the page, the rest of the app works, nothing is overwritten,
and no answer is lost."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_fixtures import weights_dir  # noqa: F401  (fixture)
from genmodels import checkpoint as ckpt
from genmodels.registry import get_family
from genmodels.votes import POOL_SIZE, Vote, VoteStore
from test_votes import on_a_full_disk, read_only

APP = str(Path(__file__).resolve().parents[1] / "pages" / "app" / "main.py")
PAGE = "../real_or_fake.py"


def open_app(monkeypatch, weights: Path, votes: Path, page: str = PAGE) -> AppTest:
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(weights))
    monkeypatch.setenv("GENMODELS_VOTES", str(votes))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(page).run()  # the entry script runs first, as for every URL, then this page (not the zoo first)
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success, *at.subheader)]
    return "\n".join(parts)


def answer(at: AppTest, index: int, choice: str) -> AppTest:
    at.button(key=f"rof_{choice}_{index}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def told(at: AppTest) -> str:
    """What the page said about the last answer."""
    return " ".join(m.value for m in (*at.success, *at.error))


def rows(path: Path) -> list[dict]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM votes ORDER BY id")]
    finally:
        con.close()


def hashes(weights: Path) -> dict[str, str]:
    return {f"mnist-5k/{p.name}": json.loads((p / ckpt.CONFIG).read_text())[ckpt.HASH]
            for p in (weights / "mnist-5k").iterdir() if (p / ckpt.CONFIG).is_file()}


def test_a_round_of_20_stores_20_votes_and_the_metrics_page_shows_hype(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    votes = tmp_path / "votes.sqlite3"
    at = open_app(monkeypatch, weights_dir, votes)
    assert at.title[0].value == "Real or fake?" and "no IP address, no cookie" in texts(at)
    assert not votes.exists(), "opening the page writes nothing"
    said = ["real" if i % 3 else "fake" for i in range(20)]
    for i, choice in enumerate(said):
        assert f"Image {i + 1} of 20" in texts(at)
        answer(at, i, choice)
        truth = rows(votes)[i]["truth"]
        said_so = at.success if choice == truth else at.error  # right in green, wrong in red
        assert len(said_so) == 1 and f"Image {i + 1} was {truth}" in said_so[0].value, "each answer is told what it was"
    stored = rows(votes)
    assert len(stored) == 20 and [r["answer"] for r in stored] == said
    assert len({r["session"] for r in stored}) == 1 and len({r["vote_id"] for r in stored}) == 20
    assert all(r["dataset"] == "mnist-5k" and r["response_ms"] >= 0 for r in stored)
    assert sorted(r["truth"] for r in stored) == ["fake"] * 10 + ["real"] * 10
    known = hashes(weights_dir)
    assert {r["model_key"] for r in stored} == set(known), "the three models take turns"
    assert all(known[r["model_key"]] == r["model_sha256"] for r in stored), "votes keyed by the weights' content hash"
    assert all(0 <= r["seed"] < POOL_SIZE and r["real_index"] is None for r in stored if r["truth"] == "fake")
    right = sum(r["truth"] == r["answer"] for r in stored)
    assert f"Your score: {right} of 20 right" in texts(at)
    fooled = {r["model_key"] for r in stored if r["truth"] == "fake" and r["answer"] == "real"}
    for key in fooled:
        n = sum(r["model_key"] == key and r["truth"] == "fake" and r["answer"] == "real" for r in stored)
        title = get_family(key.split("/")[1]).title
        assert f"{title}: **{n} of " in texts(at) and key in texts(at), "each model that fooled is named, with how often"
    doubted = sum(r["truth"] == "real" and r["answer"] == "fake" for r in stored)
    assert f"Real images you took for fakes: {doubted} of 10" in texts(at)
    assert len(at.get("image")) == len(fooled) + (doubted > 0), "the images that fooled, and the reals doubted"
    at.button(key="rof_new").click().run()
    assert "Image 1 of 20" in texts(at), "a new round starts"

    # A second person votes on the DCGAN, so its score has an interval over people.
    dcgan = known["mnist-5k/dcgan"]
    store = VoteStore(votes)
    for i in range(4):
        store.record(Vote("second-person", "mnist-5k", "mnist-5k/dcgan", dcgan, "fake", "real", i, None, 700))
    score = store.scores()[dcgan]
    assert score.evaluators == 2 and score.low is not None
    at.switch_page("../metrics.py").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("Checkpoint")
    assert list(table.columns[:3]) == ["Model", "fid", "hype"], "people's score beside FID"
    assert table.loc["mnist-5k/dcgan", "hype"] == score.text()
    assert "% (95% CI " in score.text() and f"· n = {score.answers}" in score.text()
    counts = next(d.value for d in at.dataframe if "people" in d.value).set_index("Checkpoint")
    assert counts.loc["mnist-5k/dcgan", "people"] == 2 and counts.loc["mnist-5k/dcgan", "answers"] == score.answers
    assert at.get("download_button"), "the raw votes can be downloaded"


def test_the_metrics_page_says_no_votes_yet(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, tmp_path / "votes.sqlite3", "../metrics.py")
    assert "No votes yet: answer a round on the Real or fake? page." in texts(at)
    assert not (tmp_path / "votes.sqlite3").exists(), "reading the votes creates no database"


def test_a_damaged_votes_file_is_reported_left_alone_and_the_app_works(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    votes = tmp_path / "votes.sqlite3"
    damaged = b"these are not votes " * 500
    votes.write_bytes(damaged)
    at = open_app(monkeypatch, weights_dir, votes)
    assert "Voting is unavailable:" in at.warning[0].value and "left as it is" in at.warning[0].value
    answer(at, 0, "real")
    assert "Image 1 was " in told(at), "the game goes on"
    assert "your answers wait in this browser session (1 so far)" in at.warning[0].value
    assert votes.read_bytes() == damaged and sorted(p.name for p in tmp_path.iterdir()) == ["votes.sqlite3"]
    at.switch_page("../metrics.py").run()
    assert "The votes cannot be read:" in at.warning[0].value and "123.4" in at.dataframe[0].value.to_string()
    at.switch_page("../zoo.py").run()
    assert not at.exception and not at.warning and "### DCGAN" in texts(at)


def test_a_read_only_votes_file_loses_no_answer(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    votes = tmp_path / "votes.sqlite3"
    VoteStore(votes).record(Vote("earlier-person", "mnist-5k", "mnist-5k/dcgan", hashes(weights_dir)["mnist-5k/dcgan"],
                                 "fake", "real", 0, None, 500))
    before = votes.read_bytes()
    at = open_app(monkeypatch, weights_dir, votes)
    with read_only(votes):
        at.run()
        assert "Voting is unavailable:" in at.warning[0].value and "is read-only" in at.warning[0].value
        answer(at, 0, "fake")
        answer(at, 1, "real")
        assert "(2 so far)" in at.warning[0].value
        assert votes.read_bytes() == before
        at.switch_page("../metrics.py").run()
        assert at.dataframe[0].value.set_index("Checkpoint").loc["mnist-5k/dcgan", "hype"] == \
            "100.0% (interval needs 2+ people) · n = 1", "the votes already stored are still read"
        at.switch_page(PAGE).run()
    answer(at, 2, "real")
    assert not at.warning, "writable again: the waiting answers are stored"
    assert len(rows(votes)) == 1 + 3


def test_a_missing_votes_folder_is_reported_and_not_created(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    votes = tmp_path / "unmounted-volume" / "votes.sqlite3"
    at = open_app(monkeypatch, weights_dir, votes)
    assert "unmounted-volume of the votes database does not exist" in at.warning[0].value
    answer(at, 0, "real")
    assert not votes.parent.exists()
    at.switch_page("../sample.py").run()
    assert not at.exception and not at.warning and at.get("image")


FULL_DISK_PAGE = """
import json, os, sys
from streamlit.testing.v1 import AppTest
folder, weights, app = sys.argv[1:]
os.environ.update(GENMODELS_WEIGHTS=weights, GENMODELS_VOTES=os.path.join(folder, "votes.sqlite3"))
at = AppTest.from_file(app, default_timeout=120)
at.switch_page("../real_or_fake.py").run()
at.button(key="rof_real_0").click().run()
fill(folder)
at.button(key="rof_fake_1").click().run()
full = [w.value for w in at.warning]
make_room(folder)
at.button(key="rof_real_2").click().run()
from genmodels.votes import VoteStore
print(json.dumps({"full": full, "after": [w.value for w in at.warning], "exceptions": [e.value for e in at.exception],
                  "told": " ".join(m.value for m in (*at.success, *at.error)),
                  "stored": VoteStore(os.environ["GENMODELS_VOTES"]).count()}))
"""


def test_a_full_disk_gets_words_on_the_page_and_the_answers_wait(weights_dir, tmp_path):  # noqa: F811
    done = on_a_full_disk(FULL_DISK_PAGE, str(tmp_path / "disk"), str(weights_dir), APP, size_kb=1024)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["exceptions"] == [] and "Image 3 was " in seen["told"]
    assert len(seen["full"]) == 1 and "Voting is unavailable:" in seen["full"][0] and "is full" in seen["full"][0]
    assert "(1 so far)" in seen["full"][0]
    assert seen["after"] == [] and seen["stored"] == 3, "room again: the waiting answer is stored with the next"
