"""How a `python -m train` run ended, in a file of its run folder, so nothing has to parse what it printed.

  OUT/outcome.json   {"outcome": "finished", "checkpoint": PATH} | {"outcome": "error", "message": TEXT}
                     | {"outcome": "interrupted"}

train/__main__.py writes it (atomically) as it exits, for the last command run on the folder; a process killed
outright (SIGKILL, out of memory) writes none, and its exit status is all there is to say.
"""
from __future__ import annotations

from pathlib import Path

from genmodels import checkpoint as ckpt

OUTCOME = "outcome.json"
FINISHED, ERROR, INTERRUPTED = "finished", "error", "interrupted"


def write_outcome(out: Path, outcome: str, message: str | None = None, checkpoint: Path | None = None) -> None:
    """Record how the run in `out` ended; a command refused before it made its folder leaves no folder behind."""
    if not out.is_dir():
        return
    record = {"outcome": outcome, **({"message": message} if message is not None else {}),
              **({"checkpoint": str(checkpoint)} if checkpoint is not None else {})}
    ckpt.write_json(out / OUTCOME, record)


def read_outcome(out: Path) -> dict | None:
    """The outcome record of the run in `out`; None while it runs, after a kill, or when unreadable."""
    try:
        record = ckpt.read_json(out / OUTCOME)
    except ckpt.CheckpointError:
        return None
    return record if isinstance(record, dict) and record.get("outcome") in (FINISHED, ERROR, INTERRUPTED) else None


def clear_outcome(out: Path) -> None:
    """Forget an earlier command's outcome before another runs on the folder."""
    (out / OUTCOME).unlink(missing_ok=True)
