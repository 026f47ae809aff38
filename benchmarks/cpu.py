"""CPU speed: minillm (NumPy) next to the same network in PyTorch (CPU), measured in one run.

    python benchmarks/cpu.py [--seconds 10] [--cases gpt,gpt-dp,lstm,lstm-dp,generate,attention]

Cases:
  gpt        GPT training step: n_layer 4, n_embd 256, n_head 4, block 128, batch 16, vocab 256,
             AdamW, float32, dropout 0 (forward + backward + optimizer step)
  lstm       the article's LSTM LM: vocab 256, embedding 128, hidden 256, T 64, batch 32, Adam
  gpt-dp, lstm-dp   the same two, minillm through DataParallel (one replica per BLAS thread)
  generate   512 new tokens from the GPT above (greedy), with and without the KV cache
  attention  scaled dot-product attention forward + backward, causal, B 4, H 8, D 64, T 128/512/1024/2048

Each row shows three implementations: minillm's lesson code alone (plain: MINILLM_KERNELS=plain),
minillm with its engine kernels (kernels: the default), and PyTorch. Each (case, implementation)
runs in its own subprocess, so threads and peak memory are its own;
the implementations alternate for ``--rounds`` rounds and each keeps its best round (machines
shared with other work drift by 10-30 % over a minute; alternating exposes both to the same drift).
PyTorch gets ``torch.set_num_threads`` equal to NumPy's BLAS threads. For each row the script
prints tokens/s, the ratio minillm / PyTorch, achieved GFLOP/s and its fraction of this machine's
float32 matmul peak (measured here with one large matmul), and the peak resident memory: both the
process's and the part above what it held after importing its library (the model and its work).
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

# As minillm sets it when it is imported before NumPy (the command line always is): OpenBLAS's idle
# threads spin 2^20 cycles, not 2^28, after a product (minillm/__init__.py). This script loads
# NumPy first, so it sets the same here.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import numpy as np  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

GPT = dict(n_layer=4, n_embd=256, n_head=4, block_size=128, vocab_size=256, batch=16)
LSTM = dict(vocab=256, emb=128, hidden=256, T=64, batch=32)
ATT = dict(B=4, H=8, D=64)


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib():
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(step, seconds, warmup=3):
    """Run step() a few times untimed, then for at least ``seconds``; return the median seconds
    per call (the median, not the mean, so a burst from another process on a shared machine
    does not decide the figure)."""
    for _ in range(warmup):
        step()
    times, t0 = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - t0 < seconds:
        t1 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t1)
    return float(np.median(times))


def gpt_flops_per_token(c=GPT):
    """Training FLOPs per token: 6 per parameter touched by a matmul + attention (PaLM appendix B)."""
    C, L, T, V = c["n_embd"], c["n_layer"], c["block_size"], c["vocab_size"]
    n_matmul = L * 12 * C * C + V * C
    return 6 * n_matmul + 6 * L * T * C     # causal: half of 12 L T C


def lstm_flops_per_token(c=LSTM):
    E, Hd, V = c["emb"], c["hidden"], c["vocab"]
    return 6 * (4 * Hd * (E + Hd) + Hd * V)


def attention_flops(T, c=ATT):
    """Causal: half of 4 B H T^2 D forward, 2.5x that for forward + backward."""
    return 3.5 * 2 * c["B"] * c["H"] * T * T * c["D"]


# ============================================================================ minillm workers
def mini_train_rate(model, opt, vocab, batch, T, seconds, base, threads=1):
    """tokens/s of minillm training steps (forward, loss, backward, update) on fixed random ids;
    threads > 1: through DataParallel, one replica and one BLAS thread per core."""
    from minillm.nn import CrossEntropyLoss
    from minillm.training.parallel import DataParallel
    loss_fn, rng = CrossEntropyLoss(), np.random.default_rng(0)
    x, y = rng.integers(0, vocab, (batch, T)), rng.integers(0, vocab, (batch, T))
    net = DataParallel(model, threads) if threads > 1 else model

    def step():
        loss_fn(net(x), y)
        model.zero_grad()
        net.backward(loss_fn.backward())
        opt.step()
    return dict(tok_s=batch * T / timed(step, seconds), base=base)


def mini_gpt(seconds, threads=1):
    import minillm
    from minillm.models import GPT as Model, GPTConfig
    from minillm.training.optim import AdamW, param_groups
    base = rss_mib()
    minillm.manual_seed(0)
    model = Model(GPTConfig(**{k: v for k, v in GPT.items() if k != "batch"}, dropout=0.0))
    return mini_train_rate(model, AdamW(param_groups(model, 0.1), lr=3e-4), GPT["vocab_size"], GPT["batch"],
                           GPT["block_size"], seconds, base, threads)


def mini_lstm(seconds, threads=1):
    import minillm
    from minillm.models import LSTMLM, LSTMConfig
    from minillm.training.optim import Adam
    base = rss_mib()
    minillm.manual_seed(0)
    model = LSTMLM(LSTMConfig(vocab_size=LSTM["vocab"], embed_dim=LSTM["emb"], hidden_size=LSTM["hidden"]))
    return mini_train_rate(model, Adam(model.parameters(), lr=1e-3), LSTM["vocab"], LSTM["batch"], LSTM["T"],
                           seconds, base, threads)


def mini_generate(seconds, n_new=512):
    import minillm
    from minillm.models import GPT as Model, GPTConfig
    base = rss_mib()
    minillm.manual_seed(0)
    model = Model(GPTConfig(**{k: v for k, v in GPT.items() if k != "batch"}))
    prompt = np.zeros((1, 1), dtype=np.int64)
    out = {}
    for use_cache in (True, False) * 3:                     # alternate, keep each mode's best run
        t0 = time.perf_counter()
        ids = model.generate(prompt, n_new, do_sample=False, use_cache=use_cache)
        dt = time.perf_counter() - t0
        if use_cache not in out or dt < out[use_cache][1]:
            out[use_cache] = (ids, dt)
    same = bool(np.array_equal(out[True][0], out[False][0]))
    return dict(cache_tok_s=n_new / out[True][1], nocache_tok_s=n_new / out[False][1], identical=same, base=base)


def mini_attention(seconds, T):
    from minillm.nn.attention import scaled_dot_product_attention, scaled_dot_product_attention_backward
    base = rss_mib()
    rng = np.random.default_rng(0)
    q, k, v, dout = (rng.standard_normal((ATT["B"], ATT["H"], T, ATT["D"])).astype(np.float32) for _ in range(4))

    def step():
        _, cache = scaled_dot_product_attention(q, k, v, is_causal=True)
        scaled_dot_product_attention_backward(dout, cache)
    sec = timed(step, seconds)
    return dict(tok_s=ATT["B"] * T / sec, base=base)


# ============================================================================ PyTorch workers
def torch_gpt_model(torch, c):
    import torch.nn.functional as F
    C, T, V = c["n_embd"], c["block_size"], c["vocab_size"]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = torch.nn.Embedding(V, C), torch.nn.Embedding(T, C)
            self.h = torch.nn.ModuleList(torch.nn.TransformerEncoderLayer(
                C, c["n_head"], 4 * C, dropout=0.0, activation=lambda a: F.gelu(a, approximate="tanh"),
                batch_first=True, norm_first=True) for _ in range(c["n_layer"]))
            self.ln_f = torch.nn.LayerNorm(C)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe.weight[: idx.shape[1]]
            mask = torch.nn.Transformer.generate_square_subsequent_mask(idx.shape[1])
            for layer in self.h:
                x = layer(x, src_mask=mask, is_causal=True)
            return self.ln_f(x) @ self.wte.weight.T
    return Net()


def torch_train_rate(net, opt, vocab, batch, T, seconds, base):
    """tokens/s of PyTorch training steps for ``net`` (ids -> logits) on fixed random ids."""
    import torch
    import torch.nn.functional as F
    x, y = torch.randint(0, vocab, (batch, T)), torch.randint(0, vocab, (batch, T))

    def step():
        loss = F.cross_entropy(net(x).reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return dict(tok_s=batch * T / timed(step, seconds), base=base)


def torch_gpt(seconds):
    import torch
    base = rss_mib()
    torch.manual_seed(0)
    net = torch_gpt_model(torch, GPT)
    return torch_train_rate(net, torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=0.1),
                            GPT["vocab_size"], GPT["batch"], GPT["block_size"], seconds, base)


def torch_lstm(seconds):
    import torch
    base = rss_mib()
    torch.manual_seed(0)
    emb = torch.nn.Embedding(LSTM["vocab"], LSTM["emb"])
    lstm = torch.nn.LSTM(LSTM["emb"], LSTM["hidden"], batch_first=True)
    head = torch.nn.Linear(LSTM["hidden"], LSTM["vocab"])
    params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
    return torch_train_rate(lambda x: head(lstm(emb(x))[0]), torch.optim.Adam(params, lr=1e-3),
                            LSTM["vocab"], LSTM["batch"], LSTM["T"], seconds, base)


def torch_attention(seconds, T):
    import torch
    import torch.nn.functional as F
    base = rss_mib()
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(ATT["B"], ATT["H"], T, ATT["D"], generator=g, requires_grad=True) for _ in range(3))
    dout = torch.randn(ATT["B"], ATT["H"], T, ATT["D"], generator=g)

    def step():
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.backward(dout)
    sec = timed(step, seconds)
    return dict(tok_s=ATT["B"] * T / sec, base=base)


def matmul_peak_gflops(n=2048, reps=10):
    """This machine's float32 matmul rate with NumPy's BLAS: the best of ``reps`` n x n products."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    best = min(_time_once(lambda: a @ a) for _ in range(reps))
    return 2 * n ** 3 / best / 1e9


def _time_once(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


# ============================================================================ runner
def worker(case, impl, seconds, T):
    # one small matmul first, so the BLAS's per-thread buffers count in the baseline, not the work
    if impl == "torch":
        import torch
        torch.set_num_threads(blas_threads())
        torch.ones(1024, 1024) @ torch.ones(1024, 1024)
    else:
        np.ones((1024, 1024), np.float32) @ np.ones((1024, 1024), np.float32)
    fn = {("gpt", "minillm"): mini_gpt, ("gpt", "torch"): torch_gpt, ("lstm", "minillm"): mini_lstm,
          ("lstm", "torch"): torch_lstm, ("generate", "minillm"): mini_generate,
          ("attention", "minillm"): mini_attention, ("attention", "torch"): torch_attention,
          ("gpt-dp", "minillm"): lambda s: mini_gpt(s, blas_threads()), ("gpt-dp", "torch"): torch_gpt,
          ("lstm-dp", "minillm"): lambda s: mini_lstm(s, blas_threads()), ("lstm-dp", "torch"): torch_lstm,
          }[(case, impl)]
    res = fn(seconds, T) if case == "attention" else fn(seconds)
    res["peak"] = peak_mib()
    res["above_base"] = res["peak"] - res.pop("base")
    print("RESULT " + json.dumps(res))


def best_of(rounds, case, seconds, T=0, torch=True, plain=True):
    """(minillm plain, minillm kernels, torch) results, None where not run: alternate them for
    ``rounds``, keep each one's best."""
    runs = {"plain": [], "minillm": [], "torch": []}
    for _ in range(rounds):
        for impl in ("plain",) * plain + ("minillm",) + ("torch",) * torch:
            runs[impl].append(run_worker(case, impl, seconds, T))
    return [max(r, key=lambda x: x["tok_s"]) if r else None for r in runs.values()]


def run_worker(case, impl, seconds, T=0):
    """One (case, implementation) in its own process; "plain" is minillm with MINILLM_KERNELS=plain."""
    env = dict(os.environ, MINILLM_KERNELS="plain" if impl == "plain" else os.environ.get("MINILLM_KERNELS", "auto"))
    impl = "minillm" if impl == "plain" else impl
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", case, impl, "--seconds", str(seconds), "--T", str(T)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    if "No module named 'torch'" in proc.stderr:
        return None
    raise RuntimeError(f"{case}/{impl} failed:\n{proc.stderr[-3000:]}")


def cpu_name():
    """The processor's model name (from /proc/cpuinfo where there is one) and whether it has AVX-512."""
    name, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        flags = next(line for line in info if line.startswith("flags"))
    except (OSError, StopIteration):
        pass
    return name + (" with AVX-512" if " avx512f" in flags else "")


def blas_threads():
    """NumPy's BLAS threads: read from OpenBLAS itself where minillm finds it, else from threadpoolctl, else a guess."""
    from minillm.training.parallel import blas_threads as openblas
    if openblas.available():
        return openblas.current()
    try:
        from threadpoolctl import threadpool_info
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    except Exception:
        return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds per case and implementation")
    ap.add_argument("--cases", default="gpt,gpt-dp,lstm,lstm-dp,generate,attention",
                    help="-dp: minillm through DataParallel with one replica per BLAS thread (minillm/training/parallel.py)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; each side keeps its best")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--T", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker, args.seconds, args.T)
    peak = matmul_peak_gflops()
    try:
        import torch
        torch_name = f"PyTorch {torch.__version__}"
    except ImportError:
        torch_name = None
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, BLAS threads "
          f"{blas_threads()}; NumPy {np.__version__}; {torch_name or 'PyTorch not installed'}; "
          f"date {time.strftime('%Y-%m-%d')}")
    print(f"float32 matmul peak (NumPy, 2048^3): {peak:.1f} GFLOP/s")
    from minillm.kernels.cpu import jit
    print(jit.describe())
    print(f"{'case':<22} {'plain tok/s':>11} {'kernels tok/s':>13} {'torch tok/s':>12} {'plain/torch':>11} "
          f"{'kernels/torch':>13} {'GFLOP/s':>8} {'of peak':>7} {'MiB kernels':>11} {'MiB torch':>9}"
          "   (MiB: peak RSS above the post-import baseline / absolute)")
    cases = args.cases.split(",")
    flops = {"gpt": gpt_flops_per_token(), "lstm": lstm_flops_per_token()}
    for case in ("gpt", "gpt-dp", "lstm", "lstm-dp"):
        if case in cases:
            _row(f"{case} train step", *best_of(args.rounds, case, args.seconds, torch=bool(torch_name)),
                 flops[case.split("-")[0]], peak)                  # -dp: the same network and work
    if "attention" in cases:
        for T in (128, 512, 1024, 2048):
            per_tok = attention_flops(T) / (ATT["B"] * T)
            _row(f"attention fwd+bwd T={T}", *best_of(args.rounds, "attention", args.seconds, T, bool(torch_name)),
                 per_tok, peak)
    if "generate" in cases:
        g = run_worker("generate", "minillm", args.seconds)
        print(f"generate 512 tokens (greedy, block 128): KV cache {g['cache_tok_s']:,.0f} tok/s, no cache "
              f"{g['nocache_tok_s']:,.0f} tok/s, speed-up {g['cache_tok_s'] / g['nocache_tok_s']:.1f}x "
              f"(goal >= 5x); tokens identical: {g['identical']}")


def _row(name, plain, mini, ref, flops_per_tok, peak):
    gflops = mini["tok_s"] * flops_per_tok / 1e9
    ratio = f"{mini['tok_s'] / ref['tok_s']:13.2f}" if ref else f"{'-':>13}"
    plain_ratio = f"{plain['tok_s'] / ref['tok_s']:11.2f}" if ref and plain else f"{'-':>11}"
    plain_tok = f"{plain['tok_s']:11,.0f}" if plain else f"{'-':>11}"
    ref_tok = f"{ref['tok_s']:12,.0f}" if ref else f"{'-':>12}"
    ref_mem = f"{ref['above_base']:4.0f}/{ref['peak']:4.0f}" if ref else f"{'-':>9}"
    print(f"{name:<22} {plain_tok} {mini['tok_s']:13,.0f} {ref_tok} {plain_ratio} {ratio} {gflops:8.1f} "
          f"{gflops / peak:7.2f} {mini['above_base']:6.0f}/{mini['peak']:4.0f} {ref_mem}")
    if ref:
        rg = ref["tok_s"] * flops_per_tok / 1e9
        print(f"{'':<22} PyTorch: {rg:.1f} GFLOP/s = {rg / peak:.2f} of peak; memory ratio minillm/PyTorch "
              f"(above baseline) {mini['above_base'] / max(ref['above_base'], 1):.2f}")


if __name__ == "__main__":
    main()
