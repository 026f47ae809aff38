"""Throughput of data parallelism over MPI ranks: N ranks with one BLAS thread each against one
process with one BLAS thread, on the same global batch, measured in one run.

    python benchmarks/distributed.py [--ranks 2] [--steps 40] [--rounds 3]

Cases (GPT, AdamW, float32, dropout 0, the char vocabulary of the built-in corpus):
  recipe   `minillm train`'s defaults: 4 layers, n_embd 128, 4 heads, block 64, batch 12
  wide     benchmarks/cpu.py's GPT: 4 layers, n_embd 256, 4 heads, block 128, batch 16

Each measurement is a fresh launch (`mpiexec -n N` for N > 1) that trains 5 warm-up steps and
then ``--steps`` timed ones through Trainer.train_step; the two sides alternate for ``--rounds``
rounds and each keeps its best. Printed per case: ms per step, tokens/s, the ratio, and the
share of a step the gradient all-reduce takes (time inside it, waiting for the slower rank
included). Needs mpi4py and mpiexec (pip install "minillm[mpi]").
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

CASES = {"recipe": dict(n_layer=4, n_embd=128, n_head=4, block_size=64, batch=12),
         "wide": dict(n_layer=4, n_embd=256, n_head=4, block_size=128, batch=16)}
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def worker(case, steps):
    """Train ``case`` for 5 + steps steps on this rank; rank 0 prints one JSON line."""
    import numpy as np
    from minillm import backend
    from minillm.models import GPT, GPTConfig
    from minillm.tokenizers import CharTokenizer
    from minillm.training import data, distributed
    from minillm.training.optim import AdamW, param_groups
    from minillm.training.tasks import LMTask
    from minillm.training.trainer import TrainConfig, Trainer
    c = CASES[case]
    world = distributed.world()
    backend.manual_seed(0)
    text = data.builtin_corpus()[:400_000]
    tokenizer = CharTokenizer.train(text)
    ids = np.array(tokenizer.encode(text), dtype=np.int64)
    train_ids, val_ids = data.train_val_split(ids)
    model = GPT(GPTConfig(tokenizer.vocab_size, c["block_size"], c["n_layer"], c["n_head"], c["n_embd"]))
    task = LMTask(train_ids, val_ids, c["block_size"], c["batch"])
    opt = AdamW(param_groups(model, 0.1), lr=1e-3)
    trainer = Trainer(model, task, opt, TrainConfig(max_steps=10 ** 6, threads=1), "unused", {}, quiet=True)
    for _ in range(5):
        trainer.train_step()
    world.barrier()
    reduce_before, start = world.reduce_seconds, time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    seconds = time.perf_counter() - start
    if world.is_main:
        print(json.dumps({"ms_per_step": 1000 * seconds / steps, "tokens_per_s": task.tokens_per_batch * steps / seconds,
                          "reduce_share": (world.reduce_seconds - reduce_before) / seconds, "ranks": world.size}))


def measure(case, ranks, steps):
    """One launch of the worker on ``ranks`` processes: its JSON result."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", case, "--steps", str(steps)]
    if ranks > 1:
        command = [shutil.which("mpiexec") or "mpiexec", "-n", str(ranks)] + command
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **ONE_THREAD), timeout=900)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine():
    """CPU model (benchmarks/cpu.py's cpu_name), core count and Python version, for the header."""
    from cpu import cpu_name                                    # benchmarks/cpu.py, beside this script
    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cases", default="recipe,wide")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.steps)
    import mpi4py
    from mpi4py import MPI
    print(f"machine: {machine()}; mpi4py {mpi4py.__version__}, {MPI.Get_library_version().splitlines()[0].strip()}")
    print(f"{'case':<8} {'1 rank ms/step':>15} {f'{args.ranks} ranks ms/step':>16} {'tokens/s 1':>11} "
          f"{f'tokens/s {args.ranks}':>11} {'ratio':>6} {'all-reduce share':>17}")
    for case in args.cases.split(","):
        best = {}
        for _ in range(args.rounds):
            for ranks in (1, args.ranks):
                r = measure(case, ranks, args.steps)
                if ranks not in best or r["ms_per_step"] < best[ranks]["ms_per_step"]:
                    best[ranks] = r
        one, many = best[1], best[args.ranks]
        print(f"{case:<8} {one['ms_per_step']:>15.1f} {many['ms_per_step']:>16.1f} {one['tokens_per_s']:>11,.0f} "
              f"{many['tokens_per_s']:>11,.0f} {many['tokens_per_s'] / one['tokens_per_s']:>5.2f}x "
              f"{100 * many['reduce_share']:>16.1f}%")


if __name__ == "__main__":
    main()
