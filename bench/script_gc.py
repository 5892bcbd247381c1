"""CPU seconds of the full garbage collection that Streamlit runs after every script run (`runner.postScriptGC`), in a
process that holds what an app server holds (torch, the app's modules, a loaded model, the ONNX exporter's modules
after one export), before and after `pages.app.common.freeze_heap`, in the same process.

    python bench/script_gc.py [--weights weights/mnist/dcgan] [--repeats 5]

Each figure is the median of `--repeats` collections.
"""
from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import genmodels  # noqa: E402
from genmodels.export import onnx_file  # noqa: E402
from pages.app.common import freeze_heap  # noqa: E402


def collection_seconds(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        gc.collect(2)
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="weights/mnist/dcgan")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    genmodels.load(args.weights)
    with tempfile.TemporaryDirectory() as cache:
        onnx_file(args.weights, cache)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    before = collection_seconds(args.repeats)
    print(f"tracked objects: {len(gc.get_objects()):,}; full collection {before * 1000:.1f} ms (the reference)")
    freeze_heap()
    after = collection_seconds(args.repeats)
    print(f"after freeze_heap: {len(gc.get_objects()):,} tracked; full collection {after * 1e6:.0f} us, "
          f"{before / max(after, 1e-6):,.0f}x faster")


if __name__ == "__main__":
    main()
