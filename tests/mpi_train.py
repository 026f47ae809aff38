"""A tiny training run for tests/test_distributed.py, started with or without ``mpiexec -n N``.

    python tests/mpi_train.py --out DIR [--model gpt|lstm] [--steps 8] [--stop-at 4] [--resume]
        [--dropout 0.1] [--dtype float64] [--die-rank R --die-at S --die-how kill|raise|hang]

Rank 0 writes DIR/result.npz: the loss of every step run and the final weights.
"""
import argparse
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minillm import backend  # noqa: E402
from minillm.models import GPT, LSTMLM, GPTConfig, LSTMConfig  # noqa: E402
from minillm.training import distributed  # noqa: E402
from minillm.training.optim import AdamW  # noqa: E402
from minillm.training.tasks import LMTask  # noqa: E402
from minillm.training.trainer import TrainConfig, Trainer  # noqa: E402


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="gpt", choices=["gpt", "lstm"])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--stop-at", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--batch-size", type=int, default=6)
    p.add_argument("--die-rank", type=int, default=None)
    p.add_argument("--die-at", type=int, default=3)
    p.add_argument("--die-how", default="kill", choices=["kill", "raise", "hang"])
    return p.parse_args()


class Dying(Trainer):
    """A trainer whose rank ``die_rank`` is killed (or raises) at step ``die_at``."""

    def train_step(self):
        if self.world.rank == self.die_rank and self.step == self.die_at:
            if self.die_how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.die_how == "hang":
                time.sleep(3600)
            raise RuntimeError(f"rank {self.world.rank} fails on purpose at step {self.step}")
        return super().train_step()


def main():
    args = parse()
    world = distributed.world()
    backend.manual_seed(0)
    stream = np.random.default_rng(1).integers(0, 13, 4000)
    if args.model == "gpt":
        model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=args.dropout))
    else:
        model = LSTMLM(LSTMConfig(13, 6, 8, 2, dropout=args.dropout))
    model = model.to(dtype=np.dtype(args.dtype))
    task = LMTask(stream[:3000], stream[3000:], 8, args.batch_size)
    opt = AdamW(model.parameters(), lr=1e-2)
    config = TrainConfig(max_steps=args.steps, lr=1e-2, warmup_steps=2, eval_interval=4, eval_batches=2,
                         log_interval=1, threads=1)
    trainer = Dying(model, task, opt, config, args.out, {"kind": args.model, "model_config": {}}, quiet=True)
    trainer.die_rank, trainer.die_at, trainer.die_how = args.die_rank, args.die_at, args.die_how
    if args.resume:
        trainer.resume()
    try:
        trainer.run(stop_step=args.stop_at)
    except Exception as e:
        print(f"error: {e}", file=sys.stderr)
        world.abort(1)
        raise
    if world.is_main:
        weights = {f"w.{k}": v for k, v in model.state_dict().items()}
        np.savez(Path(args.out) / "result.npz", losses=np.array([loss for _, loss in trainer.history]), **weights)


if __name__ == "__main__":
    main()
