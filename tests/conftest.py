"""Threads for the test run: `make test` runs three pytest-xdist workers on two cores, and many tests start processes.

Threads that wait for work by spinning spin against the other workers'. Set here, before any test imports torch or
NumPy, so every worker and every process a test starts inherit it:
- OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads sleep while they wait. test_packed_statistics_keep_the_fid
  (float64 products and eigendecompositions of 2,048 x 2,048) took 94 s beside a busy process with the default,
  15 s with this; 6 s alone either way (2-core AVX2 CPU).
- One OpenBLAS thread (NumPy, SciPy, scikit-learn): a 4,500-code mixture fit took 60 s with two beside one busy
  process, 0.32 s with one.
torch keeps a thread per core: one per worker left a core idle whenever a worker waited on a browser or a subprocess.
"""
from __future__ import annotations

import os
import sys

assert "torch" not in sys.modules, "OMP_WAIT_POLICY is read when torch loads its OpenMP runtime"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from threadpoolctl import threadpool_limits  # noqa: E402

_limits = threadpool_limits(1, user_api="blas")  # in this process, NumPy may have loaded its BLAS already

import signal  # noqa: E402

import pytest  # noqa: E402

from run_fixtures import trainer_processes  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def no_trainer_outlives_its_module(tmp_path_factory):
    """A trainer a test leaves behind takes a core from every test after it, and outlives the suite: one test's
    queued 20,000-step run, started by its fixture's last poll, once trained through a whole session. Checked when a
    module's own fixtures have ended (an autouse fixture is set up first, so torn down last)."""
    yield
    left = trainer_processes(tmp_path_factory.getbasetemp())
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"trainer processes outlived the tests that started them: {left}"
