"""Fused attention kernel vs naive CuPy attention vs PyTorch SDPA, float32, on one GPU.

    python benchmarks/attention_gpu.py            # full table (B=4, H=12, d in {64, 128})
    python benchmarks/attention_gpu.py --quick    # a few sizes

For each head size d, length T and causal flag, prints milliseconds for the forward
pass and for forward + backward, the achieved TFLOP/s (forward 4*B*H*T^2*d, halved
when causal; backward counted as 2.5x forward), the peak size of CuPy's memory pool
during one forward + backward, and the ratios naive/fused and torch/fused (> 1 means
the fused kernel is faster). Naive = the plain formula of minillm/nn/attention.py on
CuPy (scores materialised); OOM marks a run that did not fit in GPU memory.
Times are medians of CUDA-event timings after a warm-up.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def time_ms(fn, min_reps=3, budget_s=0.5):
    """Median CUDA-event time of fn() in ms, after one warm-up call."""
    import cupy
    fn()
    cupy.cuda.Device().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    t0 = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - t0 < budget_s and len(times) < 50):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return float(np.median(times))


def minillm_cases(q, k, v, do, causal, fused):
    from minillm.nn import attention
    os.environ["MINILLM_KERNELS"] = "auto" if fused else "plain"

    def fwd():
        return attention.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def fwd_bwd():
        out, cache = fwd()
        return attention.scaled_dot_product_attention_backward(do, cache)
    return fwd, fwd_bwd


def torch_cases(q, k, v, do, causal):
    import torch
    import torch.nn.functional as F
    tq, tk, tv, tdo = (torch.as_tensor(a, device="cuda").requires_grad_(True) for a in (q, k, v, do))

    def fwd():
        with torch.no_grad():
            return F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)

    def fwd_bwd():
        out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
        return torch.autograd.grad(out, (tq, tk, tv), tdo)
    return fwd, fwd_bwd


def measure(make, *args):
    """(fwd ms, fwd+bwd ms, peak pool bytes) or None on out-of-memory."""
    import cupy
    pool = cupy.get_default_memory_pool()
    try:
        fwd, fwd_bwd = make(*args)
        pool.free_all_blocks()
        base = pool.total_bytes()
        fwd_bwd()
        cupy.cuda.Device().synchronize()
        peak = pool.total_bytes() - base
        return time_ms(fwd), time_ms(fwd_bwd), peak
    except cupy.cuda.memory.OutOfMemoryError:
        return None
    finally:
        pool.free_all_blocks()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only d=64, T in {1024, 2048, 4096}")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--dq-mode", choices=["atomic", "two_pass"], default="atomic",
                    help="how the fused backward computes dQ (see kernels/cuda/__init__.py)")
    args = ap.parse_args()
    os.environ["MINILLM_ATTN_DQ"] = args.dq_mode
    import cupy
    import minillm
    minillm.use("cupy")
    try:
        import torch
        has_torch = torch.cuda.is_available()
    except ImportError:
        has_torch = False
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"device: {props['name'].decode()}  date: {time.strftime('%Y-%m-%d')}  cupy {cupy.__version__}"
          + (f"  torch {torch.__version__}" if has_torch else "  (no torch)"))
    print(f"B={args.batch} H={args.heads} float32, dQ mode {args.dq_mode}; TFLOP/s: forward 4BHT^2d (/2 causal), backward 2.5x forward")
    dims = [64] if args.quick else [64, 128]
    lengths = [1024, 2048, 4096] if args.quick else [256, 512, 1024, 2048, 4096, 8192, 16384]
    hdr = (f"{'d':>4} {'T':>6} {'causal':>6} | {'fused fwd':>9} {'TF/s':>5} {'f+b':>8} {'TF/s':>5} {'MiB':>7} | "
           f"{'naive fwd':>9} {'f+b':>8} {'MiB':>7} | {'torch fwd':>9} {'f+b':>8} | "
           f"{'naive/fused fwd':>15} {'f+b':>5} | {'torch/fused fwd':>15} {'f+b':>5}")
    print(hdr)
    print("-" * len(hdr))
    rng = cupy.random.default_rng(0)
    for d in dims:
        for T in lengths:
            for causal in (True, False):
                B, H = args.batch, args.heads
                q, k, v, do = (rng.standard_normal((B, H, T, d), dtype=cupy.float32) for _ in range(4))
                flops = 4.0 * B * H * T * T * d / (2 if causal else 1)
                fused = measure(minillm_cases, q, k, v, do, causal, True)
                naive = measure(minillm_cases, q, k, v, do, causal, False)
                tor = measure(torch_cases, q, k, v, do, causal) if has_torch else None

                def cell(r, i, w=8):
                    return f"{'OOM' if r is None else f'{r[i]:.3f}':>{w}}"

                def mib(r):
                    return f"{'OOM' if r is None else f'{r[2] / 2**20:.0f}':>7}"

                def ratio(a, b, i, w):
                    return f"{'-' if a is None or b is None else f'{a[i] / b[i]:.2f}x':>{w}}"
                tf_f = f"{flops / fused[0] / 1e9:5.1f}" if fused else "    -"
                tf_fb = f"{3.5 * flops / fused[1] / 1e9:5.1f}" if fused else "    -"
                print(f"{d:>4} {T:>6} {str(causal):>6} | {cell(fused, 0, 9)} {tf_f} {cell(fused, 1)} {tf_fb} {mib(fused)} | "
                      f"{cell(naive, 0, 9)} {cell(naive, 1)} {mib(naive)} | {cell(tor, 0, 9)} {cell(tor, 1)} | "
                      f"{ratio(naive, fused, 0, 15)} {ratio(naive, fused, 1, 5)} | "
                      f"{ratio(tor, fused, 0, 15)} {ratio(tor, fused, 1, 5)}", flush=True)
                del q, k, v, do
                cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
