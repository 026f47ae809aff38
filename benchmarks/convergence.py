"""Same recipe, same text, same wall time: minillm's GPT vs the same GPT in PyTorch (CPU).

    python benchmarks/convergence.py [--seconds 120] [--slices 8] [--seed 0] [--steps N] [--threads N]

nanoGPT's CPU character recipe: n_layer 4, n_head 4, n_embd 128, block_size 64, batch 12,
AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1), 100 warm-up steps then constant lr,
gradient clipping 1.0, dropout 0, GPT-2's initialisation on both sides, on the built-in corpus
(character-level, 90/10 split).
Each implementation trains for the same number of wall-clock seconds; then both are scored
on the same 40 validation batches. PyTorch uses as many threads as NumPy's BLAS, and minillm as
many data-parallel threads (minillm/training/parallel.py: the batch split into shards, one replica and one
BLAS thread per core, the same math), so both sides use the same cores; --threads 1 gives minillm
one replica, whose element-wise work then runs on one core.
The two take turns in --slices slices (8 by default: 15 s each of 120 s), in the order
A B B A A B B A, each slice ending when that side's total training time reaches its share.
A shared machine drifts by 10-30 % over minutes; running one side's 120 s after the other's
would hand the drift to one of them, while taking turns gives both the same mix. A short pause
between slices lets the idle BLAS/OpenMP threads of the side that just ran stop spinning.
Prints both validation losses, their ratio (minillm / PyTorch; <= 1 means minillm is at least
as good), steps, tokens/s and milliseconds per step.

--seed S draws both sides' initial weights with seed S (the batches stay the same). --steps N
replaces the race by N steps for each side (still in turns), which separates the two things that
decide the race: the loss at equal steps (the initial draw moves it by about 1 %) and the speed.
"""
import argparse
import os
import sys
import time

# As minillm sets it when it is imported before NumPy (the command line always is): OpenBLAS's idle
# threads spin 2^20 cycles, not 2^28, after a product (minillm/__init__.py). This script loads
# NumPy first, so it sets the same here.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cpu import blas_threads, cpu_name                                     # noqa: E402  (benchmarks/cpu.py)

CFG = dict(n_layer=4, n_head=4, n_embd=128, block_size=64)
BATCH, LR, WARMUP = 12, 1e-3, 100


def batches(data, rng, n):
    starts = rng.integers(0, len(data) - CFG["block_size"] - 1, size=(n, BATCH))
    for s in starts:
        yield (np.stack([data[i:i + CFG["block_size"]] for i in s]),
               np.stack([data[i + 1:i + 1 + CFG["block_size"]] for i in s]))


class TimedTrainer:
    """One side of the race: ``train_until(seconds=t)`` runs training steps (the subclass's
    ``step``) on its own seeded batches until its total training time reaches t seconds;
    ``train_until(steps=n)`` until it has made n steps in all."""

    def __init__(self, train):
        self.train, self.rng, self.steps, self.elapsed = train, np.random.default_rng(0), 0, 0.0

    def train_until(self, seconds=None, steps=None):
        t0, start = time.perf_counter(), self.elapsed
        while (self.elapsed < seconds) if steps is None else (self.steps < steps):
            x, y = next(batches(self.train, self.rng, 1))
            self.step(x, y, LR * min(1.0, (self.steps + 1) / WARMUP))
            self.steps += 1
            self.elapsed = start + time.perf_counter() - t0


class MiniTrainer(TimedTrainer):
    """minillm's GPT, AdamW and the training step."""

    def __init__(self, train, vocab, seed=0, threads=1):
        import minillm
        from minillm.models import GPT, GPTConfig
        from minillm.nn import CrossEntropyLoss
        from minillm.training.optim import AdamW, clip_grad_norm, param_groups
        from minillm.training.parallel import DataParallel
        super().__init__(train)
        minillm.manual_seed(seed)
        self.model = GPT(GPTConfig(vocab_size=vocab, **CFG))
        self.net = DataParallel(self.model, threads) if threads > 1 else self.model
        self.opt = AdamW(param_groups(self.model, 0.1), lr=LR, betas=(0.9, 0.99))
        self.loss_fn, self.clip = CrossEntropyLoss(), clip_grad_norm

    def step(self, x, y, lr):
        self.loss_fn(self.net(x), y)
        self.model.zero_grad()
        self.net.backward(self.loss_fn.backward())
        self.clip(self.model.parameters(), 1.0)
        self.opt.set_lr(lr)
        self.opt.step()

    def val_loss(self, val_batches):
        self.model.eval()
        return float(np.mean([float(self.loss_fn(self.model(x), y)) for x, y in val_batches]))


class TorchTrainer(TimedTrainer):
    """The same network, initialisation, optimizer and step in PyTorch."""

    def __init__(self, train, vocab, seed=0):
        import torch
        import torch.nn.functional as F
        super().__init__(train)
        torch.manual_seed(seed)
        C, T = CFG["n_embd"], CFG["block_size"]

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.wte, self.wpe = torch.nn.Embedding(vocab, C), torch.nn.Embedding(T, C)
                for e in (self.wte, self.wpe):
                    torch.nn.init.normal_(e.weight, std=0.02)
                self.h = torch.nn.ModuleList(torch.nn.TransformerEncoderLayer(
                    C, CFG["n_head"], 4 * C, dropout=0.0, activation=lambda a: F.gelu(a, approximate="tanh"),
                    batch_first=True, norm_first=True) for _ in range(CFG["n_layer"]))
                self.ln_f = torch.nn.LayerNorm(C)
                self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(T))

            def forward(self, idx):
                x = self.wte(idx) + self.wpe.weight[: idx.shape[1]]
                for layer in self.h:
                    x = layer(x, src_mask=self.mask, is_causal=True)
                return self.ln_f(x) @ self.wte.weight.T

        net = Net()
        # nanoGPT's (= GPT-2's, = minillm's) initialisation, so that both sides start from the same
        # distribution: N(0, 0.02) weights, zero biases, N(0, 0.02 / sqrt(2 L)) for the two projections
        # that write into the residual stream. (TransformerEncoderLayer's own default is xavier/kaiming.)
        with torch.no_grad():
            proj_std = 0.02 / (2 * CFG["n_layer"]) ** 0.5
            for layer in net.h:
                layer.self_attn.in_proj_weight.normal_(0.0, 0.02)
                layer.linear1.weight.normal_(0.0, 0.02)
                layer.self_attn.out_proj.weight.normal_(0.0, proj_std)
                layer.linear2.weight.normal_(0.0, proj_std)
                for b in (layer.self_attn.in_proj_bias, layer.self_attn.out_proj.bias, layer.linear1.bias,
                          layer.linear2.bias):
                    b.zero_()
        is_decayed = [p.dim() >= 2 and "wte" not in n and "wpe" not in n for n, p in net.named_parameters()]
        params = [p for _, p in net.named_parameters()]
        self.opt = torch.optim.AdamW(
            [{"params": [p for p, d in zip(params, is_decayed) if d], "weight_decay": 0.1},
             {"params": [p for p, d in zip(params, is_decayed) if not d], "weight_decay": 0.0}],
            lr=LR, betas=(0.9, 0.99))
        self.torch, self.F, self.net, self.vocab = torch, F, net, vocab

    def step(self, x, y, lr):
        torch, net = self.torch, self.net
        loss = self.F.cross_entropy(net(torch.from_numpy(x)).reshape(-1, self.vocab), torch.from_numpy(y).reshape(-1))
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.step()

    def val_loss(self, val_batches):
        torch, F = self.torch, self.F
        self.net.eval()
        with torch.no_grad():
            return float(np.mean([F.cross_entropy(self.net(torch.from_numpy(x)).reshape(-1, self.vocab),
                                                  torch.from_numpy(y).reshape(-1)).item() for x, y in val_batches]))


def take_turns(trainers, slices, seconds=None, steps=None):
    """Give each trainer ``seconds`` of training (or ``steps`` steps) in ``slices`` turns, order A B B A A B ..."""
    for k in range(slices):
        order = trainers if k % 2 == 0 else trainers[::-1]
        for tr in order:
            if steps is None:
                tr.train_until(seconds=seconds * (k + 1) / slices)
            else:
                tr.train_until(steps=steps * (k + 1) // slices)
            time.sleep(0.3)             # let the idle BLAS / OpenMP threads go to sleep before the other side


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--slices", type=int, default=8, help="turns per side (1: one side's run, then the other's)")
    ap.add_argument("--seed", type=int, default=0, help="seed of both sides' initial weights")
    ap.add_argument("--steps", type=int, default=None, help="N steps for each side instead of --seconds")
    ap.add_argument("--threads", type=int, default=None,
                    help="minillm's data-parallel threads (default: NumPy's BLAS threads, as PyTorch's; 1: no "
                         "data parallelism, one thread for NumPy's element-wise work)")
    args = ap.parse_args()
    for name in ("seconds", "slices", "steps", "threads"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            ap.error(f"--{name} must be positive, got {value}")
    from minillm.training import data
    from minillm.tokenizers import CharTokenizer
    text = data.builtin_corpus()
    tok = CharTokenizer.train(text)
    train, val = data.train_val_split(tok.encode(text))
    val_batches = list(batches(val, np.random.default_rng(123), 40))
    threads = blas_threads()
    from minillm.training.parallel import blas_threads as openblas
    dp = args.threads or (threads if openblas.available() else 1)       # DataParallel needs a settable OpenBLAS
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, BLAS threads {threads}; "
          f"date {time.strftime('%Y-%m-%d')}; "
          + (f"{args.seconds:.0f} s" if args.steps is None else f"{args.steps} steps")
          + f" each in {args.slices} turns; init seed {args.seed}; vocab {tok.vocab_size}")
    trainers = [(f"minillm (NumPy {np.__version__}, {dp} thr.)", MiniTrainer(train, tok.vocab_size, args.seed, dp))]
    try:
        import torch
        torch.set_num_threads(threads)
        trainers.append((f"PyTorch {torch.__version__} ({threads} threads)", TorchTrainer(train, tok.vocab_size, args.seed)))
    except ImportError:
        print("PyTorch not installed: no reference")
    take_turns([tr for _, tr in trainers], args.slices, args.seconds, args.steps)
    rows = [(name, tr.val_loss(val_batches), tr.steps, tr.elapsed) for name, tr in trainers]
    print(f"{'implementation':<32} {'val loss':>9} {'steps':>7} {'tokens/s':>9} {'ms/step':>8}")
    for name, val_loss, steps, elapsed in rows:
        print(f"{name:<32} {val_loss:9.4f} {steps:7d} {steps * BATCH * CFG['block_size'] / elapsed:9,.0f} "
              f"{1e3 * elapsed / steps:8.1f}")
    if len(rows) == 2:
        print(f"ratio of validation losses minillm / PyTorch: {rows[0][1] / rows[1][1]:.3f} (target: <= 0.98)")


if __name__ == "__main__":
    main()
