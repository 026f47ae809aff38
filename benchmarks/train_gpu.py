"""GPT training throughput on the GPU: minillm on CuPy with the fused kernel, without it, and PyTorch CUDA.

    python benchmarks/train_gpu.py [--steps 10] [--block-size 1024]

Same network (GPT-2 shape: pre-LN, tanh GELU, tied head), float32, AdamW, dropout 0. Prints
tokens/s of forward + backward + optimizer step (median step time after warm-up) and the
ratios. PyTorch runs the same architecture with nn.TransformerEncoderLayer (its attention goes
through F.scaled_dot_product_attention); TF32 is left at PyTorch's default (off for matmuls).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def minillm_step_time(cfg, batch, steps, fused):
    import cupy
    import minillm
    from minillm.models import GPT
    from minillm.nn import CrossEntropyLoss
    from minillm.kernels import dispatch
    from minillm.training.optim import AdamW, clip_grad_norm, param_groups
    os.environ["MINILLM_KERNELS"] = "auto" if fused else "plain"
    minillm.use("cupy")
    minillm.manual_seed(0)
    model = GPT(cfg)
    opt = AdamW(param_groups(model, 0.1), lr=3e-4)
    loss_fn = CrossEntropyLoss()
    x = cupy.random.randint(0, cfg.vocab_size, (batch, cfg.block_size))
    y = cupy.random.randint(0, cfg.vocab_size, (batch, cfg.block_size))
    times = []
    for i in range(steps + 3):
        cupy.cuda.Device().synchronize()
        t0 = time.perf_counter()
        loss_fn(model(x), y)
        model.zero_grad()
        model.backward(loss_fn.backward())
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        cupy.cuda.Device().synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    path = dispatch.last("scaled_dot_product_attention").implementation
    del model, opt
    cupy.get_default_memory_pool().free_all_blocks()
    return float(np.median(times)), path


def torch_step_time(cfg, batch, steps):
    import torch
    import torch.nn.functional as F

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            C = cfg.n_embd
            self.wte = torch.nn.Embedding(cfg.vocab_size, C)
            self.wpe = torch.nn.Embedding(cfg.block_size, C)
            self.h = torch.nn.ModuleList(torch.nn.TransformerEncoderLayer(
                C, cfg.n_head, 4 * C, dropout=0.0, activation=lambda a: F.gelu(a, approximate="tanh"),
                batch_first=True, norm_first=True) for _ in range(cfg.n_layer))
            self.ln_f = torch.nn.LayerNorm(C)

        def forward(self, idx):
            T = idx.shape[1]
            x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
            mask = torch.nn.Transformer.generate_square_subsequent_mask(T, device=idx.device)
            for layer in self.h:
                x = layer(x, src_mask=mask, is_causal=True)
            return self.ln_f(x) @ self.wte.weight.T

    net = Net().cuda()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4)
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size), device="cuda")
    y = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size), device="cuda")
    times = []
    for i in range(steps + 3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x).reshape(-1, cfg.vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    import cupy
    from minillm.models import GPTConfig
    cfg = GPTConfig(vocab_size=512, block_size=args.block_size, n_layer=6, n_head=6, n_embd=384)
    tokens = args.batch * cfg.block_size
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"device: {name}  date: {time.strftime('%Y-%m-%d')}  GPT n_layer=6 n_head=6 n_embd=384 "
          f"block={cfg.block_size} batch={args.batch} vocab=512, float32, AdamW")
    fused, p1 = minillm_step_time(cfg, args.batch, args.steps, True)
    naive, p2 = minillm_step_time(cfg, args.batch, args.steps, False)
    rows = [(f"minillm CuPy, fused kernel ({p1})", fused), (f"minillm CuPy, plain attention ({p2})", naive)]
    try:
        import torch
        if torch.cuda.is_available():
            rows.append((f"PyTorch {torch.__version__} CUDA", torch_step_time(cfg, args.batch, args.steps)))
    except ImportError:
        pass
    print(f"{'implementation':<40} {'ms/step':>9} {'tokens/s':>10} {'vs fused':>9}")
    for label, t in rows:
        print(f"{label:<40} {t * 1e3:9.1f} {tokens / t:10,.0f} {fused / t:8.2f}x")


if __name__ == "__main__":
    main()
