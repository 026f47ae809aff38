"""The exact GELU (BERT's) on the CPU: minillm's erfc against the ways it could be computed before,
and against PyTorch, in one run.

    python benchmarks/exact_gelu.py

NumPy has no erf. Before minillm/nn/special.py, the exact GELU used SciPy's erf when SciPy was
installed and Python's math.erf element by element otherwise (a fresh install has no SciPy).
This script times GELU forward + backward at BERT pre-training's shape (batch 128, block 64,
feed-forward 512) for each way, and PyTorch's (same threads as NumPy's BLAS), then a whole BERT
masked-LM training step (the CPU pre-training config of the README) with each way swapped in,
the steps of the variants interleaved so that a drifting machine favours none.
"""
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minillm                                                   # noqa: E402
from cpu import blas_threads                                     # noqa: E402  (benchmarks/cpu.py)
from minillm.nn import activations                               # noqa: E402

SHAPE = (128, 64, 512)


def erf_variant(erf):
    """gelu_forward / gelu_backward of the exact form written with the given erf: Phi = (1 + erf(x/sqrt2))/2."""
    new_fwd, new_bwd = activations.gelu_forward, activations.gelu_backward

    def forward(x, approximate="tanh"):
        if approximate == "tanh":
            return new_fwd(x, approximate)
        phi = 0.5 * (1.0 + erf(x * (1 / math.sqrt(2))))
        return x * phi, ("erf", x, phi)

    def backward(dout, cache):
        if cache[0] != "erf":
            return new_bwd(dout, cache)
        _, x, phi = cache
        return dout * (phi + x * np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi)))
    return forward, backward


def variants():
    out = {"math.erf per element (no SciPy)": erf_variant(
        lambda z: np.frompyfunc(math.erf, 1, 1)(z).astype(z.dtype))}
    try:
        from scipy.special import erf as scipy_erf
        out["SciPy erf"] = erf_variant(lambda z: scipy_erf(z).astype(z.dtype, copy=False))
    except ImportError:
        pass
    out["minillm erfc"] = (activations.gelu_forward, activations.gelu_backward)
    return out


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gelu_times(ways):
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    ones = np.ones_like(x)
    result = {}
    for name, (fwd, bwd) in ways.items():
        result[name] = best_time(lambda: bwd(ones, fwd(x, "none")[1]), 3 if "per element" in name else 7)
    try:
        import torch
        torch.set_num_threads(blas_threads())
        tx, tg = torch.from_numpy(x), torch.from_numpy(ones)

        def torch_gelu():
            t = tx.clone().requires_grad_(True)
            torch.nn.functional.gelu(t).backward(tg)
        result["PyTorch"] = best_time(torch_gelu, 7)
    except ImportError:
        pass
    return result


def bert_step_times(ways, rounds=3):
    from minillm.models import BertConfig, BertForMaskedLM
    from minillm.nn import CrossEntropyLoss
    from minillm.training.optim import AdamW, param_groups
    minillm.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=1024, max_position=64, n_layer=4, n_head=4, n_embd=128,
                                       dropout=0.1))
    opt, loss_fn = AdamW(param_groups(model, 0.01), lr=1e-3), CrossEntropyLoss(ignore_index=-100)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1024, (128, 64))
    labels = np.where(rng.random((128, 64)) < 0.15, ids, -100)

    def step():
        loss_fn(model(ids), labels)
        model.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    result = {name: [] for name in ways}
    for _ in range(rounds):
        for name, (fwd, bwd) in ways.items():
            activations.gelu_forward, activations.gelu_backward = fwd, bwd
            step()
            result[name].append(best_time(step, 2))
    activations.gelu_forward, activations.gelu_backward = ways["minillm erfc"]
    return {name: min(v) for name, v in result.items()}


def main():
    ways = variants()
    g = gelu_times(ways)
    ours = g["minillm erfc"]
    print(f"exact GELU forward + backward, float32 {SHAPE}:")
    for name, t in g.items():
        print(f"  {name:34s} {t * 1e3:7.1f} ms   {t / ours:5.2f}x minillm's time")
    steps = bert_step_times(ways)
    print("BERT masked-LM training step (batch 128, block 64, 4 layers, 128 wide, vocabulary 1024, AdamW):")
    for name, t in steps.items():
        print(f"  {name:34s} {t:6.3f} s  {128 * 64 / t:7,.0f} tokens/s   {t / steps['minillm erfc']:4.2f}x minillm's time")


if __name__ == "__main__":
    main()
