"""Training runs that visitors of the app start, watch, stop and resume.

Each run is `python -m train` in a subprocess (and, to measure it, `python -m genmodels.evaluate`), so the app's
process never imports the trainer: this module knows only the command lines. At most `slots` processes go at once; the others
wait their turn in a queue while their visitor's page keeps asking after them. Visitors' uploads become image sets
(genmodels.image_sets) in the runs root too. The root is kept under a size cap by removing the image sets no run
uses, then idle runs, those of the oldest visitors first.

Everything a visitor sends is clamped or refused here, on the server (`clamp`): the budget, the thread count,
the settings (numbers only, from a short list of keys, each within bounds), the dataset (a named source, or
`upload:DIGEST` for an image set made here; never `folder:PATH`), the image size of an upload and the device. Run
folders and image set folders are always named here, never taken from a request.

State lives on disk, so every server process and every session sees the same runs:
  ROOT/.lock        held (flock) around every change
  ROOT/ID/run.json  the run's record: id, owner, created, request (as clamped), job (what it waits for or does:
                    {"kind": train | resume | measure, "state": queued | running, "queued_at", "seen", "pid",
                    "started_at", "log_from", "stop_at"} or null), outcome (null | finished | stopped | failed),
                    message (the trainer's own words when it failed), measured, measure_error (the evaluator's)
  ROOT/ID/log.txt   what the processes printed
  ROOT/ID/outcome.json  how the trainer's last process ended, in its own words (train/outcome.py)
  ROOT/ID/checkpoint/, resume/, live/, samples/, best/   the trainer's (train/trainer.py, train/live.py)
  ROOT/datasets/DIGEST/  an image set made from an upload (genmodels/image_sets.py); its mtime is its last use
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from genmodels import checkpoint as ckpt
from genmodels import image_sets
from genmodels.data import FOLDER_HELD_OUT, heldout_split
from genmodels.device import devices
from genmodels.registry import family_names, get_family

from . import live
from .command import invocation, train_arguments
from .config import config_file
from .outcome import FINISHED, INTERRUPTED, clear_outcome, read_outcome

ROOT_ENV, SLOTS_ENV, CAP_ENV = "GENMODELS_RUNS", "GENMODELS_TRAIN_SLOTS", "GENMODELS_RUNS_CAP_MB"
DEFAULT_ROOT, DEFAULT_SLOTS, DEFAULT_CAP_MB = "runs/app", 1, 2000
# Named sources only (`folder:PATH` would open the file system); not the MNIST subset, which is for tests and is
# slower to read than all of MNIST.
DATASETS = ("mnist", "fashion-mnist", "cifar10")
SETS = "datasets"           # ROOT/datasets/DIGEST: the image sets made from visitors' uploads
UPLOAD = re.compile(r"upload:([0-9a-f]{16})")  # a request's name for one of them; never a path
SET_GRACE = 15 * 60         # seconds an unused image set is kept from removal after its last use: its visitor may be
                            # choosing settings
# Inception FID of an upload's runs, against its held-out images: on a CPU it measures about 26 images a second, so a
# run measures 64 samples (a trend to watch, not a number to set beside published FIDs, which take 10,000), and a small
# upload's epochs are grouped so that at least FID_EVERY_IMAGES training images pass between two measurements.
FID_SAMPLES = 64
FID_EVERY_IMAGES = 5_000
BUDGETS = {"steps": (1, 20_000), "seconds": (5, 30 * 60)}      # kind: (least, most); nothing runs longer
DEFAULT_BUDGET = ("seconds", 60)                               # shows digits forming on a 2-core CPU
LIVE_EVERY = 2.0            # seconds between the trainer's progress lines and grids (train.live_every)
CHECKPOINT_MINUTES = 0.25   # a stopped run keeps everything but its last 15 s at most (train.checkpoint_minutes)
QUEUE_TIMEOUT = 60.0        # seconds a waiting run stays queued without its visitor's page asking after it
STOP_GRACE = 20.0           # seconds between the polite stop (SIGINT) and SIGKILL
MEASURE_ARGS = ("--n", "500", "--n-projection", "50", "--only", "ssim,mse,nn_distance,classifier_fid,conditional_accuracy")
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
RECORD, LOG, LOCK = "run.json", "log.txt", ".lock"


class RunRequestError(ValueError):
    """A request the server refuses; the message says what to change."""


@dataclass(frozen=True)
class Setting:
    key: str        # SECTION.KEY for `python -m train --set`
    label: str      # what the page calls it
    least: float
    most: float
    integer: bool


SETTINGS = {s.key: s for s in (
    Setting("train.lr", "learning rate", 1e-6, 0.1, False),
    Setting("model.latent_dim", "z size", 2, 512, True),
    Setting("model.width", "width", 4, 256, True),
)}


def default_threads() -> int:
    """All cores but one, which stays with the app's server (and, locally, the browser): measured on a 2-core CPU
    shared with other jobs, a DCGAN trained at 200-240 img/s on one thread and at 15-17 img/s on two, whose
    threads kept waiting for each other while the other work held a core."""
    return max(1, (os.cpu_count() or 1) - 1)


def settings_for(family: str) -> list[Setting]:
    """The settings a family's config has (the MLP GAN has layer widths, not one `width`)."""
    fields = {f.name for f in dataclasses.fields(get_family(family).config_cls)}
    return [s for s in SETTINGS.values() if not s.key.startswith("model.") or s.key.split(".", 1)[1] in fields]


@dataclass(frozen=True)
class Request:
    dataset: str
    family: str
    budget: str = DEFAULT_BUDGET[0]                 # steps | seconds
    amount: float = DEFAULT_BUDGET[1]
    settings: dict = field(default_factory=dict)   # SECTION.KEY -> number; absent keys keep the recipe's value
    threads: int = field(default_factory=default_threads)
    device: str = "cpu"
    image_size: int = 0                            # an upload's: one of image_sets.SIZES (0: a named source's own)


def number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RunRequestError(f"{what} must be a number, got {value!r}")
    try:
        x = float(value)
    except ValueError:
        raise RunRequestError(f"{what} must be a number, got {value!r}") from None
    except OverflowError:  # an int past float's range (about 1.8e308); its repr could run to thousands of digits
        digits = int(abs(value).bit_length() * math.log10(2)) + 1
        raise RunRequestError(f"{what} must be a number of a usable size, got an integer of about {digits} digits") \
            from None
    if math.isnan(x):
        raise RunRequestError(f"{what} must be a number, got {value!r}")
    return x


def bounded(x: float, least: float, most: float, what: str, notes: list[str]) -> float:
    if least <= x <= most:
        return x
    y = min(max(x, least), most)
    notes.append(f"{what} {x:g} is outside the {least:g} to {most:g} allowed here: using {y:g}")
    return y


def clamp(request: Request) -> tuple[Request, list[str]]:
    """The request as the server will run it, and a note for each value it moved into bounds; RunRequestError
    for what no bound can fix (an unknown dataset, family, key or device, or a value that is not a number)."""
    notes: list[str] = []
    upload = isinstance(request.dataset, str) and UPLOAD.fullmatch(request.dataset)
    if not upload and request.dataset not in DATASETS:
        raise RunRequestError(f"dataset must be one of {', '.join(DATASETS)} or an uploaded image set, got "
                              f"{request.dataset!r}")
    if request.family not in family_names():
        raise RunRequestError(f"model family must be one of {', '.join(family_names())}, got {request.family!r}")
    if upload:
        if request.image_size not in image_sets.SIZES:
            raise RunRequestError(f"the image size of an upload must be one of {', '.join(map(str, image_sets.SIZES))} "
                                  f"px, got {request.image_size!r}")
        if request.family not in upload_families(num_classes=2):
            raise RunRequestError(f"{get_family(request.family).title} has no recipe for uploaded images; these have: "
                                  f"{', '.join(upload_families(num_classes=2))}")
    elif request.image_size:
        raise RunRequestError(f"{request.dataset} trains at its own image size; a size is chosen for uploads only")
    if request.budget not in BUDGETS:
        raise RunRequestError(f"the budget is counted in {' or '.join(BUDGETS)}, not {request.budget!r}")
    least, most = BUDGETS[request.budget]
    amount = bounded(number(request.amount, request.budget), least, most, request.budget, notes)
    amount = round(amount) if request.budget == "steps" else round(amount, 1)
    allowed = {s.key: s for s in settings_for(request.family)}
    if not isinstance(request.settings, dict):
        raise RunRequestError(f"settings must be a table of SECTION.KEY = number, got {request.settings!r}")
    settings = {}
    for key, value in request.settings.items():
        if key not in allowed:
            raise RunRequestError(f"{key!r} is not a setting of {request.family} here; these are: "
                                  f"{', '.join(allowed)}")
        s = allowed[key]
        x = bounded(number(value, s.label), s.least, s.most, s.label, notes)
        settings[key] = int(round(x)) if s.integer else x
    cores = os.cpu_count() or 1
    threads = int(bounded(number(request.threads, "threads"), 1, cores, "threads", notes))
    if request.device not in devices():
        raise RunRequestError(f"device must be one of {', '.join(devices())}, got {request.device!r}")
    return dataclasses.replace(request, amount=amount, settings=settings, threads=threads), notes


def upload_families(num_classes: int) -> list[str]:
    """The families an upload can train: those with an image-folder recipe (train/configs/folder/), the conditional
    ones only where the upload has two classes or more."""
    return [f for f in family_names() if config_file("folder:", f).is_file()
            and (num_classes >= 2 or not get_family(f).conditional)]


def upload_fid(images: int) -> list[str]:
    """The --set overrides of an upload's per-epoch Inception FID against its held-out images, for a set of `images`;
    none where it holds out fewer than the two images a covariance needs."""
    train, held = (len(part) for part in heldout_split(images, FOLDER_HELD_OUT))
    if held < 2:
        return []
    return [f"train.fid_every={math.ceil(FID_EVERY_IMAGES / max(1, train))}", 'train.fid_features="inception"',
            f"train.fid_samples={FID_SAMPLES}"]


def train_args(run: Run, resume: bool = False) -> list[str]:
    """The interpreter's arguments that train a run (train/command.py builds the command line)."""
    r = run.request
    steps, seconds = (r["amount"], 0) if r["budget"] == "steps" else (0, r["amount"])
    sets = [f"train.epochs={1_000_000}",  # the budget ends the run, not the recipe's epoch count
            f"train.max_steps={steps}", f"train.max_seconds={seconds}", f"train.threads={r['threads']}",
            f"train.live_every={LIVE_EVERY}", f"train.checkpoint_minutes={CHECKPOINT_MINUTES}",
            *(f"{k}={v!r}" for k, v in r["settings"].items())]
    dataset = r["dataset"]
    if run.image_set is not None:
        dataset = run.image_set.dataset
        sets += [f"model.image_size={r['image_size']}", *upload_fid(run.image_set.report.used)]
    return invocation(train_arguments(dataset, r["family"], out=run.folder, device=r["device"], overrides=sets,
                                      resume=resume))


# ---- a run, as read from its folder ----------------------------------------------------------------------------


@dataclass
class Run:
    folder: Path
    record: dict

    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def owner(self) -> str:
        return self.record["owner"]

    @property
    def request(self) -> dict:
        return self.record["request"]

    @property
    def job(self) -> dict | None:
        return self.record.get("job")

    @property
    def status(self) -> str:
        """queued | running | stopping | measuring | finished | stopped | failed | new (never trained to an end)."""
        job = self.job
        if job is None:
            return self.record.get("outcome") or "new"
        if job["state"] == "queued":
            return "queued"
        if job.get("stop_at"):
            return "stopping"
        return "measuring" if job["kind"] == "measure" else "running"

    @property
    def active(self) -> bool:
        return self.job is not None

    @property
    def checkpoint(self) -> Path | None:
        path = self.folder / ckpt.CHECKPOINT
        return path if (path / ckpt.CONFIG).exists() else None

    @property
    def resumable(self) -> bool:
        """Stopped with resume state saved (a run stopped before its first checkpoint has none)."""
        return not self.active and self.record.get("outcome") == "stopped" and (self.folder / ckpt.RESUME).is_dir()

    @property
    def budget(self) -> tuple[str, float]:
        return self.request["budget"], self.request["amount"]

    @property
    def image_set(self) -> image_sets.ImageSet | None:
        """The uploaded image set the run trains on; None for a named source, or when the set is gone."""
        match = UPLOAD.fullmatch(self.request["dataset"])
        return read_image_set(self.folder.parent / SETS / match[1]) if match else None

    @property
    def epoch_fid(self) -> str:
        """The history key of the FID measured after each epoch: Inception FID against an upload's held-out images
        (no classifier knows its classes), else the dataset classifier's FID."""
        return "fid" if UPLOAD.fullmatch(self.request["dataset"]) else "classifier_fid"

    def title(self) -> str:
        """Like "DCGAN on mnist, 60 s", "DCGAN on mnist, 300 steps" or "DCGAN on your images (3fa9c2d1), 64 px, 60 s"."""
        kind, amount = self.budget
        budget = f"{amount:,.0f} steps" if kind == "steps" else f"{amount:g} s"
        match = UPLOAD.fullmatch(self.request["dataset"])
        data = f"your images ({match[1][:8]}), {self.request['image_size']} px" if match else self.request["dataset"]
        return f"{get_family(self.request['family']).title} on {data}, {budget}"

    def progress(self) -> list[dict]:
        return live.read_progress(self.folder)

    def frames(self) -> list[Path]:
        return live.frame_paths(self.folder)

    def history(self) -> list[dict]:
        """The trainer's per-epoch entries (classifier-FID among them); [] before the first or when unreadable."""
        if self.checkpoint is None:
            return []
        try:
            return (ckpt.read_optional_json(self.checkpoint, ckpt.HISTORY) or {}).get("epochs", [])
        except ckpt.CheckpointError:
            return []

    def done_fraction(self, line: dict | None) -> float:
        """How much of the budget a progress line has spent, 0 to 1."""
        if line is None:
            return 0.0
        kind, amount = self.budget
        return min(1.0, (line["step"] if kind == "steps" else line["seconds"]) / amount)

    def log_tail(self, start: int = 0) -> str:
        try:
            with open(self.folder / LOG, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def read_run(folder: Path) -> Run | None:
    try:
        record = ckpt.read_json(folder / RECORD)
    except ckpt.CheckpointError:
        return None  # being made (under the lock), or not a run
    return Run(folder, record) if isinstance(record, dict) and RUN_ID.fullmatch(str(record.get("id", ""))) else None


def read_image_set(folder: Path) -> image_sets.ImageSet | None:
    try:
        return image_sets.read_set(folder)
    except (OSError, ValueError, TypeError):  # removed to make room, or not a set
        return None


def folder_size(path: Path) -> int:
    total = 0
    for parent, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(parent, name)).st_size
    return total


def error_message(text: str, code: int | None) -> str:
    """What a failed process said: the CLI's `error: ...` line, else its last line, else how it ended."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if said:
        return said[-1]
    if code is not None and code < 0:
        return f"the process was ended by signal {signal.Signals(-code).name}"
    return f"the process ended with exit status {code}: {lines[-1]}" if lines else f"the process ended with exit status {code}"


# ---- the manager --------------------------------------------------------------------------------------------------


_children: dict[int, subprocess.Popen] = {}  # processes this server started, by pid: polled, so none stays a zombie


def alive(pid: int, folder: Path) -> bool:
    """Whether `pid` is still the process of this run folder (a recycled pid names another command line)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return str(folder).encode() in cmdline and state != "Z"


def signal_run(pid: int, sig: signal.Signals) -> None:
    """Signal a run's process; one that has just ended is recorded at the next poll."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


class RunManager:
    def __init__(self, root: str | Path, slots: int = DEFAULT_SLOTS, cap_bytes: int = DEFAULT_CAP_MB * 2**20,
                 cwd: str | Path | None = None, python: str = sys.executable):
        """cwd: where the runs' `python -m train` is started, the folder that holds the train package (default: the
        working folder, the repository's root for `streamlit run app.py`)."""
        self.root, self.slots, self.cap_bytes = Path(root).resolve(), max(1, int(slots)), int(cap_bytes)
        self.cwd, self.python = Path(cwd or Path.cwd()).resolve(), python

    @classmethod
    def from_env(cls) -> RunManager:
        return cls(os.environ.get(ROOT_ENV, DEFAULT_ROOT), int(os.environ.get(SLOTS_ENV, DEFAULT_SLOTS)),
                   int(float(os.environ.get(CAP_ENV, DEFAULT_CAP_MB)) * 2**20))

    @contextlib.contextmanager
    def locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # ---- reading ----

    def runs(self) -> list[Run]:
        """Every run, oldest first."""
        found = [read_run(p) for p in self.root.glob("*") if p.is_dir() and RUN_ID.fullmatch(p.name)] \
            if self.root.is_dir() else []
        return sorted((r for r in found if r is not None), key=lambda r: r.record["created"])

    def get(self, run_id: str) -> Run | None:
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            return None
        return read_run(self.root / run_id)

    def queue(self) -> list[Run]:
        """Waiting runs in the order they will start."""
        return sorted((r for r in self.runs() if r.status == "queued"), key=lambda r: r.job["queued_at"])

    # ---- what a visitor asks for ----

    def add_upload(self, files: list[tuple[str, bytes]], progress=None) -> image_sets.ImageSet:
        """The image set of an upload (a zip, or image files), made at 64 px (a 32 px run resizes it again) or found
        made already; image_sets.ImageSetError when it is refused. Then the root is kept under its cap."""
        made = image_sets.from_files(files, self.root / SETS, max(image_sets.SIZES), progress=progress)
        with self.locked():
            self.make_room()
        return made

    def check_upload(self, request: Request) -> None:
        """An upload's run needs its image set still here, with the labels a conditional family needs; its use
        keeps it from removal a while longer."""
        match = UPLOAD.fullmatch(request.dataset)
        found = read_image_set(self.root / SETS / match[1])
        if found is None:
            raise RunRequestError("that upload is no longer on the server (the runs folder made room for newer "
                                  "runs): upload it again")
        if request.family not in upload_families(len(found.report.classes)):
            raise RunRequestError(f"{get_family(request.family).title} needs images in two class folders or more, "
                                  "and this upload has none: zip one folder per class")
        os.utime(found.folder)

    def submit(self, owner: str, request: Request) -> tuple[Run, list[str]]:
        """Queue a new run (it starts at the next poll with a free slot); returns it and the clamping notes."""
        request, notes = clamp(request)
        if UPLOAD.fullmatch(request.dataset):
            self.check_upload(request)
        with self.locked():
            now = time.time()
            run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{secrets.token_hex(3)}"
            folder = self.root / run_id
            folder.mkdir()
            record = {"id": run_id, "owner": owner, "created": now, "request": dataclasses.asdict(request),
                      "job": {"kind": "train", "state": "queued", "queued_at": now, "seen": now},
                      "outcome": None, "message": None, "measured": False}
            ckpt.write_json(folder / RECORD, record)
        self.poll(owner)
        return self.get(run_id), notes

    def stop(self, owner: str, run_id: str) -> str:
        """Stop a visitor's own run: a running one by its pid (it keeps its last checkpoint), a queued one leaves
        the queue. Returns what happened, in words."""
        with self.locked():
            run = self.owned(owner, run_id)
            job = run.job
            if job is None:
                return "it is not running"
            if job["state"] == "queued":
                self.drop_job(run)
                return "it left the queue"
            if not job.get("stop_at"):
                job["stop_at"] = time.time()
                self.write(run)
                if alive(job["pid"], run.folder):
                    signal_run(job["pid"], signal.SIGINT)  # the CLI's Ctrl-C: it says "interrupted" and exits
            return "stopping: it keeps its last checkpoint"

    def resume(self, owner: str, run_id: str) -> None:
        """Queue a stopped run to go on from its last checkpoint up to its budget."""
        with self.locked():
            run = self.owned(owner, run_id)
            if not run.resumable:
                raise RunRequestError(f"only a stopped run with a checkpoint can resume; this one is {run.status}")
            self.queue_job(run, "resume")
        self.poll(owner)

    def measure(self, owner: str, run_id: str) -> None:
        """Queue `python -m genmodels.evaluate` on the run's checkpoint (the metrics that take seconds, not FID)."""
        with self.locked():
            run = self.owned(owner, run_id)
            if run.active or run.checkpoint is None:
                raise RunRequestError(f"only a run with a checkpoint that is not training can be measured; "
                                      f"this one is {run.status}")
            self.queue_job(run, "measure")
        self.poll(owner)

    def owned(self, owner: str, run_id: str) -> Run:
        run = self.get(run_id)
        if run is None:
            raise RunRequestError("that run no longer exists: the runs folder made room for newer ones")
        if run.owner != owner:
            raise RunRequestError("only the visitor who started a run can stop, resume or measure it")
        return run

    def queue_job(self, run: Run, kind: str) -> None:
        now = time.time()
        run.record.update(job={"kind": kind, "state": "queued", "queued_at": now, "seen": now},
                          **({"measure_error": None} if kind == "measure" else {"message": None}))
        self.write(run)

    def drop_job(self, run: Run) -> None:
        """Leave the queue; a run that never trained leaves nothing behind."""
        if run.record.get("outcome") is None and run.checkpoint is None:
            shutil.rmtree(run.folder, ignore_errors=True)
            return
        run.record["job"] = None
        self.write(run)

    def write(self, run: Run) -> None:
        ckpt.write_json(run.folder / RECORD, run.record)

    # ---- keeping it all going ----

    def poll(self, owner: str | None = None) -> list[Run]:
        """Note that `owner`'s page is watching; record ended processes; drop runs whose visitor left the queue;
        start waiting runs while slots are free; keep the root under its cap. Returns every run."""
        with self.locked():
            now = time.time()
            changed = False
            for run in self.runs():
                job = run.job
                if job is None:
                    continue
                if job["state"] == "running":
                    if not alive(job["pid"], run.folder):
                        self.ended(run)
                        changed = True
                    elif job.get("stop_at") and now - job["stop_at"] > STOP_GRACE:
                        signal_run(job["pid"], signal.SIGKILL)  # the trainer's writes are atomic: nothing is torn
                elif run.owner == owner:
                    job["seen"] = now
                    self.write(run)
                elif now - job["seen"] > QUEUE_TIMEOUT:
                    self.drop_job(run)
            busy = sum(r.status in ("running", "stopping", "measuring") for r in self.runs())
            for run in self.queue()[: max(0, self.slots - busy)]:
                self.launch(run)
                changed = True
            if changed:
                self.make_room()
            return self.runs()

    def launch(self, run: Run) -> None:
        job = run.job
        if job["kind"] == "measure":
            args = ["-m", "genmodels.evaluate", str(run.checkpoint), *MEASURE_ARGS, "--device", run.request["device"]]
        else:
            args = train_args(run, resume=job["kind"] == "resume")
            clear_outcome(run.folder)  # an earlier process's: this one writes its own as it ends
            if job["kind"] == "resume":  # measured before this training: no longer true after it
                (run.folder / ckpt.CHECKPOINT / ckpt.METRICS).unlink(missing_ok=True)
                run.record["measured"] = False
        env = {**os.environ, "OMP_NUM_THREADS": str(run.request["threads"]), "PYTHONUNBUFFERED": "1"}
        with open(run.folder / LOG, "ab") as log:
            start = log.tell()
            log.write(f"$ python {shlex.join(args)}\n".encode())
            log.flush()
            # Its own session: a signal meant for the server (Ctrl-C in its terminal) is not a stop of the run.
            proc = subprocess.Popen([self.python, *args], cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        _children[proc.pid] = proc
        job.update(state="running", pid=proc.pid, started_at=time.time(), log_from=start)
        self.write(run)

    def ended(self, run: Run) -> None:
        """Record how a run's process ended: as the trainer's outcome record says, else (a process killed before it
        could write one) by its exit status; the evaluator's failure in the words it printed."""
        job = run.job
        child = _children.pop(job["pid"], None)
        code = child.returncode if child is not None else None  # None: started by a server that has gone since
        said = run.log_tail(job.get("log_from", 0))
        if job["kind"] == "measure":
            ok = code == 0 or (code is None and "error:" not in said)
            run.record.update(measured=ok, measure_error=None if ok else error_message(said, code))
        else:
            outcome = read_outcome(run.folder) or {}
            if code == 0 or outcome.get("outcome") == FINISHED:
                run.record.update(outcome="finished", message=None)
            elif job.get("stop_at") or outcome.get("outcome") == INTERRUPTED:
                run.record.update(outcome="stopped", message=None)
            else:
                run.record.update(outcome="failed", message=outcome.get("message") or error_message(said, code))
        run.record["job"] = None
        self.write(run)

    def make_room(self) -> list[str]:
        """Remove what is not in use until the root is under its cap: the image sets no run uses (the least recently
        used first, none used in the last SET_GRACE seconds), then idle runs, the oldest visitors' first. Returns the
        names of the folders removed."""
        total = folder_size(self.root)
        if total <= self.cap_bytes:
            return []
        runs = self.runs()
        used = {match[1] for r in runs if (match := UPLOAD.fullmatch(r.request.get("dataset", "")))}
        idle_sets = sorted((p for p in (self.root / SETS).glob("*")
                            if p.is_dir() and p.name not in used and time.time() - p.stat().st_mtime > SET_GRACE),
                           key=lambda p: p.stat().st_mtime) if (self.root / SETS).is_dir() else []
        first_seen: dict[str, float] = {}
        for r in runs:  # oldest first, so the first run of each visitor sets its age
            first_seen.setdefault(r.owner, r.record["created"])
        idle_runs = sorted((r for r in runs if not r.active), key=lambda r: (first_seen[r.owner], r.record["created"]))
        removed = []
        for folder in [*idle_sets, *(r.folder for r in idle_runs)]:
            if total <= self.cap_bytes:
                break
            total -= folder_size(folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        return removed
