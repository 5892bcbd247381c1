"""live/ in a run folder: progress and the fixed-seed grid every few seconds (train.live_every; less often where
drawing the grid would take more than SHARE of the training time), written by the trainer and read by a watcher
that never imports the trainer (the app's Train page). One format, one place.

  live/progress.jsonl     one JSON object a line: {"step", "epoch" (fractional), "images_seen", "seconds" (training
                          wall time, resumes included), "images_per_sec" (since the line before; null on the line a
                          process writes as it starts), LOSS: the mean of each logged loss since the line before, ...};
                          appended, so a reader skips a torn last line
  live/frames/STEP.png    the preview grid (seed PREVIEW_SEED) at that step, from step 0 (noise) on; at most
                          MAX_FRAMES are kept, thinned evenly as a run grows, so a film of the run stays small
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from PIL import Image

from genmodels import checkpoint as ckpt

LIVE = "live"
PROGRESS = "progress.jsonl"
FRAMES = "frames"
MAX_FRAMES = 120
SHARE = 0.05  # at most this share of the training time goes to progress lines and grids, however slow they are


class LiveLog:
    """The writer, used by the trainer on the main process of a run in `run` (a run folder)."""

    def __init__(self, run: Path, every: float):
        self.run, self.folder, self.every = Path(run), Path(run) / LIVE, every
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last_time, self.last_images, self.last_step = time.perf_counter(), None, None
        # When due() last said yes (the trainer draws the grid between that and write()), when the last write
        # ended, and what that update cost, grid included.
        self.asked: float | None = None
        self.done, self.cost = self.last_time, 0.0

    def add(self, logs: dict[str, float]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def due(self) -> bool:
        """Every `every` seconds, but with at least (1 / SHARE - 1) times the last update's cost of training
        between two: on a starved CPU, drawing 64 samples can take much of a 2 s interval, and the updates then
        come less often rather than take the run's time."""
        now = time.perf_counter()
        if now - self.last_time >= self.every and now - self.done >= self.cost * (1 / SHARE - 1):
            self.asked = now
            return True
        return False

    def write(self, step: int, epoch: float, images_seen: int, seconds: float, frame: Image.Image) -> None:
        """One progress line (losses averaged since the last one) and the grid at this step."""
        if self.last_step is None:
            self.forget_after(step)
        now = time.perf_counter()
        # A process's first line (written as it starts) has no interval before it: a rate would count start-up.
        rate = None if self.last_images is None else (images_seen - self.last_images) / max(now - self.last_time, 1e-9)
        line = {"step": step, "epoch": round(epoch, 4), "images_seen": images_seen, "seconds": round(seconds, 2),
                "images_per_sec": None if rate is None else round(rate, 1),
                **{k: self.sums[k] / self.counts[k] for k in self.sums}}
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / PROGRESS, "a") as f:
            f.write(json.dumps(line) + "\n")  # one write per line: a reader sees whole lines, or a torn last one
        frames = self.folder / FRAMES
        ckpt.atomic_write(frames / f"{step:08d}.png", lambda tmp: frame.save(tmp, format="PNG"))
        kept = frame_paths(self.run)
        if len(kept) > MAX_FRAMES:
            for old in kept[1:-1:2]:  # every other frame but the first (noise) and the latest
                old.unlink(missing_ok=True)
        self.sums, self.counts = {}, {}
        # The next rate includes this write: watching a run costs it that time.
        self.last_time, self.last_images, self.last_step = now, images_seen, step
        self.done = time.perf_counter()
        self.cost = self.done - (self.asked if self.asked is not None else now)
        self.asked = None

    def forget_after(self, step: int) -> None:
        """A resumed run trains again from its checkpoint: what an earlier process logged after that step was
        thrown away with its weights, so its lines and grids go too, and the curves and the film stay one run."""
        lines = read_progress(self.run)
        if any(line["step"] > step for line in lines):
            text = "".join(json.dumps(line) + "\n" for line in lines if line["step"] <= step)
            ckpt.atomic_write(self.folder / PROGRESS, lambda tmp: Path(tmp).write_text(text))
        for path in frame_paths(self.run):
            if frame_step(path) > step:
                path.unlink()


def read_progress(run: str | Path) -> list[dict]:
    """The progress lines of a run folder, oldest first ([] before the first)."""
    try:
        text = (Path(run) / LIVE / PROGRESS).read_text()
    except FileNotFoundError:
        return []
    lines = []
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue  # the trainer is appending this line right now
        if isinstance(line, dict) and isinstance(line.get("step"), int):
            lines.append(line)
    return lines


def frame_paths(run: str | Path) -> list[Path]:
    """The run's grids in training order (file names are zero-padded steps)."""
    folder = Path(run) / LIVE / FRAMES
    return sorted(folder.glob("[0-9]*.png")) if folder.is_dir() else []


def frame_step(path: Path) -> int:
    return int(path.stem)


def film(run: str | Path, frame_ms: int = 150, hold: int = 12) -> bytes:
    """The run's fixed-seed grid over training as a GIF that plays forward, holds the last grid for `hold` frames
    and starts again."""
    from genmodels.sampling import gif_bytes

    images = []
    for path in frame_paths(run):
        try:
            images.append(Image.open(path).convert("RGB"))
        except FileNotFoundError:
            continue  # thinned away by the trainer since the folder was listed
    return gif_bytes(images + [images[-1]] * hold, duration_ms=frame_ms, bounce=False)
