"""The `python -m train` command line, built here alone: the CLI records it in config.json, a sweep stores each
trial's, and the run manager launches it."""
from __future__ import annotations

import shlex
import signal
from collections.abc import Sequence
from pathlib import Path

PACKAGE = "train"


def train_arguments(dataset: str, model: str, *, out: Path | str | None = None, config: Path | str | None = None,
                    device: str | None = None, overrides: Sequence[str] = (), resume: bool = False) -> list[str]:
    """What follows `python -m train` to train `model` on `dataset`; overrides are SECTION.KEY=VALUE strings."""
    args = [dataset, model]
    if out is not None:
        args += ["--out", str(out)]
    if config:
        args += ["--config", str(config)]
    if device:
        args += ["--device", device]
    for item in overrides:
        args += ["--set", item]
    return args + (["--resume"] if resume else [])


def invocation(arguments: Sequence[str]) -> list[str]:
    """The interpreter's arguments that run the CLI with `arguments`."""
    return ["-m", PACKAGE, *arguments]


def command_line(arguments: Sequence[str]) -> str:
    """The command a person types, as recorded and shown."""
    return shlex.join(["python", *invocation(arguments)])


def restore_ctrl_c() -> None:
    """Let SIGINT stop a long command even when it was started as a background job.

    A shell starts `nohup python -m train ... &` with SIGINT ignored, and Python then leaves it ignored, so
    `kill -INT` did nothing and the run went on, never saying "interrupted". (The Train page's stop sends SIGINT too;
    its trainers start with the default, since Streamlit handles SIGINT itself.) Called from the entry points only:
    signal handlers belong to the main thread of a process of our own."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
