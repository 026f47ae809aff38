"""How long the compiled CPU kernels take to compile on a cold cache, and to load on a warm one.

    python benchmarks/compile_time.py

Runs one GPT training step (float32, the shapes of `minillm train`), one long-sequence attention
call and one LSTM LM training step (the article's sizes) in a fresh process twice, both with an
empty NUMBA_CACHE_DIR made for the run: the first process compiles every kernel it meets and
writes the cache, the second loads it. The difference between a process's first step and its
second is the compile (or load) time. Numba keeps its cache in the package's __pycache__ by
default; a temporary folder keeps this measurement from touching it.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def child():
    """One process: the first and the second GPT step, the first long attention call, and the first
    and second LSTM LM step, timed."""
    sys.path.insert(0, ROOT)
    import minillm                     # before NumPy, as the command line: minillm sets OPENBLAS_THREAD_TIMEOUT
    import numpy as np
    from minillm.models import GPT, LSTMLM, GPTConfig, LSTMConfig
    from minillm.nn import CrossEntropyLoss
    from minillm.nn.attention import scaled_dot_product_attention, scaled_dot_product_attention_backward
    from minillm.training.optim import Adam, AdamW, param_groups
    minillm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=100, block_size=64, n_layer=4, n_head=4, n_embd=128))
    opt, loss = AdamW(param_groups(model, 0.1), lr=1e-3), CrossEntropyLoss()
    x = np.random.default_rng(0).integers(0, 100, (12, 64))

    def step(model, opt, x):
        t0 = time.perf_counter()
        loss(model(x), x)
        model.zero_grad()
        model.backward(loss.backward())
        opt.step()
        return time.perf_counter() - t0

    first, second = step(model, opt, x), step(model, opt, x)
    q = np.random.default_rng(1).standard_normal((1, 2, 512, 32)).astype(np.float32)
    t0 = time.perf_counter()
    _, cache = scaled_dot_product_attention(q, q, q, is_causal=True)
    scaled_dot_product_attention_backward(q, cache)
    attention = time.perf_counter() - t0
    lstm = LSTMLM(LSTMConfig())
    lstm_opt, ids = Adam(lstm.parameters(), lr=1e-3), np.random.default_rng(2).integers(0, 256, (32, 64))
    lstm_first, lstm_second = step(lstm, lstm_opt, ids), step(lstm, lstm_opt, ids)
    print(json.dumps(dict(first=first, second=second, attention=attention, lstm_first=lstm_first,
                          lstm_second=lstm_second)))


def main():
    if "--child" in sys.argv:
        return child()
    from minillm.kernels.cpu import jit
    print(jit.describe())
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold cache (compiles)", "warm cache (loads)"):
            out = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True, env=env)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{label:<22} first GPT step {r['first']:6.2f} s, second {r['second']:5.2f} s "
                  f"(compile or load: {r['first'] - r['second']:5.2f} s); "
                  f"first long attention {r['attention']:5.2f} s; first LSTM LM step {r['lstm_first']:5.2f} s, second {r['lstm_second']:5.2f} s")


if __name__ == "__main__":
    main()
