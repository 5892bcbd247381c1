"""CPU-seconds a fresh process spends before it can draw: importing torch, loading a checkpoint, drawing a grid.

Every app server, `python -m genmodels.evaluate`, `train.ship` and hub command pays this once. Loading a checkpoint
used to import torch._dynamo (the meta kernels of normal_ and eye are Python decompositions that import it on first
call) and drawing a grid imported torchvision, which imports torch._dynamo too. Each case runs in its own fresh
process, three times; its median CPU time (user + system, from the child's rusage) is printed with its ratio to
`import torch` alone.

    .venv/bin/python bench/process_start.py [weights/mnist/cgan]
"""
from __future__ import annotations

import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOAD = "import genmodels; from genmodels.sampling import preview_grid; preview_grid(genmodels.load({path!r}))"
CASES = {
    "import torch": "import torch",
    "load a checkpoint and draw its grid": LOAD,
    "the same, with torch._dynamo imported as before": "import torch._dynamo; " + LOAD,
    "import torch._dynamo alone": "import torch._dynamo",
}


def cpu_seconds(code: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "weights/mnist/cgan"
    base = None
    for name, code in CASES.items():
        median = statistics.median(cpu_seconds(code.format(path=path)) for _ in range(3))
        base = base or median
        print(f"{name:50s} {median:5.2f} CPU-s  x{median / base:.2f}", flush=True)


if __name__ == "__main__":
    main()
