"""Helpers for the tests of runs started from the app: a weights folder without models, and the trainer processes."""
from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def weights_without_models(folder: Path) -> Path:
    """A weights folder holding no model, so a visitor's run is the only one, but the MNIST classifier, which the
    run's per-epoch FID reads from the app's weights folder."""
    shutil.copytree(ROOT / "weights" / "mnist" / "classifier", folder / "mnist" / "classifier")
    return folder


def trainer_processes(root: Path) -> list[int]:
    """Pids of `python -m train` processes writing under `root`, read from /proc as any process could. A child a
    trainer forks (a library running a helper program) bears its parent's command line until it execs: it is part
    of that trainer, not a second one, so only processes whose parent is not such a trainer count."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            state, parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if b"train" in args and any(a.startswith(str(root).encode()) for a in args) and state != "Z":
            found[int(proc.name)] = int(parent)
    return [pid for pid, parent in found.items() if parent not in found]


def end_runs(manager) -> None:
    """End whatever a test left in a run manager: queued runs leave the queue first, since the poll that reaps a
    killed trainer would start the next one (a 20,000-step run once outlived a whole test session that way)."""
    for run in manager.runs():
        if run.job and run.job["state"] == "queued":
            manager.stop(run.owner, run.id)
    for pid in trainer_processes(manager.root):
        os.kill(pid, signal.SIGKILL)
    manager.poll()
