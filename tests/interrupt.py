"""Kill a real training process part-way, as a crash or a pulled plug would, for the resume tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after_step(cmd: list[str], cwd: Path, state: Path, step: int, timeout: float = 120) -> int:
    """Start cmd, SIGKILL it once its resume state (state.json) records `step`; return the step it recorded."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["progress"]["step"] >= step:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return json.loads(state.read_text())["progress"]["step"]
