"""Fetch ONNX Runtime Web (npm: onnxruntime-web 1.30.0, MIT licence) for the latent explorer, verified.

    python3 pages/components/explorer/fetch_ort.py [--dest pages/components/explorer/frontend/vendor]

The explorer runs the exported generator in the browser with two files of the package's dist/ folder: the ES module
with the WebAssembly backend and its Emscripten loader bundled in (73 KB), and the WebAssembly binary it loads
(14 MB). They are served by the app's own server, so a page never asks a CDN for them. Both are checked against
the SHA-256s pinned below before they are moved into place; a second run finds them verified and does nothing.
Standard library only: `make setup` and the Dockerfile run it before or without the virtual environment.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "onnxruntime-web@1.30.0"
SHA256 = {
    "ort.wasm.bundle.min.mjs": "11e64bd8ffe11bd1a2a2f0d6275fdfbbba7262f0b76b99b53d228a8a22ef3d90",
    "ort-wasm-simd-threaded.wasm": "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
}
DEST = Path(__file__).resolve().parent / "frontend" / "vendor"


def problems(folder: Path) -> list[str]:
    """What is wrong with the files in `folder`, in words; [] when both are there and verify."""
    found = []
    for name, want in SHA256.items():
        path = folder / name
        if not path.is_file():
            found.append(f"{name} is missing")
        elif (got := hashlib.sha256(path.read_bytes()).hexdigest()) != want:
            found.append(f"{name} does not match its pinned SHA-256 (got {got[:16]}..., expected {want[:16]}...)")
    return found


def fetch(dest: Path) -> Path:
    if not problems(dest):
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("onnxruntime-web: npm is not installed: `apt-get install npm` (make setup does this)")
    dest.mkdir(parents=True, exist_ok=True)
    # Unpacked beside the destination, so each move into place is an atomic rename.
    with tempfile.TemporaryDirectory(prefix=".ort-fetch-", dir=dest) as tmp:
        work = Path(tmp)
        done = subprocess.run([npm, "pack", PACKAGE, "--silent", "--pack-destination", str(work)], cwd=work,
                              capture_output=True, text=True, timeout=600)
        archives = sorted(work.glob("onnxruntime-web-*.tgz"))
        if done.returncode != 0 or not archives:
            last = ((done.stderr + done.stdout).strip().splitlines() or ["no archive written"])[-1]
            raise SystemExit(f"onnxruntime-web: `npm pack {PACKAGE}` failed (no network or no npm registry?): {last}")
        with tarfile.open(archives[0]) as tar:
            for name in SHA256:
                with tar.extractfile(f"package/dist/{name}") as src, open(work / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if bad := problems(work):
            raise SystemExit(f"onnxruntime-web: the package from the registry does not verify: {'; '.join(bad)}")
        for name in SHA256:
            os.replace(work / name, dest / name)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=DEST, help=f"folder for the two files (default {DEST})")
    folder = fetch(ap.parse_args(argv).dest)
    print(f"onnxruntime-web: {PACKAGE} verified in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
