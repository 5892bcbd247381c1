"""Torch threads for the test run: `make test` runs pytest-xdist workers side by side, one per core.

Each worker's torch would otherwise take a thread per core, so two workers on two cores ran four OpenMP threads that
wait on each other: tests/test_metrics.py and tests/test_onnx.py under `-n 2` took 600 s (558 s of user CPU) with
torch's default and 273 s (233 s) with one thread per worker, on a 2-core AVX2 CPU beside a training run.
"""
from __future__ import annotations

import os

import torch


def pytest_configure(config):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers:
        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        # The evaluations and exports that tests run as subprocesses share the cores the same way.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
