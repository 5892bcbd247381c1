"""The one training loop for every family.

Objectives (genmodels.objectives) say what to minimise; this loop owns iteration order, n_critic,
optimisers, precision, the generator EMA, logging, previews, checkpoints and resume.

A run folder holds:
  checkpoint/   the shippable checkpoint (config.json, model.safetensors, history.json, preview.png)
  resume/       everything else needed to continue: discriminator, optimisers, EMA, RNG, counters
  samples/      one preview grid per epoch
  best/         with train.fid_every, the checkpoint of the epoch with the lowest FID so far
  candidates/   with train.keep_candidates, epoch-NNNN/ checkpoints of that many lowest-FID epochs, from which
                `python -m train.ship --choose` ships the one with the lowest Inception FID

A kill at any moment leaves a run that resumes consistently. resume/ is one unit, written and read by
train/state.py. checkpoint/ and best/ record the content
hash of their weights in config.json (written last), so a kill between their two files is refused by
`genmodels.load`, and --resume rewrites checkpoint/ from resume/.
Evaluation, previews and saves draw from their own RNG, so a resumed run equals an uninterrupted one bit for bit.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from genmodels import checkpoint as ckpt
from genmodels.config import to_dict
from genmodels.data import ImageData
from genmodels.device import autocast, autocast_dtype, memory_format, pick_device
from genmodels.metrics.epoch import EpochFID
from genmodels.objectives import Batch
from genmodels.registry import get_family
from genmodels.sampling import preview_grid

from . import distributed
from .config import RunConfig
from .live import FRAMES, LIVE, LiveLog
from .state import flatten_state, load_training_state, restore_state, save_training_state

# Settings a run may change when it is resumed, by config section. In [train] they do not change what the optimiser
# does, or (the learning rates) they are how a diverged run continues from its last good checkpoint; in [objective],
# top-k training may be switched on part-way, and history.json logs the fraction each epoch kept.
RESUMABLE_CHANGES = {
    "train": ("epochs", "max_steps", "max_seconds", "device", "threads", "checkpoint_minutes", "checkpoint_every",
              "fid_every", "fid_samples", "fid_features", "live_every", "lr", "lr_d", "keep_candidates"),
    "objective": ("top_k",),
}
# No objective here reaches this on a healthy run (the largest, a VAE's reconstruction summed over a 64x64 RGB
# image, starts near 1e4); beyond it the weights are blowing up, and the run would only end in NaN.
LOSS_LIMIT = 1e6


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Progress:
    epoch: int = 0            # epochs completed
    batch_in_epoch: int = 0   # batches of the current epoch already done
    step: int = 0             # iterations done in all
    images_seen: int = 0
    seconds: float = 0.0      # training wall time up to the last checkpoint
    # Each logged loss summed over the current epoch's batches so far, and how many batches logged it: saved with
    # the rest, so a resumed epoch's mean in history.json covers its batches from before the resume too.
    loss_sums: dict[str, float] = field(default_factory=dict)
    loss_counts: dict[str, int] = field(default_factory=dict)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The fixed batch order of an epoch; dropping the ragged last batch keeps batch-norm statistics sane."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return list(order[: n - n % batch_size].split(batch_size)) if n >= batch_size else [order]


class Trainer:
    def __init__(self, run: RunConfig, data: ImageData, out: str | Path, command: str = ""):
        self.run, self.data, self.out, self.command = run, data, Path(out), command
        cfg = run.train
        self.family = get_family(run.family)
        self.objective = self.family.objective(run.objective)
        self.world, self.device = distributed.setup(pick_device(cfg.device))
        if cfg.batch_size % self.world.size:
            raise ValueError(f"train.batch_size {cfg.batch_size} must divide evenly over {self.world.size} processes")
        self.dtype = autocast_dtype(self.device, cfg.precision)
        self.memory_format = memory_format(self.device)
        if cfg.threads and self.device.type == "cpu" and self.world.size == 1:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)

        self.G = self.family.build_generator(run.model).to(self.device, memory_format=self.memory_format)
        self.world.broadcast_(self.G)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema_decay else None
        self.D = None
        self.opt_d = None
        if self.family.build_discriminator is not None:
            self.D = self.family.build_discriminator(run.model).to(self.device, memory_format=self.memory_format)
            self.world.broadcast_(self.D)
            self.opt_d = self.make_optimizer(self.D, cfg.lr_d or cfg.lr)
        self.opt_g = self.make_optimizer(self.G, cfg.lr)
        fp16 = self.dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.progress = Progress()
        self.history: list[dict] = []
        self.saved_step: int | None = None  # step of the last checkpoint written
        self.best: dict | None = None  # {"epoch", "metric", "value"} of the lowest per-epoch FID
        self.live = LiveLog(self.out, cfg.live_every) if cfg.live_every and self.world.is_main else None
        self.clock = (time.perf_counter(), 0.0)  # (when fit began in this process, training seconds before it): set by fit
        self.epoch_fid = None
        if cfg.fid_every and self.world.is_main:
            with self.own_rng():  # building a classifier draws initial weights; a run without FID must train the same
                self.epoch_fid = EpochFID(data, run.model.image_shape, cfg.fid_features, cfg.fid_samples, self.device)

    # ---- setup -------------------------------------------------------------------------------

    def make_optimizer(self, module: nn.Module, lr: float) -> torch.optim.Optimizer:
        cfg = self.run.train
        if cfg.optimizer == "adam":
            return torch.optim.Adam(module.parameters(), lr=lr, betas=cfg.betas)
        return torch.optim.SGD(module.parameters(), lr=lr, momentum=cfg.betas[0])

    def own_rng(self):
        """A block whose use of torch's global RNG is undone afterwards. Evaluation builds classifiers and caches
        lazily, at the first epoch end of each process: in a resumed run that is another step than in an
        uninterrupted one, so drawing from the training RNG there would change every later batch of noise."""
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        return torch.random.fork_rng(devices=cuda, device_type="cuda")

    @property
    def shipped(self) -> nn.Module:
        """The generator that ships: the EMA of the weights when enabled (Karras et al. 2018, Yazici et al. 2019)."""
        return self.G_ema if self.G_ema is not None else self.G

    # ---- the loop ----------------------------------------------------------------------------

    def fit(self) -> Path:
        cfg, p = self.run.train, self.progress
        n_critic = self.objective.n_critic
        self.clock = (time.perf_counter(), p.seconds)  # p.seconds: training time of earlier processes (resume)
        last_save = time.perf_counter()
        if self.live is not None:
            self.write_live()  # the grid before this process trains: noise, or where a resumed run stopped
        while p.epoch < cfg.epochs and not self.budget_spent():
            batches = epoch_batches(len(self.data), cfg.batch_size, cfg.seed, p.epoch)
            if p.batch_in_epoch == 0:  # a new epoch; mid-epoch, the sums go on from where the resumed run left them
                p.loss_sums, p.loss_counts = {}, {}
            sums, counts = p.loss_sums, p.loss_counts
            epoch_start, epoch_images = time.perf_counter(), 0
            bar = tqdm(total=len(batches), initial=p.batch_in_epoch, desc=f"epoch {p.epoch + 1}/{cfg.epochs}",
                       unit="batch", disable=None if self.world.is_main else True, file=sys.stderr, dynamic_ncols=True)
            for index in batches[p.batch_in_epoch:]:
                logs = self.iteration(index, train_g=(p.step + 1) % n_critic == 0 or self.D is None)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
                p.step += 1
                p.batch_in_epoch += 1
                p.images_seen += len(index)
                epoch_images += len(index)
                rate = epoch_images / max(time.perf_counter() - epoch_start, 1e-9)
                bar.update(1)
                if p.step % 10 == 0:
                    bar.set_postfix({**{k: f"{v:.3g}" for k, v in logs.items()}, "img/s": f"{rate:.0f}"}, refresh=False)
                if self.live is not None:
                    self.live.add(logs)
                    if self.live.due():
                        self.write_live()
                if self.budget_spent():
                    break
                if time.perf_counter() - last_save > cfg.checkpoint_minutes * 60:
                    self.save(self.elapsed())
                    last_save = time.perf_counter()
            bar.close()
            epoch_done = p.batch_in_epoch == len(batches)
            if epoch_done:
                p.epoch += 1
                p.batch_in_epoch = 0
                self.decay_learning_rates()
            seconds = self.elapsed()
            entry = {"epoch": p.epoch if epoch_done else self.epochs_done(), "step": p.step,
                     "images_seen": p.images_seen, "seconds": round(seconds, 1),
                     "images_per_sec": round(epoch_images / max(time.perf_counter() - epoch_start, 1e-9), 1),
                     **{k: sums[k] / counts[k] for k in sums}}
            self.record(entry)
            last = p.epoch >= cfg.epochs or self.budget_spent()
            if self.world.is_main:
                with self.own_rng():
                    if epoch_done or last:
                        self.objective.after_epoch(self.shipped, self.data, copies=(self.G,) if self.G_ema is not None else ())
                    best = epoch_done and cfg.fid_every and p.epoch % cfg.fid_every == 0 and self.evaluate_epoch(entry, seconds)
                    self.write_preview(self.out / ckpt.CHECKPOINT, *([self.out / ckpt.BEST] if best else []))
                self.write_history()
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()),
                      file=sys.stderr, flush=True)
            if last or not epoch_done or p.epoch % cfg.checkpoint_every == 0:
                self.save(seconds)
                last_save = time.perf_counter()
        if self.live is not None and self.live.last_step != p.step:
            self.write_live()  # the end of the run, when the last line was written before it
        return self.out / ckpt.CHECKPOINT

    def record(self, entry: dict) -> None:
        """Add an epoch's entry to the history. An entry for part of the same epoch (written where an earlier
        process's budget ran out mid-epoch) is replaced: the new one covers its batches too."""
        last = self.history[-1] if self.history else None
        partial = last is not None and isinstance(last["epoch"], float)
        if partial and math.floor(last["epoch"]) == math.ceil(entry["epoch"]) - 1:
            self.history[-1] = entry
        else:
            self.history.append(entry)

    def evaluate_epoch(self, entry: dict, seconds: float) -> bool:
        """Add this epoch's FID to its history entry; keep the best epoch's generator in best/ (True when it is this one)."""
        measured = self.epoch_fid(self.shipped)
        entry.update(measured)
        name, value = self.epoch_fid.name, measured[self.epoch_fid.name]
        self.keep_candidate(entry, seconds)
        if self.best is None or value < self.best["value"]:
            self.best = {"epoch": entry["epoch"], "metric": name, "value": value}
            ckpt.save(self.shipped, self.out / ckpt.BEST, self.run.family, data=self.data_record(),
                      training={**self.training_record(seconds), "best": self.best})
            ckpt.write_json(self.out / ckpt.BEST / ckpt.HISTORY, {"epochs": self.history, "best": self.best})
            return True
        return False

    def keep_candidate(self, entry: dict, seconds: float) -> None:
        """With train.keep_candidates = k, candidates/ holds the k epochs of lowest per-epoch FID so far. The fast
        per-epoch FID screens the epochs; the final choice among these is made by Inception FID (train.ship)."""
        k, name = self.run.train.keep_candidates, self.epoch_fid.name
        if not k:
            return
        folder = self.out / ckpt.CANDIDATES
        leading = {ckpt.candidate_name(e["epoch"])
                   for e in sorted((e for e in self.history if name in e), key=lambda e: e[name])[:k]}
        if ckpt.candidate_name(entry["epoch"]) in leading:
            ckpt.save(self.shipped, folder / ckpt.candidate_name(entry["epoch"]), self.run.family,
                      data=self.data_record(), training={**self.training_record(seconds), "best": {
                          "epoch": entry["epoch"], "metric": name, "value": entry[name]}})
        for old in folder.glob("epoch-*"):
            if old.name not in leading:  # an epoch pushed out of the leading k
                shutil.rmtree(old)

    def write_history(self) -> None:
        ckpt.write_json(self.out / ckpt.CHECKPOINT / ckpt.HISTORY, {"epochs": self.history, "best": self.best})

    def elapsed(self) -> float:
        """Training wall time so far, earlier processes of a resumed run included."""
        started, before = self.clock
        return before + time.perf_counter() - started

    def epochs_done(self) -> float:
        """Epochs trained so far, the current one's done batches as a fraction (as many as epoch_batches makes)."""
        p = self.progress
        return p.epoch + p.batch_in_epoch / max(1, len(self.data) // self.run.train.batch_size)

    def budget_spent(self) -> bool:
        cfg = self.run.train
        return ((bool(cfg.max_steps) and self.progress.step >= cfg.max_steps)
                or (bool(cfg.max_seconds) and self.elapsed() >= cfg.max_seconds))

    def iteration(self, index: torch.Tensor, train_g: bool) -> dict[str, float]:
        """One discriminator step, and a generator step when train_g, on the global batch `index`."""
        n, world, model = len(index), self.world, self.run.model
        real, labels = self.data.batch(world.shard(index))
        real = real.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        conditional = model.num_classes > 0
        # Noise is drawn for the whole global batch on every process (same seed) and sharded, so a run on
        # N processes sees the same z as a single-process run and all processes keep one RNG state.
        z = world.shard(torch.randn(n, model.latent_dim, device=self.device))
        fake_labels = world.shard(torch.randint(0, model.num_classes, (n,), device=self.device)) if conditional else None
        b = Batch(real=real, labels=labels.to(self.device) if conditional else None, z=z, fake_labels=fake_labels,
                  grad_scale=self.scaler_d.get_scale(), epoch=self.progress.epoch)
        logs: dict[str, torch.Tensor] = {}
        if self.D is not None:
            with autocast(self.device, self.dtype):
                loss, out = self.objective.discriminator_loss(self.G, self.D, b)
            if self.step(loss, self.opt_d, self.scaler_d, "discriminator"):
                logs.update(out)
        if train_g:
            if self.D is not None:
                self.D.requires_grad_(False)  # the generator step needs no discriminator weight gradients
            with autocast(self.device, self.dtype):
                loss, out = self.objective.generator_loss(self.G, self.D, b)
            if self.step(loss, self.opt_g, self.scaler_g, "generator"):
                self.update_ema()
                logs.update(out)
            if self.D is not None:
                self.D.requires_grad_(True)
        values = [v.detach().float().reshape(1) for v in logs.values()]
        world.mean_(values)
        return {k: v.item() for k, v in zip(logs, values)}

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, what: str) -> bool:
        """One optimiser step on `loss`; False when it was skipped for an fp16 overflow."""
        value = [loss.detach().float().reshape(1)]
        self.world.mean_(value)  # every process must agree to stop, or the others would wait forever
        scaled = scaler.scale(loss)
        if not torch.isfinite(value[0]) and scaler.get_scale() > 1:
            # With fp16 a loss can hold a gradient taken of scaled outputs (the WGAN-GP penalty): where it is not
            # finite, a lower scale may make it so. Skip the step and halve the scale, as GradScaler does for
            # overflowing weight gradients; past a scale of 1 no scale helps and the run has diverged.
            scaler.update(scaler.get_scale() * scaler.get_backoff_factor())
            return False
        if not torch.isfinite(value[0]):
            raise self.diverged(f"the {what} loss became {value[0].item()}", self.progress.step + 1)
        if value[0].abs() > LOSS_LIMIT:
            raise self.diverged(f"the {what} loss reached {value[0].item():.3g}, past the {LOSS_LIMIT:g} no healthy "
                                "run here reaches: the weights are blowing up", self.progress.step + 1)
        opt.zero_grad(set_to_none=True)
        scaled.backward()
        self.world.mean_([p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None])
        scaler.step(opt)
        scaler.update()
        return True

    def diverged(self, what: str, step: int) -> TrainingDiverged:
        """The error that stops a diverged run, saying plainly how to go on."""
        where = f"at step {step} (epoch {self.progress.epoch + 1})"
        if self.saved_step is None:
            return TrainingDiverged(f"{what} {where}, before any checkpoint was written. Start again with a lower "
                                    "learning rate (--set train.lr=...), or with --set train.precision='fp32'.")
        return TrainingDiverged(
            f"{what} {where}. The last good checkpoint is {self.out / 'checkpoint'} (step {self.saved_step}); nothing "
            "later was saved. To continue from it, run the same command with --resume and a lower learning rate "
            "(--set train.lr=..., and train.lr_d for the discriminator); or start again in a new --out.")

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.G_ema is None:
            return
        # Warm-up: a short run should not ship weights dominated by the random initialisation.
        decay = min(self.run.train.ema_decay, (1 + self.progress.step) / (10 + self.progress.step))
        for e, p in zip(self.G_ema.parameters(), self.G.parameters()):
            e.lerp_(p, 1 - decay)
        for e, b in zip(self.G_ema.buffers(), self.G.buffers()):
            e.copy_(b)

    def decay_learning_rates(self) -> None:
        for opt in (self.opt_g, self.opt_d):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] *= self.run.train.lr_decay

    # ---- outputs -----------------------------------------------------------------------------

    def write_preview(self, *folders: Path) -> None:
        """This epoch's preview grid into samples/ and each checkpoint folder given."""
        image = preview_grid(self.shipped)
        epoch = self.out / ckpt.SAMPLES / f"epoch_{math.ceil(self.history[-1]['epoch']):03d}.png"
        for path in [epoch, *(folder / ckpt.PREVIEW for folder in folders)]:
            ckpt.atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))

    def write_live(self) -> None:
        """A line of live/progress.jsonl and the fixed-seed grid at this step (train/live.py)."""
        p = self.progress
        with self.own_rng():  # as for previews: watching a run must not change it
            frame = preview_grid(self.shipped)
        self.live.write(p.step, self.epochs_done(), p.images_seen, self.elapsed(), frame)

    def data_record(self) -> dict:
        return {k: v for k, v in self.data.describe().items() if k != "split"}

    def training_record(self, seconds: float) -> dict:
        p, cfg = self.progress, self.run.train
        return {"epochs": self.epochs_done(), "steps": p.step,
                "images_seen": p.images_seen, "wall_seconds": round(seconds, 1), "device": str(self.device),
                "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type,
                "processes": self.world.size, "precision": str(self.dtype).replace("torch.", "") if self.dtype else "fp32",
                "torch": torch.__version__, "command": self.command, "config_file": self.run.source_file,
                "train": to_dict(cfg), "objective": to_dict(self.run.objective)}

    def save(self, seconds: float) -> None:
        """Resume state first, then the shippable checkpoint; never weights that are not finite."""
        for name, module in (("generator", self.G), ("generator EMA", self.G_ema), ("discriminator", self.D)):
            if module is not None and ckpt.not_finite(module.state_dict()):
                raise self.diverged(f"the {name} weights hold NaN or infinite values", self.progress.step)
        if not ckpt.samples_finite(self.shipped):
            raise self.diverged("the generator draws NaN or infinite images (its weights have blown up)", self.progress.step)
        self.progress.seconds = seconds
        self.saved_step = self.progress.step
        if not self.world.is_main:
            return
        self.save_resume_state()
        self.save_checkpoint()

    def save_checkpoint(self) -> None:
        ckpt.save(self.shipped, self.out / ckpt.CHECKPOINT, self.run.family, data=self.data_record(),
                  training=self.training_record(self.progress.seconds))

    # ---- resume ------------------------------------------------------------------------------

    def modules(self) -> dict[str, nn.Module | torch.optim.Optimizer | None]:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D, "opt_g": self.opt_g, "opt_d": self.opt_d}

    def save_resume_state(self) -> None:
        tensors, groups = flatten_state(self.modules())
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        save_training_state(self.out / ckpt.RESUME, self.progress.step, tensors, {
            "progress": vars(self.progress), "param_groups": groups, "history": self.history, "best": self.best,
            "run": self.run.to_dict()})

    def resume(self) -> bool:
        """Load resume/ if present. Returns whether there was anything to resume.

        Also clears what a kill can leave behind (temporaries, tensor files state.json does not name) and
        rewrites checkpoint/ from the resumed state, which repairs a checkpoint/ killed between its two files."""
        # Read onto the CPU: modules and optimisers copy what they hold to their own device, but an optimiser keeps its
        # step counters where they were read, and Adam on a GPU with counters there syncs with the host per parameter.
        loaded = load_training_state(self.out / ckpt.RESUME, "cpu", tidy=self.world.is_main)
        if loaded is None:
            return False
        tensors, meta = loaded
        saved, now = dict(meta["run"]), json.loads(json.dumps(self.run.to_dict()))  # tuples compare as lists
        differ = [(key, saved[key], now[key]) for key in ("dataset", "family") if saved[key] != now[key]]
        differ += [(f"{section}.{key}", saved[section].get(key), now[section].get(key))
                   for section in ("model", "train", "objective") for key in sorted(set(saved[section]) | set(now[section]))
                   if saved[section].get(key) != now[section].get(key)
                   and key not in RESUMABLE_CHANGES.get(section, ())]
        if differ:
            said = "; ".join(f"{key} was {json.dumps(was)}, now {json.dumps(is_)}" for key, was, is_ in differ)
            raise ckpt.CheckpointError(f"the run in {self.out} was made with other settings ({said}). Resume with its "
                                       "settings, or start a new run in another --out.")
        restore_state(self.modules(), tensors, meta["param_groups"])
        torch.set_rng_state(tensors["rng.cpu"].cpu())
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
        self.progress = Progress(**meta["progress"])
        self.history = meta["history"]
        self.best = meta.get("best")
        self.saved_step = self.progress.step
        self.set_learning_rates(saved["train"])
        if self.world.is_main:
            for sub in (".", ckpt.CHECKPOINT, ckpt.BEST, ckpt.CANDIDATES, ckpt.SAMPLES, LIVE, f"{LIVE}/{FRAMES}"):
                ckpt.remove_temporaries(self.out / sub)
            self.save_checkpoint()
            self.write_history()
        return True

    def set_learning_rates(self, saved: dict) -> None:
        """Where this run's train.lr or train.lr_d differs from the resumed run's, use the new rate from now on
        (decayed as many epochs as have passed); otherwise keep the optimisers' own, for a bit-exact resume."""
        cfg = self.run.train
        if (saved["lr"], saved["lr_d"]) == (cfg.lr, cfg.lr_d):
            return
        for opt, lr in ((self.opt_g, cfg.lr), (self.opt_d, cfg.lr_d or cfg.lr)):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = lr * cfg.lr_decay ** self.progress.epoch
