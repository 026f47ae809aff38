"""Softmax and log-softmax forward + backward on the CPU: the lesson, the compiled kernel
(kernels/cpu/fused_softmax.py) and PyTorch, in one run.

    python benchmarks/softmax.py

Two shapes: a language model's logits (2048 tokens x 256) and a batch of attention weights
(16 x 4 heads x 128 x 128). Each implementation runs forward + backward in turn, round after
round, and keeps its best time, so a drifting machine favours none. PyTorch runs as many
threads as NumPy's BLAS.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cpu import blas_threads, cpu_name                                     # noqa: E402  (benchmarks/cpu.py)
from minillm.kernels.cpu import jit                              # noqa: E402
from minillm.nn import activations                               # noqa: E402

SHAPES = [(2048, 256), (16, 4, 128, 128)]
ROUNDS, REPEATS = 5, 10


def minillm_step(op, x, dout, mode):
    """forward + backward of ``op`` with MINILLM_KERNELS=mode."""
    forward, backward = getattr(activations, f"{op}_forward"), getattr(activations, f"{op}_backward")

    def step():
        os.environ["MINILLM_KERNELS"] = mode
        backward(dout, forward(x)[1])
    return step


def torch_step(op, x, dout):
    import torch
    tx, td = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dout)
    fn = getattr(torch, op)

    def step():
        tx.grad = None
        fn(tx, -1).backward(td)
    return step


def best_ms(steps):
    """{name: best milliseconds of one call}, the steps interleaved for ROUNDS rounds."""
    best = {name: float("inf") for name in steps}
    for _ in range(ROUNDS):
        for name, step in steps.items():
            step()                                               # warm: the first call compiles
            t0 = time.perf_counter()
            for _ in range(REPEATS):
                step()
            best[name] = min(best[name], (time.perf_counter() - t0) / REPEATS * 1e3)
    return best


def main():
    rng = np.random.default_rng(0)
    try:
        import torch
        torch.set_num_threads(blas_threads())
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, BLAS threads {blas_threads()}; NumPy "
          f"{np.__version__}; PyTorch {torch_version}; {jit.describe()}; date {time.strftime('%Y-%m-%d')}")
    print(f"{'op':12s} {'shape':18s} {'lesson ms':>10s} {'kernel ms':>10s} {'torch ms':>9s} "
          f"{'lesson/kernel':>14s} {'torch/kernel':>13s}")
    for shape in SHAPES:
        x = (rng.standard_normal(shape) * 4).astype(np.float32)
        dout = rng.standard_normal(shape).astype(np.float32)
        for op in ("softmax", "log_softmax"):
            steps = {"lesson": minillm_step(op, x, dout, "plain"), "kernel": minillm_step(op, x, dout, "auto")}
            if torch_version:
                steps["torch"] = torch_step(op, x, dout)
            t = best_ms(steps)
            torch_ms = t.get("torch", float("nan"))
            print(f"{op:12s} {str(shape):18s} {t['lesson']:10.2f} {t['kernel']:10.2f} {torch_ms:9.2f} "
                  f"{t['lesson'] / t['kernel']:14.2f} {torch_ms / t['kernel']:13.2f}")
    os.environ.pop("MINILLM_KERNELS", None)


if __name__ == "__main__":
    main()
