"""The server's start-up (st.App's lifespan, see app.py): what the first visitor would otherwise wait for, done before
the server answers.

A fresh server's first visit to the latent explorer spent 2-2.5 s importing torch and the library, 1.6 s loading the
model the app opens on and 1.85 s finding its GANSpace directions (AVX2 CPU, docs/benchmarks.md). Streamlit's resource
caches are the server's, shared by every session, so filling them here serves the first visitor as a later one.
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

import torch

from genmodels.config import weights_root
from genmodels.device import devices
from pages.app.common import APP_THREADS, USER_ERRORS, directions, first_entry, freeze_heap, load


class NoPageRun(logging.Filter):
    """Drops Streamlit's warning that a cached function ran outside a page's run: here that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "missing ScriptRunContext" not in record.getMessage()


def warm() -> str:
    """Load the model a first visit opens on, on the sidebar's first device, and find its directions; says what."""
    started = time.perf_counter()
    torch.set_num_threads(APP_THREADS)
    entry, device = first_entry(weights_root()), devices()[0]
    if entry is None:
        return "no checkpoint to load ahead of the first visit"
    model = load(entry, device)
    directions(entry, device, model)
    return f"{entry.key} loaded on {device} and its principal directions found in {time.perf_counter() - started:.1f} s"


@asynccontextmanager
async def lifespan(app):
    streamlit_log = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    quiet = NoPageRun()
    streamlit_log.addFilter(quiet)
    try:
        said = await asyncio.to_thread(warm)
    except USER_ERRORS as e:  # the page that opens the checkpoint says what is wrong with it; the app still serves
        said = f"nothing loaded ahead of the first visit: {e}"
    finally:
        streamlit_log.removeFilter(quiet)
    print(f"genmodels: {said}", flush=True)  # beside Streamlit's own start-up lines in the server's console
    freeze_heap()
    yield
