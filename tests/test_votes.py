"""genmodels.votes on real SQLite files: HYPE∞ against hand-computed examples, the round plan, the schema's
refusals in words, the migration, 8 processes voting at once, and the faults a votes file meets (damaged,
read-only, someone else's, from a newer version, in a missing folder, on a full disk)."""
from __future__ import annotations

import contextlib
import csv
import io
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from genmodels import votes
from genmodels.votes import SCHEMA, Vote, VoteRefused, VotesUnavailable, VoteStore

REPO = Path(__file__).resolve().parents[1]
A, B, A_RETRAINED = "a" * 64, "b" * 64, "c" * 64


def vote(session: str, sha: str, truth: str, answer: str, n: int = 0, key: str = "mnist/dcgan") -> Vote:
    return Vote(session, "mnist", key, sha, truth, answer, n if truth == "fake" else None,
                n if truth == "real" else None, 900)


# Three evaluators of model A, counted by hand:
#   s1: 2 fakes (1 judged real), 2 reals (none judged fake)  -> 1 error in 4 answers
#   s2: 1 fake (judged real),     1 real (judged fake)         -> 2 errors in 2 answers
#   s3: 1 fake (judged fake),     1 real (judged real)         -> 0 errors in 2 answers
# HYPE∞ = (fakes judged real + reals judged fake) / answers = (2 + 1) / 8 = 37.5%.
# The bootstrap resamples the three evaluators: "s3 three times" (0 / 6) and "s2 three times" (6 / 6) each come up
# with probability (1/3)^3 = 3.7% > 2.5%, so the 95% percentile interval is exactly [0%, 100%].
HAND = [("s1-session", "fake", "real"), ("s1-session", "fake", "fake"), ("s1-session", "real", "real"),
        ("s1-session", "real", "real"), ("s2-session", "fake", "real"), ("s2-session", "real", "fake"),
        ("s3-session", "fake", "fake"), ("s3-session", "real", "real")]


def hand_votes(store: VoteStore) -> None:
    for n, (session, truth, answer) in enumerate(HAND):
        assert store.record(vote(session, A, truth, answer, n))
    # One evaluator of B (no interval from one person), and A retrained: its votes must not mix with A's.
    store.record(vote("s1-session", B, "fake", "real", 1, key="mnist/gan"))
    store.record(vote("s1-session", B, "real", "real", 2, key="mnist/gan"))
    store.record(vote("s4-session", A_RETRAINED, "fake", "fake", 3))


def test_hype_infinity_of_the_hand_computed_example(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3")
    hand_votes(store)
    scores = store.scores()
    a = scores[A]
    assert (a.fakes, a.fakes_judged_real, a.reals, a.reals_judged_fake, a.evaluators) == (4, 2, 4, 1, 3)
    assert a.value == 3 / 8 and (a.low, a.high) == (0.0, 1.0)
    assert a.text() == "37.5% (95% CI 0.0–100.0%) · n = 8"
    assert a.model_keys == ("mnist/dcgan",)
    b = scores[B]
    assert (b.value, b.answers, b.evaluators, b.low, b.high) == (0.5, 2, 1, None, None)
    assert b.text() == "50.0% (interval needs 2+ people) · n = 2"
    assert scores[A_RETRAINED].answers == 1 and scores[A_RETRAINED].value == 0.0, "a retrained model starts again"


def test_the_interval_closes_when_every_evaluator_errs_at_the_same_rate():
    value, low, high = votes.hype_infinity([1, 2, 3], [4, 8, 12])
    assert value == low == high == 0.25


def test_plan_round_is_half_real_with_the_models_taking_turns():
    models = [(f"mnist/m{i}", f"{i:x}" * 64) for i in range(7)]
    trials = votes.plan_round(models, heldout_size=10_000, rng=random.Random(3))
    assert len(trials) == votes.ROUND == 20
    fakes, reals = [t for t in trials if t.truth == "fake"], [t for t in trials if t.truth == "real"]
    assert len(fakes) == len(reals) == 10
    per_model = {key: sum(t.model_key == key for t in fakes) for key, _ in models}
    assert max(per_model.values()) - min(per_model.values()) == 1, per_model
    for key, _ in models:  # each model's trials are half its own images, half real ones: the paper's design
        assert per_model[key] == sum(t.model_key == key for t in reals)
    assert len({t.seed for t in fakes}) == 10 and all(0 <= t.seed < votes.POOL_SIZE for t in fakes)
    assert len({t.real_index for t in reals}) == 10 and all(t.seed is None for t in reals)
    assert [t.truth for t in trials] != ["fake"] * 10 + ["real"] * 10, "shuffled"


def test_pool_images_are_fixed_by_seed():
    from genmodels.registry import get_family

    fam = get_family("cgan")
    torch.manual_seed(0)
    model = fam.build_generator(fam.make_config({"width": 8, "num_classes": 10})).eval()
    assert torch.equal(votes.pool_image(model, 13), votes.pool_image(model, 13))
    assert not torch.equal(votes.pool_image(model, 13), votes.pool_image(model, 14))
    assert votes.pool_image(model, 13).shape == (1, *model.image_shape)
    with pytest.raises(ValueError, match="seed must be in 0 .. 999"):
        votes.pool_image(model, votes.POOL_SIZE)


def test_a_retried_vote_is_stored_once(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3")
    v = vote("s1-session", A, "fake", "real")
    assert store.record(v) is True and store.record(v) is False
    assert store.count() == 1


@pytest.mark.parametrize("change, words", [
    ({"truth": "maybe"}, "truth must be 'real' or 'fake' (got truth = 'maybe')"),
    ({"answer": "dunno"}, "answer must be 'real' or 'fake' (got answer = 'dunno')"),
    ({"seed": None}, "truth 'fake' goes with a seed and no real_index"),
    ({"real_index": 5}, "truth 'fake' goes with a seed and no real_index, truth 'real' with a real_index and no seed "
                        "(got truth = 'fake', seed = 0, real_index = 5)"),
    ({"seed": -1}, "seed must be 0 or more (got seed = -1)"),
    ({"seed": "seven"}, "cannot store TEXT value in INTEGER column votes.seed (got seed = 'seven')"),
    ({"response_ms": -5}, "response_ms must be 0 or more (got response_ms = -5)"),
    ({"session": "x"}, "session must be 8 to 64 letters, digits, - or _ (got session = 'x')"),
    ({"session": "1.2.3.4 (an IP address)"}, "session must be 8 to 64 letters, digits, - or _"),
    ({"model_sha256": "abc"}, "model_sha256 must be 64 lowercase hex digits"),
    ({"dataset": None}, "vote refused: dataset must be given (got dataset = None)"),
    ({"time": "yesterday"}, "time must be an ISO 8601 UTC time"),
    ({"vote_id": "not-a-uuid"}, "vote_id must be 32 lowercase hex digits"),
    ({"response_ms": [1, 2]}, "a value has a type the votes table cannot hold"),
])
def test_a_vote_that_does_not_fit_the_schema_is_refused_in_words(tmp_path, change, words):
    store = VoteStore(tmp_path / "votes.sqlite3")
    with pytest.raises(VoteRefused) as refused:
        store.record(replace(vote("s1-session", A, "fake", "real"), **change))
    assert words in str(refused.value)
    assert store.count() == 0


def test_migration_brings_an_empty_file_to_the_schema_once_and_keeps_votes(tmp_path):
    path = tmp_path / "votes.sqlite3"
    path.touch()  # an empty file is an empty SQLite database: schema 0
    store = VoteStore(path)
    assert store.count() == 0, "reading never migrates"
    assert store.record(vote("s1-session", A, "fake", "real"))
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA
    assert con.execute("PRAGMA application_id").fetchone()[0] == votes.APPLICATION_ID
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert store.problem() is None and store.count() == 1, "opening an up-to-date file changes nothing"


def write_votes(path: str, worker: int, n: int) -> list[str]:
    """One process voting n times as one evaluator; the errors it met, as text."""
    store, errors = VoteStore(path), []
    for i in range(n):
        truth = "fake" if i % 2 else "real"
        try:
            store.record(vote(f"worker-{worker}", A, truth, random.choice(votes.ANSWERS), i))
        except Exception as e:  # noqa: BLE001  (the test counts every error of any kind)
            errors.append(f"{type(e).__name__}: {e}")
    return errors


def test_eight_processes_vote_at_once_and_every_vote_is_stored_once(tmp_path):
    """The bar: 8 processes x 200 votes -> exactly 1,600 rows, 0 errors. The file does not exist at the start, so
    the eight also race to create and migrate it."""
    path = tmp_path / "votes.sqlite3"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        errors = pool.starmap(write_votes, [(str(path), w, 200) for w in range(8)])
    assert sum(errors, []) == []
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*), count(DISTINCT vote_id) FROM votes").fetchone() == (1600, 1600)
    assert con.execute("SELECT count(DISTINCT session) FROM votes").fetchone()[0] == 8
    con.close()
    assert VoteStore(path).scores()[A].evaluators == 8


def test_export_csv_from_the_command_line(tmp_path, capsys):
    store = VoteStore(tmp_path / "votes.sqlite3")
    hand_votes(store)
    env = {**os.environ, "GENMODELS_VOTES": str(store.path), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "genmodels.votes", "export", "--csv"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == len(HAND) + 3 and list(rows[0]) == list(votes.COLUMNS)
    assert rows[0]["session"] == "s1-session" and rows[0]["truth"] == "fake" and rows[0]["seed"] == "0"
    assert rows[2]["real_index"] == "2" and rows[2]["seed"] == ""
    assert store.csv_text() == done.stdout

    bad = tmp_path / "damaged.sqlite3"
    bad.write_bytes(b"not a database " * 200)
    assert votes.main(["export", "--csv", "--db", str(bad)]) == 1
    assert "is not a votes database, or it is damaged" in capsys.readouterr().err
    assert votes.main(["export", "--csv", "--db", str(tmp_path / "none.sqlite3"), "--out", str(tmp_path / "v.csv")]) == 0
    assert (tmp_path / "v.csv").read_text() == ",".join(votes.COLUMNS) + "\n"
    assert "no votes database at" in capsys.readouterr().err


# ---- faults ---------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def read_only(path: Path):
    """Make `path` read-only for this process: its mode bits for a user, the immutable flag for root (root writes
    through mode bits). Skips where neither holds."""
    path.chmod(0o444)
    immutable = os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    try:
        try:
            with open(path, "r+b"):
                pytest.skip("cannot make a file read-only for this process here (root without chattr)")
        except PermissionError:
            pass
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def test_a_read_only_database_refuses_writes_in_words_and_still_reads(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3")
    hand_votes(store)
    before = store.path.read_bytes()
    with read_only(store.path):
        assert "is read-only" in store.problem()
        with pytest.raises(VotesUnavailable, match="is read-only"):
            store.record(vote("s9-session", A, "fake", "real"))
        assert store.scores()[A].value == 3 / 8, "the votes already there are still read"
    assert store.path.read_bytes() == before
    assert store.record(vote("s9-session", A, "fake", "real")), "writable again, it takes votes again"


@pytest.mark.parametrize("content, words", [
    (b"not a database at all " * 100, "is not a votes database, or it is damaged; it was left as it is"),
    (b"SQLite format 3\0" + bytes(range(256)) * 16, "it was left as it is"),
])
def test_a_damaged_file_is_refused_and_left_as_it_is(tmp_path, content, words):
    path = tmp_path / "votes.sqlite3"
    path.write_bytes(content)
    store = VoteStore(path)
    assert words in store.problem()
    for attempt in (lambda: store.record(vote("s1-session", A, "fake", "real")), store.scores, store.count):
        with pytest.raises(VotesUnavailable, match="left as it is"):
            attempt()
    assert path.read_bytes() == content and sorted(os.listdir(tmp_path)) == ["votes.sqlite3"]


def test_someone_elses_database_and_a_newer_schema_are_left_alone(tmp_path):
    other = tmp_path / "other.sqlite3"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE accounts (name TEXT)")
    con.commit()
    con.close()
    newer = tmp_path / "newer.sqlite3"
    VoteStore(newer).record(vote("s1-session", A, "fake", "real"))
    con = sqlite3.connect(newer)
    con.execute(f"PRAGMA user_version = {SCHEMA + 1}")
    con.commit()
    con.close()
    for path, words in ((other, "is an SQLite database of something else (tables: accounts)"),
                        (newer, f"has schema {SCHEMA + 1}, made by a newer genmodels")):
        before = path.read_bytes()
        assert words in VoteStore(path).problem()
        with pytest.raises(VotesUnavailable, match="left as it is"):
            VoteStore(path).record(vote("s1-session", A, "fake", "real"))
        assert path.read_bytes() == before


def test_a_configured_place_whose_folder_is_missing_is_reported_not_created(tmp_path, monkeypatch):
    monkeypatch.setenv("GENMODELS_VOTES", str(tmp_path / "volume" / "votes.sqlite3"))
    store = VoteStore.from_env()
    assert "the folder" in store.problem() and "does not exist" in store.problem()
    assert store.scores() == {} and store.count() == 0, "reading a database that is not there: no votes"
    assert not (tmp_path / "volume").exists()
    monkeypatch.delenv("GENMODELS_VOTES")
    assert VoteStore.from_env().path == votes.DEFAULT_PATH and VoteStore.from_env().make_folder


FULL_DISK = """
import os, sys
from genmodels.votes import Vote, VoteStore, VotesUnavailable
folder = sys.argv[1]
store = VoteStore(os.path.join(folder, "votes.sqlite3"))
first = Vote("s1-session", "mnist", "mnist/dcgan", "a" * 64, "fake", "real", 1, None, 900)
assert store.record(first)
fill(folder)
second = Vote("s1-session", "mnist", "mnist/dcgan", "a" * 64, "real", "real", None, 2, 900)
try:
    store.record(second)
    print("stored on a full disk")
except VotesUnavailable as e:
    print("refused:", e)
make_room(folder)
print("retried:", store.record(second), store.count())
"""


# What every full-disk script can call: fill(folder) writes a file until the disk is full, make_room(folder) deletes it.
FILL = """
import os
def fill(folder):
    filler = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(filler, bytes(65536))
    except OSError:  # no space left on the device
        os.close(filler)
def make_room(folder):
    os.unlink(os.path.join(folder, "filler"))
"""


def on_a_full_disk(script: str, *args: str, size_kb: int = 512) -> subprocess.CompletedProcess:
    """Run a Python script (after FILL) on a real, tiny filesystem (a tmpfs mounted in a user and mount namespace of
    its own), whose folder is the script's first argument. Skips where this machine does not allow the namespaces."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("user namespaces are not available here: no tmpfs to fill")
    folder = Path(args[0])
    folder.mkdir(parents=True, exist_ok=True)
    command = f"mount -t tmpfs -o size={size_kb}k tmpfs {folder} && exec {sys.executable} -c \"$0\" \"$@\""
    return subprocess.run(["unshare", "-rm", "sh", "-c", command, FILL + script, *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_full_disk_gets_words_and_the_vote_is_stored_once_there_is_room(tmp_path):
    done = on_a_full_disk(FULL_DISK, str(tmp_path / "disk"))
    assert done.returncode == 0, done.stderr
    assert "refused: the disk holding the votes database" in done.stdout and "is full: free some space" in done.stdout
    assert "retried: True 2" in done.stdout, done.stdout


def test_a_writer_waits_its_turn_and_says_so_in_words_when_it_waits_too_long(tmp_path, monkeypatch):
    store = VoteStore(tmp_path / "votes.sqlite3")
    store.record(vote("s1-session", A, "fake", "real"))
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    monkeypatch.setattr(votes, "BUSY_SECONDS", 0.3)
    with pytest.raises(VotesUnavailable, match=r"stayed locked by other writers for more than 0.3 s") as waited:
        store.record(vote("s2-session", A, "fake", "real"))
    assert waited.value.busy
    threading.Timer(0.2, other.execute, ["COMMIT"]).start()  # let go while the next vote waits
    monkeypatch.setattr(votes, "BUSY_SECONDS", 5.0)
    assert store.record(vote("s3-session", A, "fake", "real")) and store.count() == 2
    other.close()
