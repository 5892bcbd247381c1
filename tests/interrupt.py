"""Stop a real training process part-way, as a crash, a pulled plug or a person's Ctrl-C would, for the resume tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after_step(cmd: list[str], cwd: Path, state: Path, step: int, timeout: float = 120,
                    sig: signal.Signals = signal.SIGKILL, background_job: bool = False) -> int:
    """Start cmd, send it `sig` once its resume state (state.json) records `step`, wait for it to end; return the
    step its state recorded. background_job starts it as a shell starts `cmd &`: with SIGINT ignored."""
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background_job else None
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=ignore_sigint)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["progress"]["step"] >= step:
            break
        time.sleep(0.2)
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the process went on for 60 s after {sig.name}") from None
    return json.loads(state.read_text())["progress"]["step"]
