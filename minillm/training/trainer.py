"""The training loop: the seven steps of training a language model, repeated.

    for step in range(max_steps):
        batch  = task.batch("train", rng)              # 1. data (tokenised, encoded, batched)
        loss   = task.loss(model, batch)               # 2-3. forward pass and loss
        model.zero_grad(); task.backward(model)        # 4. backward pass (hand-written)
        clip_grad_norm(params, grad_clip)              #    keep one bad batch from wrecking the weights
        opt.set_lr(lr_schedule(step)); opt.step()      # 5. parameter update
        every eval_interval: validation loss, perplexity, checkpoint   # 6. validate, save

Writes to ``out_dir``: ``log.csv`` (step,elapsed_s,lr,train_loss,val_loss,tokens_per_s),
``loss.png`` (the curves) and ``ckpt.npz`` (see checkpoint.py). Resuming restores weights,
optimizer moments, step, elapsed time and both random generators (batches and dropout), so a
resumed run reproduces the uninterrupted one exactly (NumPy backend). A NaN or infinite loss
stops training with a message naming the step and leaves the last good checkpoint untouched.
"""
import csv
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import backend
from ..files import written_whole
from . import distributed
from .checkpoint import CheckpointError, checkpoint_path, load_checkpoint, save_checkpoint
from .interrupt import StopRequests, TrainingInterrupted
from .lock import FolderLock
from .optim import clip_grad_norm, lr_schedule, noam_schedule
from .parallel import DataParallel, auto_threads

LOG_COLUMNS = ["step", "elapsed_s", "lr", "train_loss", "val_loss", "tokens_per_s"]


@dataclass
class TrainConfig:
    """How long and how fast to train. schedule "cosine": linear warm-up over warmup_steps to lr, then
    cosine to min_lr at max_steps; "noam": the Transformer paper's warm-up, then lr * sqrt(warmup / step)."""
    max_steps: int = 1000         # also the length of the cosine schedule
    max_seconds: float = 0.0      # stop early after this much training time (0: no limit)
    lr: float = 1e-3
    min_lr: float = 1e-4          # the cosine schedule ends here
    warmup_steps: int = 100
    grad_clip: float = 1.0
    eval_interval: int = 100
    eval_batches: int = 10
    log_interval: int = 10
    seed: int = 0
    schedule: str = "cosine"      # or "noam" (optim.noam_schedule)
    threads: object = "auto"      # data-parallel CPU threads, one batch shard each (parallel.py);
    #                               "auto": one per core (at most one per batch row), 1: none

    def __post_init__(self):
        """Each field in its range, named in the error (eval_interval = 0 would divide by zero)."""
        for name in ("max_steps", "eval_interval", "eval_batches", "log_interval", "threads"):
            value = getattr(self, name)
            if name == "threads" and value == "auto":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                also = " or 'auto'" if name == "threads" else ""
                raise ValueError(f"TrainConfig: {name} must be an integer >= 1{also}, got {value!r}")
        for name, low in (("max_seconds", 0.0), ("lr", None), ("min_lr", 0.0), ("grad_clip", 0.0)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and
                    (value > 0 if low is None else value >= low)):
                raise ValueError(f"TrainConfig: {name} must be a finite number {'> 0' if low is None else '>= 0'}, "
                                 f"got {value!r}")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"TrainConfig: warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if self.schedule not in ("cosine", "noam"):
            raise ValueError(f"TrainConfig: schedule must be 'cosine' or 'noam', got {self.schedule!r}")
        backend.check_seed(self.seed, "TrainConfig: seed")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Trainer:
    """Runs a task's training loop on a model with an optimizer; ``meta`` describes the model for checkpoints.

    Under an MPI launcher (``mpiexec -n N``) each process runs this loop on its rows of every batch
    and the gradients are summed over the processes (distributed.py); only rank 0 prints and writes.
    """

    def __init__(self, model, task, optimizer, config, out_dir, meta, quiet=False, world=None):
        self.world = world or distributed.world()
        if self.world.size > 1:
            task = distributed.ShardedTask(task, self.world)
        self.model, self.task, self.opt, self.cfg = model, task, optimizer, config
        # what forward and backward run through: the model, or its replicas on config.threads cores
        local_rows = -(-task.batch_size // self.world.size)
        self.threads = (auto_threads(local_rows, distributed.cores_per_rank(self.world), model)
                        if config.threads == "auto" else config.threads)
        self.net = DataParallel(model, self.threads) if self.threads > 1 else model
        self.out = Path(out_dir)
        self.meta = meta
        self.quiet = quiet or not self.world.is_main
        self.step, self.elapsed = 0, 0.0
        self.rng = np.random.default_rng(config.seed)         # batch sampling
        self.history = []                                      # (step, train_loss) of every step run here
        self.last_val = None

    # ------------------------------------------------------------------ checkpoints
    def save(self):
        """Write a checkpoint (weights, optimizer state, step, elapsed time, both RNG states) atomically to
        out_dir; on rank 0 only, the other ranks holding the same state."""
        if not self.world.is_main:
            return
        meta = {**self.meta, "step": self.step, "elapsed_s": self.elapsed, "train_config": asdict(self.cfg),
                "rng_batches": self.rng.bit_generator.state, "rng_init": backend.cpu_rng().bit_generator.state,
                "val_loss": self.last_val}
        save_checkpoint(self.out, self.model, meta, self.opt)

    def resume(self):
        """Restore everything from out_dir/ckpt.npz; returns the step to continue from."""
        meta, state, optim = load_checkpoint(self.out, expected_kind=self.meta.get("kind"))
        if meta.get("model_config") != self.meta.get("model_config"):
            raise ValueError(f"checkpoint {checkpoint_path(self.out)} was made with model config "
                             f"{meta.get('model_config')}, not {self.meta.get('model_config')}")
        where = f"checkpoint {checkpoint_path(self.out)}"
        missing = [k for k in ("optimizer_step", "step", "elapsed_s", "rng_batches", "rng_init") if k not in meta]
        if missing:
            raise CheckpointError(f"{where} cannot be resumed: its metadata has no {missing[0]!r}")
        for name in ("optimizer_step", "step"):
            if isinstance(meta[name], bool) or not isinstance(meta[name], int) or meta[name] < 0:
                raise CheckpointError(f"{where}: {name} must be an integer >= 0, got {meta[name]!r}")
        if isinstance(meta["elapsed_s"], bool) or not isinstance(meta["elapsed_s"], (int, float)) \
                or not 0 <= meta["elapsed_s"] < math.inf:
            raise CheckpointError(f"{where}: elapsed_s must be a finite number >= 0, got {meta['elapsed_s']!r}")
        val = meta.get("val_loss")
        if val is not None and (isinstance(val, bool) or not isinstance(val, (int, float))):
            raise CheckpointError(f"{where}: val_loss must be a number or null, got {val!r}")
        try:                    # the arrays and generator states are checked by the objects they go into
            self.model.load_state_dict(state)
            self.opt.load_state_arrays(optim, meta["optimizer_step"])
            self.rng.bit_generator.state = meta["rng_batches"]
            backend.cpu_rng().bit_generator.state = meta["rng_init"]
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{where} cannot be resumed: {str(e).strip()}") from None
        self.step, self.elapsed, self.last_val = meta["step"], float(meta["elapsed_s"]), meta.get("val_loss")
        return self.step

    # ------------------------------------------------------------------ evaluation
    def evaluate(self):
        """Mean validation loss over eval_batches batches drawn with a fixed seed (comparable across evals)."""
        rng = np.random.default_rng(self.cfg.seed + 1)
        self.model.eval()
        losses = [self.task.loss(self.net, self.task.batch("val", rng)) for _ in range(self.cfg.eval_batches)]
        self.model.train()
        self.model.cache = None
        val = float(np.mean(losses))
        if not math.isfinite(val):      # never save weights that give a non-finite loss
            raise TrainingDiverged(f"validation loss became {val} at step {self.step}; training stopped. The last "
                                   f"good checkpoint ({checkpoint_path(self.out)}, if any) was kept. Try a smaller --lr.")
        return val

    # ------------------------------------------------------------------ the loop
    def train_step(self):
        """Batch, forward + loss, zero_grad, backward, clip, lr schedule, optimizer step -> (loss, lr)."""
        batch = self.task.batch("train", self.rng)
        loss = self.task.loss(self.net, batch)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} at step {self.step}; training stopped. The last good checkpoint "
                f"({checkpoint_path(self.out)}, if any) was kept. Try a smaller --lr.")
        self.model.zero_grad()
        self.task.backward(self.net)
        params = self.model.parameters()
        if self.cfg.grad_clip:
            clip_grad_norm(params, self.cfg.grad_clip)
        if self.cfg.schedule == "noam":
            lr = noam_schedule(self.step, self.cfg.lr, self.cfg.warmup_steps)
        else:
            lr = lr_schedule(self.step, self.cfg.lr, self.cfg.warmup_steps, self.cfg.max_steps, self.cfg.min_lr)
        self.opt.set_lr(lr)
        self.opt.step()
        return loss, lr

    def run(self, stop_step=None):
        """Train until max_steps (or stop_step, or max_seconds); returns the last validation loss.

        The output folder is locked for the run (lock.py). Ctrl-C or SIGTERM finishes the current
        step, writes a checkpoint and raises TrainingInterrupted (interrupt.py)."""
        self.world.check_same_weights(self.model.parameters())
        stop = min(self.cfg.max_steps, stop_step or self.cfg.max_steps)
        if not self.world.is_main:                 # rank 0 owns the folder; the others only compute
            with StopRequests() as requests:
                return self._run(stop, requests)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot create the output folder {self.out} ({e.strerror})") from None
        with FolderLock(self.out), StopRequests() as requests:
            return self._run(stop, requests)

    def _run(self, stop, requests):
        """The loop of run(): steps, logging, evaluation and checkpoints until ``stop``."""
        log_path = self.out / "log.csv"
        log, writer = self._open_log(log_path)
        self.model.train()
        t_start, tokens, t_window = time.perf_counter() - self.elapsed, 0, time.perf_counter()
        try:
            while self.step < stop:
                loss, lr = self.train_step()
                self.step += 1
                self.history.append((self.step, loss))
                tokens += self.task.tokens_per_batch
                self.elapsed = time.perf_counter() - t_start
                do_eval = self.step % self.cfg.eval_interval == 0 or self.step == stop
                if self.step % self.cfg.log_interval == 0 or do_eval:
                    tps = tokens / max(time.perf_counter() - t_window, 1e-9)
                    tokens, t_window = 0, time.perf_counter()
                    val = self.evaluate() if do_eval else None
                    if val is not None:
                        self.last_val = val
                    writer.writerow([self.step, f"{self.elapsed:.2f}", f"{lr:.6g}", f"{loss:.5f}",
                                     "" if val is None else f"{val:.5f}", f"{tps:.0f}"])
                    log.flush()
                    self._progress(loss, val, tps, stop)
                    if do_eval:
                        self.save()
                signalled, time_up = self._agree(bool(requests.requested),
                                                 bool(self.cfg.max_seconds and self.elapsed >= self.cfg.max_seconds))
                if signalled:                        # a signal arrived during this step: save, then stop
                    self.save()
                    raise TrainingInterrupted(self.step, self.out, saved=True)
                if time_up:
                    if self.step % self.cfg.eval_interval:        # finish with an evaluation and a checkpoint
                        self.last_val = self.evaluate()
                        writer.writerow([self.step, f"{self.elapsed:.2f}", f"{lr:.6g}", f"{loss:.5f}",
                                         f"{self.last_val:.5f}", ""])
                        self.save()
                    self._say(f"\nstopped after {self.elapsed:.0f} s (--max-seconds) at step {self.step}")
                    break
        finally:
            log.close()
            if not self.quiet:
                sys.stderr.write("\n")
        if self.world.is_main:
            plot_log(log_path, self.out / "loss.png")
        return self.last_val

    def _open_log(self, log_path):
        """log.csv opened for this run (rank 0; the other ranks write to nowhere) and its csv writer."""
        if not self.world.is_main:
            log = open(os.devnull, "w", newline="", encoding="utf-8")
            return log, csv.writer(log)
        new_log = self.step == 0 or not log_path.exists()
        if not new_log:                 # resuming: rows logged after the checkpoint's step are replayed anew
            keep_log_until(log_path, self.step)
        log = open(log_path, "w" if new_log else "a", newline="", encoding="utf-8")
        writer = csv.writer(log)
        if new_log:
            writer.writerow(LOG_COLUMNS)
        return log, writer

    def _agree(self, *flags):
        """Each flag true if it is true on any rank: every rank stops at the same step (a signal or
        the time limit may reach the ranks a step apart)."""
        if self.world.size == 1:
            return flags
        return tuple(v > 0 for v in self.world.sum_floats(*map(float, flags), what="the stop check"))

    def _say(self, text):
        if not self.quiet:
            sys.stderr.write(text)
            sys.stderr.flush()

    def _progress(self, loss, val, tps, stop):
        done = self.step / stop
        bar = "=" * int(24 * done) + ">" + " " * (24 - int(24 * done))
        eta = (stop - self.step) * (self.elapsed / max(self.step, 1))
        if self.cfg.max_seconds:
            eta = min(eta, max(self.cfg.max_seconds - self.elapsed, 0))
        text = (f"step {self.step:>6}/{stop} [{bar[:25]}] loss {loss:.4f}"
                + (f" | val {val:.4f} (ppl {math.exp(min(val, 50)):.1f})" if val is not None else "")
                + f" | {tps:,.0f} tok/s | ETA {int(eta // 60)}m{int(eta % 60):02d}s")
        end = "\n" if (val is not None or not sys.stderr.isatty()) else ""
        self._say(("\r" if sys.stderr.isatty() else "") + text + end)


def keep_log_until(log_path, step):
    """Drop the rows of log.csv after ``step`` (a run stopped between two checkpoints logged steps
    that the resumed run will log again). Written to a temporary file and renamed."""
    with open(log_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
    with written_whole(log_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(kept)


def plot_log(log_path, png_path):
    """Draw train and validation loss from log.csv into a PNG (matplotlib, no display needed).

    A bare ``Figure`` (not pyplot) draws without choosing a GUI backend, so calling this inside a
    notebook leaves the notebook's own plotting alone."""
    from matplotlib.figure import Figure
    with open(log_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(steps, [float(r["train_loss"]) for r in rows], label="train loss", lw=1)
    val = [(int(r["step"]), float(r["val_loss"])) for r in rows if r["val_loss"]]
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with written_whole(png_path) as tmp:
        fig.savefig(tmp, dpi=110)
