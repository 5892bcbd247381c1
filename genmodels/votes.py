"""People's votes on "Real or fake?" and the human score they give each model: HYPE∞ (Zhou et al., NeurIPS 2019).

A vote is one person's answer ("real" or "fake") to one image: a held-out real image (by its index in the dataset's
test split) or a generated one (by its seed in the checkpoint's fixed pool, `pool_image`). Votes are keyed by the
weights' content hash (config.json's weights_sha256), so a checkpoint retrained later never shares the old one's votes.

Storage is one SQLite file (the standard library's sqlite3): WAL mode, so readers never wait for a writer; a versioned
schema (PRAGMA user_version) brought up to date by MIGRATIONS; CHECK constraints that refuse a malformed vote in words
(they name the rule broken); one short connection per operation, so any number of processes can write at once, each
waiting its turn for up to BUSY_SECONDS. Its place is $GENMODELS_VOTES, else runs/votes.sqlite3. Nothing here ever
replaces, truncates or deletes an existing file: a file that is not a votes database is refused and left as it is.
docs/votes.md says how several replicas would share a server database instead.

`python -m genmodels.votes export --csv` writes the raw votes.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import random
import re
import shutil
import sqlite3
import sys
import time
import uuid
from dataclasses import astuple, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence, TextIO

import numpy as np
import torch

from .sampling import sample

VOTES_ENV = "GENMODELS_VOTES"
DEFAULT_PATH = Path("runs") / "votes.sqlite3"
POOL_SIZE = 1000              # a checkpoint's generated images are seeds 0 .. POOL_SIZE - 1 (see pool_image)
ROUND = 20                    # images in a round: ROUND // 2 generated, as many real
BUSY_SECONDS = 10.0           # how long a write waits for other writers before it gives up (and the page retries)
RESAMPLES = 2000              # bootstrap resamples of the evaluators for the 95% interval
FULL_DISK = 2**20             # bytes free below which a failed write is put down to a full disk
APPLICATION_ID = 0x676D7674   # "gmvt" in the file's header: this SQLite file is a genmodels votes database
ANSWERS = ("real", "fake")

# MIGRATIONS[n] takes the database from schema n to n + 1; the schema's version is len(MIGRATIONS). The constraint
# names are the words a refused vote is answered with (the first word names the column).
MIGRATIONS: list[tuple[str, ...]] = [
    ("""CREATE TABLE votes (
        id           INTEGER PRIMARY KEY,
        vote_id      TEXT NOT NULL UNIQUE
                     CONSTRAINT "vote_id must be 32 lowercase hex digits"
                     CHECK (length(vote_id) = 32 AND vote_id NOT GLOB '*[^0-9a-f]*'),
        time         TEXT NOT NULL
                     CONSTRAINT "time must be an ISO 8601 UTC time such as 2026-01-31T12:00:00.000Z"
                     CHECK (time GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]*Z'),
        session      TEXT NOT NULL
                     CONSTRAINT "session must be 8 to 64 letters, digits, - or _"
                     CHECK (length(session) BETWEEN 8 AND 64 AND session NOT GLOB '*[^0-9A-Za-z_-]*'),
        dataset      TEXT NOT NULL
                     CONSTRAINT "dataset must be a name of 1 to 200 characters"
                     CHECK (length(dataset) BETWEEN 1 AND 200),
        model_key    TEXT NOT NULL
                     CONSTRAINT "model_key must be a name of 1 to 300 characters"
                     CHECK (length(model_key) BETWEEN 1 AND 300),
        model_sha256 TEXT NOT NULL
                     CONSTRAINT "model_sha256 must be 64 lowercase hex digits (config.json's weights_sha256)"
                     CHECK (length(model_sha256) = 64 AND model_sha256 NOT GLOB '*[^0-9a-f]*'),
        truth        TEXT NOT NULL
                     CONSTRAINT "truth must be 'real' or 'fake'" CHECK (truth IN ('real', 'fake')),
        answer       TEXT NOT NULL
                     CONSTRAINT "answer must be 'real' or 'fake'" CHECK (answer IN ('real', 'fake')),
        seed         INTEGER CONSTRAINT "seed must be 0 or more" CHECK (seed >= 0),
        real_index   INTEGER CONSTRAINT "real_index must be 0 or more" CHECK (real_index >= 0),
        response_ms  INTEGER NOT NULL CONSTRAINT "response_ms must be 0 or more" CHECK (response_ms >= 0),
        CONSTRAINT "truth 'fake' goes with a seed and no real_index, truth 'real' with a real_index and no seed"
        CHECK ((truth = 'fake' AND seed IS NOT NULL AND real_index IS NULL)
               OR (truth = 'real' AND real_index IS NOT NULL AND seed IS NULL))
    ) STRICT""",
     "CREATE INDEX votes_by_model ON votes (model_sha256, session)"),
]
SCHEMA = len(MIGRATIONS)


class VotesUnavailable(RuntimeError):
    """The votes database cannot be used now; the message says why, in words. `busy`: other writers held it."""

    def __init__(self, message: str, busy: bool = False):
        super().__init__(message)
        self.busy = busy


class VoteRefused(ValueError):
    """A vote that does not fit the schema; the message names the rule it breaks."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Trial:
    """One image of a round. Real images are paired with a model too, so that each model's trials are half real and
    half its own, the balanced design HYPE∞ is defined on."""
    model_key: str
    model_sha256: str
    truth: str                  # "real" or "fake"
    seed: int | None = None     # the generated image's seed in the checkpoint's pool
    real_index: int | None = None  # the real image's index in the dataset's test split


@dataclass(frozen=True)
class Vote:
    """One answer, as stored: the columns of the votes table, in order."""
    session: str                # a random id for one browser session: no IP address, no cookie
    dataset: str
    model_key: str
    model_sha256: str
    truth: str
    answer: str
    seed: int | None
    real_index: int | None
    response_ms: int
    vote_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # a retried write stores it once
    time: str = field(default_factory=now)

    @classmethod
    def of(cls, trial: Trial, session: str, dataset: str, answer: str, response_ms: int) -> Vote:
        return cls(session, dataset, trial.model_key, trial.model_sha256, trial.truth, answer, trial.seed,
                   trial.real_index, response_ms)


COLUMNS = tuple(f.name for f in fields(Vote))


def plan_round(models: Sequence[tuple[str, str]], heldout_size: int, rng: random.Random, length: int = ROUND) -> list[Trial]:
    """`length` trials in random order: length // 2 pairs, each one generated image of a model and one real image
    paired with it. The models (key, content hash) take turns in a shuffled order, so none gets more than one pair
    more than another; seeds come from the pool, real indices from the test split, none twice in a round."""
    if not models:
        raise ValueError("a round needs at least one model")
    pairs = length // 2
    if heldout_size < pairs:
        raise ValueError(f"a round needs {pairs} held-out images; the test split has {heldout_size}")
    order = rng.sample(list(models), len(models))
    owners = [order[i % len(order)] for i in range(pairs)]
    seeds, reals = rng.sample(range(POOL_SIZE), pairs), rng.sample(range(heldout_size), pairs)
    trials = [Trial(key, sha, "fake", seed=s) for (key, sha), s in zip(owners, seeds)]
    trials += [Trial(key, sha, "real", real_index=i) for (key, sha), i in zip(owners, reals)]
    rng.shuffle(trials)
    return trials


def pool_image(model, seed: int) -> torch.Tensor:
    """The checkpoint's generated image number `seed` of its pool, [1, C, H, W] in [-1, 1]: the code z drawn with
    that seed and, for a conditional model, the class seed % num_classes. Anyone with the export can redraw it."""
    if not 0 <= seed < POOL_SIZE:
        raise ValueError(f"seed must be in 0 .. {POOL_SIZE - 1}, got {seed}")
    return sample(model, 1, seed=seed, labels=[seed % model.num_classes] if model.num_classes else None)


# ---- the score --------------------------------------------------------------------------------------------------

def hype_infinity(errors: Sequence[int], answers: Sequence[int], resamples: int = RESAMPLES,
                  seed: int = 0) -> tuple[float, float | None, float | None]:
    """HYPE∞ (Zhou et al. 2019, Sec. 3.2) and its 95% bootstrap interval, from per-evaluator counts.

    HYPE∞ is the error rate over all answers: (generated judged real + real judged generated) / all answers, 50%
    when people cannot tell the model from real data. The interval resamples evaluators with replacement (their
    answers are not independent of one another) and takes the 2.5th and 97.5th percentiles; it needs at least two
    evaluators (None otherwise). A fixed seed keeps the interval the same from one page view to the next."""
    e, n = np.asarray(errors, dtype=np.int64), np.asarray(answers, dtype=np.int64)
    value = float(e.sum() / n.sum())
    if len(e) < 2:
        return value, None, None
    rng = np.random.default_rng(seed)
    estimates = []
    for start in range(0, resamples, 200):  # 200 resamples at a time: memory stays small with many evaluators
        pick = rng.integers(0, len(e), size=(min(200, resamples - start), len(e)))
        estimates.append(e[pick].sum(1) / n[pick].sum(1))
    low, high = np.percentile(np.concatenate(estimates), [2.5, 97.5])
    return value, float(low), float(high)


@dataclass(frozen=True)
class Score:
    """A model's HYPE∞ with the counts behind it."""
    model_sha256: str
    model_keys: tuple[str, ...]     # the names it was voted under
    fakes: int                      # its generated images judged
    fakes_judged_real: int
    reals: int                      # real images judged in its trials
    reals_judged_fake: int
    evaluators: int
    value: float
    low: float | None               # 95% bootstrap interval; None with a single evaluator
    high: float | None

    @property
    def answers(self) -> int:
        return self.fakes + self.reals

    @property
    def interval(self) -> str:
        if self.low is None:
            return "interval needs 2+ people"
        return f"95% CI {100 * self.low:.1f}–{100 * self.high:.1f}%"

    def text(self) -> str:
        """HYPE∞ as a person reads it: '41.2% (95% CI 29.0–53.1%) · n = 68'."""
        return f"{100 * self.value:.1f}% ({self.interval}) · n = {self.answers}"


# ---- the store --------------------------------------------------------------------------------------------------

def votes_path() -> tuple[Path, bool]:
    """(where the votes live, whether that is the default): $GENMODELS_VOTES, else runs/votes.sqlite3."""
    configured = os.environ.get(VOTES_ENV)
    return (Path(configured), False) if configured else (DEFAULT_PATH, True)


class VoteStore:
    """The votes database at `path`. The file is created on the first write; its folder is created only when
    `make_folder` (the default place under runs/): a configured place whose folder is missing (a volume not mounted)
    is reported, never replaced by a fresh database somewhere else."""

    def __init__(self, path: str | Path, make_folder: bool = False):
        self.path, self.make_folder = Path(path), make_folder

    @classmethod
    def from_env(cls) -> VoteStore:
        path, default = votes_path()
        return cls(path, make_folder=default)

    # -- connections --

    def unavailable(self, e: sqlite3.Error) -> VotesUnavailable:
        """What went wrong, in words, with SQLite's own message."""
        code = (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF  # the primary result code
        where = f"the votes database {self.path}"
        # A full disk reaches SQLite as "disk I/O error" when it cannot even create the -wal or -shm file.
        with contextlib.suppress(OSError):
            if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR) and shutil.disk_usage(self.path.parent).free < FULL_DISK:
                code = sqlite3.SQLITE_FULL
        words = {
            sqlite3.SQLITE_FULL: f"the disk holding {where} is full: free some space",
            sqlite3.SQLITE_READONLY: f"{where} is read-only",
            sqlite3.SQLITE_BUSY: f"{where} stayed locked by other writers for more than {BUSY_SECONDS:g} s",
            sqlite3.SQLITE_LOCKED: f"{where} stayed locked by other writers for more than {BUSY_SECONDS:g} s",
            sqlite3.SQLITE_NOTADB: f"{where} is not a votes database, or it is damaged; it was left as it is",
            sqlite3.SQLITE_CORRUPT: f"{where} is damaged; it was left as it is",
            sqlite3.SQLITE_CANTOPEN: f"{where} cannot be opened",
            sqlite3.SQLITE_IOERR: f"{where} could not be read or written (is the disk full or failing?)",
            sqlite3.SQLITE_PERM: f"{where} may not be written by this process",
        }
        return VotesUnavailable(f"{words.get(code, where + ' cannot be used')} (SQLite: {e})",
                                busy=code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))

    @contextlib.contextmanager
    def connect(self, write: bool) -> Iterator[sqlite3.Connection | None]:
        """A connection for one operation, closed after. Writing creates and migrates the database; reading never
        writes, and gets None while no votes table exists yet."""
        if not write and not self.path.exists():
            yield None
            return
        if write and not self.path.parent.is_dir():
            if not self.make_folder:
                raise VotesUnavailable(self.missing_folder())
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():
            raise VotesUnavailable(f"the votes database {self.path} is not a file")
        # Reading opens read-write too ("rw" never creates; a read-only file opens read-only): SQLite deletes the
        # -wal and -shm files when the last connection closes, which a read-only connection cannot do.
        uri = f"file:{self.path.resolve()}?mode={'rwc' if write else 'rw'}"
        try:
            con = sqlite3.connect(uri, uri=True, timeout=BUSY_SECONDS, isolation_level=None)
        except sqlite3.Error as e:
            raise self.unavailable(e) from None
        try:
            # WAL's recommended setting: a stored vote survives any process crash and the file is never damaged;
            # only a power cut can undo the last commits before a checkpoint. FULL costs an fsync a vote
            # (9 ms against 1.4 ms here), and 8 processes x 200 votes took 11.6 s instead of 2.7 s.
            con.execute("PRAGMA synchronous = NORMAL")
            if write:
                self.migrate(con)
                yield con
            else:
                version = self.version(con)
                if 0 < version < SCHEMA:
                    raise VotesUnavailable(f"the votes database {self.path} holds schema {version}; the Real or "
                                           f"fake page brings it to {SCHEMA} when it can write the file")
                yield con if version else None
        except sqlite3.Error as e:
            raise self.unavailable(e) from None
        finally:
            con.close()

    def missing_folder(self) -> str:
        return f"the folder {self.path.parent} of the votes database does not exist (set {VOTES_ENV} to a file in a " \
               "folder that does)"

    def version(self, con: sqlite3.Connection) -> int:
        """The schema version, after checking the file is ours (or an empty one) and not from a newer genmodels.
        One statement reads all three, so another process's migration is seen whole or not at all."""
        version, app, names = con.execute(
            "SELECT (SELECT user_version FROM pragma_user_version), (SELECT application_id FROM pragma_application_id), "
            "(SELECT group_concat(name, ', ') FROM sqlite_master WHERE type = 'table')").fetchone()
        tables = names.split(", ") if names else []
        if app != APPLICATION_ID and (app or version or tables):
            raise VotesUnavailable(f"{self.path} is an SQLite database of something else (tables: "
                                   f"{', '.join(tables) or 'none'}), not a votes database; it was left as it is")
        if version > SCHEMA:
            raise VotesUnavailable(f"the votes database {self.path} has schema {version}, made by a newer genmodels "
                                   f"(this one knows up to {SCHEMA}); it was left as it is")
        return version

    def migrate(self, con: sqlite3.Connection) -> None:
        """Bring the schema up to date inside one write transaction (so concurrent openers migrate exactly once),
        then switch the file to WAL, which persists in the file. An up-to-date file costs one read."""
        if self.version(con) == SCHEMA:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            version = self.version(con)
            for step in MIGRATIONS[version:]:
                for statement in step:
                    con.execute(statement)
            if version < SCHEMA:
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute(f"PRAGMA user_version = {SCHEMA}")
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:  # SQLite may have rolled back already (a full disk at COMMIT)
                con.execute("ROLLBACK")
            raise
        con.execute("PRAGMA journal_mode = WAL")

    # -- operations --

    def problem(self) -> str | None:
        """Why votes cannot be recorded now, in words; None when they can. Creates nothing: with no database yet,
        only its folder is checked (the first vote creates the file). Otherwise writes the file's header inside a
        transaction it rolls back: in WAL mode the lock alone succeeds on a read-only file (the lock lives in the
        -wal and -shm files beside it)."""
        if not self.path.exists():
            return None if self.make_folder or self.path.parent.is_dir() else self.missing_folder()
        try:
            with self.connect(write=True) as con:
                con.execute("BEGIN IMMEDIATE")
                try:
                    con.execute(f"PRAGMA user_version = {SCHEMA}")
                finally:
                    con.execute("ROLLBACK")
        except VotesUnavailable as e:
            return str(e)
        return None

    def record(self, vote: Vote) -> bool:
        """Store one vote; False when a vote with its vote_id is already stored (a retry). Raises VoteRefused for a
        vote that does not fit the schema, VotesUnavailable when the database cannot take it now.

        A write that finds the database busy is tried again until BUSY_SECONDS have passed: SQLite's own wait does
        not cover every moment (8 processes once met "database is locked" at once while others opened, checkpointed
        and closed the file), and vote_id makes a retry safe."""
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                return self.insert(vote)
            except VotesUnavailable as e:
                if not e.busy or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.005, 0.05))  # apart from the other waiting writers

    def insert(self, vote: Vote) -> bool:
        with self.connect(write=True) as con:
            try:
                cursor = con.execute(f"INSERT INTO votes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
                                     "ON CONFLICT (vote_id) DO NOTHING", astuple(vote))
            except sqlite3.IntegrityError as e:
                raise VoteRefused(refusal(vote, str(e))) from None
            except (sqlite3.InterfaceError, sqlite3.ProgrammingError, OverflowError) as e:
                raise VoteRefused(f"vote refused: a value has a type the votes table cannot hold ({e})") from None
            return cursor.rowcount == 1

    def count(self) -> int:
        with self.connect(write=False) as con:
            return 0 if con is None else con.execute("SELECT count(*) FROM votes").fetchone()[0]

    def export_csv(self, out: TextIO) -> int:
        """Every vote as CSV (a header, then one row a vote, oldest first); returns the number of votes."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        with self.connect(write=False) as con:
            if con is None:
                return 0
            n = 0
            for row in con.execute(f"SELECT {', '.join(COLUMNS)} FROM votes ORDER BY id"):
                writer.writerow(row)
                n += 1
            return n

    def csv_text(self) -> str:
        buf = io.StringIO()
        self.export_csv(buf)
        return buf.getvalue()

    def scores(self) -> dict[str, Score]:
        """Every voted model's HYPE∞ by content hash. A model's evaluators are the sessions that judged its trials;
        its answers are their answers on its generated images and on the real images paired with it."""
        with self.connect(write=False) as con:
            if con is None:
                return {}
            rows = con.execute(
                "SELECT model_sha256, group_concat(DISTINCT model_key), "
                "sum(truth = 'fake'), sum(truth = 'fake' AND answer = 'real'), "
                "sum(truth = 'real'), sum(truth = 'real' AND answer = 'fake') "
                "FROM votes GROUP BY model_sha256, session ORDER BY model_sha256, session").fetchall()
        by_model: dict[str, list[tuple]] = {}
        for sha, keys, *counts in rows:
            by_model.setdefault(sha, []).append((set(keys.split(",")), *counts))
        return {sha: score(sha, evaluators) for sha, evaluators in by_model.items()}


def score(sha: str, evaluators: list[tuple]) -> Score:
    """One model's Score from (model keys, fakes, fakes judged real, reals, reals judged fake) per evaluator."""
    keys = sorted(set().union(*(e[0] for e in evaluators)))
    fakes, fooled, reals, doubted = (sum(e[i] for e in evaluators) for i in range(1, 5))
    value, low, high = hype_infinity([e[2] + e[4] for e in evaluators], [e[1] + e[3] for e in evaluators])
    return Score(sha, tuple(keys), fakes, fooled, reals, doubted, len(evaluators), value, low, high)


def refusal(vote: Vote, message: str) -> str:
    """SQLite's "CHECK constraint failed: truth must be ..." as words, with the values of the columns it names."""
    rule = message.split(": ", 1)[-1]
    if message.startswith("NOT NULL"):  # "NOT NULL constraint failed: votes.seed"
        rule = f"{rule.removeprefix('votes.')} must be given"
    named = [c for c in COLUMNS if re.search(rf"\b{c}\b", rule)]
    got = f" (got {', '.join(f'{c} = {getattr(vote, c)!r}' for c in named)})" if named else ""
    return f"vote refused: {rule}{got}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genmodels.votes", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write every vote, oldest first")
    export.add_argument("--csv", action="store_true", required=True, help="as CSV (the one format so far)")
    export.add_argument("--db", type=Path, default=None, help=f"the votes database (default: ${VOTES_ENV}, else "
                                                              f"{DEFAULT_PATH})")
    export.add_argument("--out", type=Path, default=None, help="a file to write (default: standard output)")
    args = parser.parse_args(argv)
    store = VoteStore(args.db) if args.db else VoteStore.from_env()
    try:
        text = store.csv_text()
    except VotesUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not store.path.exists():
        print(f"no votes database at {store.path} yet: no votes", file=sys.stderr)
    if args.out:
        try:
            args.out.write_text(text)
        except OSError as e:
            print(f"error: cannot write {args.out}: {e.strerror}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
