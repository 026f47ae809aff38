# %% [markdown]
# # 07 · The training loop and the optimizers
#
# **Article:** part 2, section 3 (the training steps: preprocess, initialise, forward, loss, backward,
# update, validate; repeat) and section 2 (the training algorithm: gradient descent, Adam).
# **Code:** [`minillm/training/trainer.py`](../minillm/training/trainer.py) (the loop; its docstring numbers the steps),
# [`minillm/training/optim.py`](../minillm/training/optim.py) (SGD, Adam, AdamW, clipping, the schedule).
#
# | step | in minillm |
# |---|---|
# | 1. preprocess: clean, tokenize, encode | `tokenizers.py`, `data.py` |
# | 2. initialise the weights | each layer's `__init__`, `nn/init.py`, `GPT._init_weights` |
# | 3. forward pass | `model(x)` |
# | 4. loss | `CrossEntropyLoss` |
# | 5. backward pass | `model.backward(loss_fn.backward())` |
# | 6. update | `opt.step()` |
# | 7. validate (and save) | `Trainer.evaluate`, `checkpoint.py` |
#
# ## The update rules
# With gradient $g_t$ and learning rate $\eta$:
#
# * **SGD with momentum** $\mu$: $\;b_t = \mu b_{t-1} + g_t,\quad \theta \leftarrow \theta - \eta\, b_t$
# * **Adam**: running means of the gradient and of its square, corrected for starting at zero,
#   $$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
#   \theta \leftarrow \theta - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}$$
#   Each weight gets its own step size: large where gradients are consistently small, small where they are noisy.
# * **AdamW**: Adam plus *decoupled* weight decay $\theta \leftarrow \theta - \eta\lambda\theta$, applied to the
#   weights directly instead of being added to $g$ (where Adam's scaling would weaken it).

# %%
import os
import time
import numpy as np
import matplotlib.pyplot as plt

import minillm
from minillm.training import data
from minillm.models import GPT, GPTConfig
from minillm.nn import CrossEntropyLoss, Linear
from minillm.training.optim import SGD, Adam, AdamW, clip_grad_norm, lr_schedule, param_groups
from minillm.tokenizers import CharTokenizer

QUICK = os.environ.get("MINILLM_NOTEBOOK_QUICK") == "1"   # set by tests/test_notebooks.py: a short run
STEPS = 15 if QUICK else 400

text = data.builtin_corpus()
tok = CharTokenizer.train(text)
train_ids, val_ids = data.train_val_split(tok.encode(text))

# %% [markdown]
# ## Four optimizers on the same model and the same batches
# A tiny GPT (2 layers, width 64), the same initial weights and the same sequence of batches for each
# optimizer; only the update rule changes.

# %%
def run(make_opt, steps=STEPS, clip=None, lr_fn=None):
    minillm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=64))
    opt = make_opt(model)
    loss_fn, rng, losses, norms = CrossEntropyLoss(), np.random.default_rng(0), [], []
    for step in range(steps):
        x, y = data.get_batch(train_ids, 32, 16, rng)     # 1. a batch of encoded text
        loss = loss_fn(model(x), y)                          # 3-4. forward, loss
        model.zero_grad()
        model.backward(loss_fn.backward())                   # 5. backward
        norms.append(clip_grad_norm(model.parameters(), clip) if clip else
                     float(np.sqrt(sum((p.grad.astype(np.float64) ** 2).sum() for p in model.parameters()))))
        if lr_fn:
            opt.set_lr(lr_fn(step))
        opt.step()                                           # 6. update
        losses.append(float(loss))
    return np.array(losses), np.array(norms)


t0 = time.perf_counter()
curves = {
    "SGD lr 0.1": run(lambda m: SGD(m.parameters(), lr=0.1))[0],
    "SGD + momentum 0.9, lr 0.1": run(lambda m: SGD(m.parameters(), lr=0.1, momentum=0.9))[0],
    "Adam lr 3e-3": run(lambda m: Adam(m.parameters(), lr=3e-3))[0],
    "AdamW lr 3e-3, wd 0.1": run(lambda m: AdamW(param_groups(m, 0.1), lr=3e-3))[0],
}
print(f"trained 4 x {STEPS} steps in {time.perf_counter() - t0:.0f} s")


def smooth(a, k=10):
    return np.convolve(a, np.ones(k) / k, mode="valid") if len(a) > k else a


plt.figure(figsize=(7.5, 4))
for name, losses in curves.items():
    plt.plot(smooth(losses), label=f"{name}: last {losses[-10:].mean():.2f}")
plt.xlabel("step")
plt.ylabel("training loss (moving average of 10)")
plt.legend()
plt.title("same model, same batches, four update rules")
plt.show()

# %% [markdown]
# Adam and AdamW pull ahead of SGD within the first few dozen steps and stay ahead: the gradients of
# embeddings, LayerNorm gains and attention weights differ by orders of magnitude, and one learning
# rate cannot suit them all, while Adam scales each weight's step by its own gradient history.
# Momentum helps SGD a little by averaging noisy directions. (Weight decay barely matters over so few
# steps; its job is to keep weights small over long runs.)
#
# ## Warm-up and cosine decay
# Early on, Adam's second-moment estimates rest on a few samples and its steps can be too large, so the
# learning rate ramps up linearly for the first steps; afterwards it follows half a cosine down to a
# floor, taking smaller steps as the model settles (`lr_schedule` in [optim.py](../minillm/training/optim.py)):
#
# $$\eta_t = \begin{cases} \eta_{\max}\,\frac{t+1}{W} & t < W\\[2pt]
#   \eta_{\min} + \tfrac12(\eta_{\max}-\eta_{\min})\left(1 + \cos\!\big(\pi\,\frac{t-W}{N-W}\big)\right) & t \ge W\end{cases}$$

# %%
N, W = 1000, 100
plt.figure(figsize=(6.5, 3))
plt.plot([lr_schedule(t, 1e-3, W, N, 1e-4) for t in range(N + 50)])
plt.axvline(W, ls=":", c="gray")
plt.text(W + 10, 9e-4, "end of warm-up")
plt.xlabel("step")
plt.ylabel("learning rate")
plt.title("linear warm-up, then cosine decay to min_lr")
plt.show()

# %% [markdown]
# ## Gradient clipping
# One unlucky batch can produce a huge gradient and undo many steps of progress. Clipping rescales
# all gradients together when their global norm $\|g\| = \sqrt{\sum_i g_i^2}$ exceeds a threshold $c$:
# $g \leftarrow g \cdot c / \|g\|$. The direction is kept, only the length is capped. Below, the
# gradient norm measured at every step of an AdamW run, and the threshold of 1 used by `minillm train`:

# %%
_, norms = run(lambda m: AdamW(param_groups(m, 0.1), lr=3e-3), clip=1.0,
               lr_fn=lambda t: lr_schedule(t, 3e-3, STEPS // 10, STEPS, 3e-4))
plt.figure(figsize=(6.5, 3))
plt.semilogy(norms, label="gradient norm before clipping")
plt.axhline(1.0, c="r", ls="--", label="clip threshold 1.0")
plt.xlabel("step")
plt.legend()
plt.title(f"{(norms > 1).mean():.0%} of the steps were clipped")
plt.show()

# %% [markdown]
# ## The check: one Adam step by hand, and against PyTorch
# Three steps of minillm's Adam on one weight matrix, recomputed with the formula above in plain NumPy,
# and compared with `torch.optim.Adam` when PyTorch is installed.

# %%
rng = np.random.default_rng(0)
lin = Linear(3, 2).double()
w0 = lin.weight.data.copy()
grads = [rng.standard_normal((2, 3)) for _ in range(3)]
opt = Adam([lin.weight], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
m = v = np.zeros_like(w0)
w = w0.copy()
for t, g in enumerate(grads, start=1):
    lin.weight.grad[...] = g
    opt.step()
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    w = w - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
print("minillm vs formula, max difference:", np.abs(lin.weight.data - w).max())
assert np.allclose(lin.weight.data, w, atol=1e-12)
try:
    import torch
    tw = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.Adam([tw], lr=0.1)
    for g in grads:
        tw.grad = torch.tensor(g)
        topt.step()
    print("minillm vs torch.optim.Adam, max difference:", np.abs(lin.weight.data - tw.detach().numpy()).max())
except ImportError:
    print("PyTorch is not installed: comparison skipped")

# %% [markdown]
# ## Using every core: data parallelism
# NumPy runs its matrix products on every core but its element-wise work (GELU, softmax, LayerNorm)
# on one. Data parallelism puts the other cores to work without changing the math. The loss is a
# mean over the batch's $N$ tokens, so its gradient is a sum that can be cut into shards:
# $$\frac{\partial L}{\partial W} = \sum_{k} \Big[\frac{1}{N}\sum_{i \in \text{shard } k} \frac{\partial \ell_i}{\partial W}\Big]$$
# [`minillm/training/parallel.py`](../minillm/training/parallel.py) gives each shard to a replica of the model in its own
# thread (the replicas share the weights and have their own gradients), then adds the replicas'
# gradients into the model's: the "all-reduce" of multi-GPU training, here on CPU cores. First the
# check: the same gradients as one backward over the whole batch.

# %%
from minillm.training.parallel import DataParallel, blas_threads

minillm.manual_seed(0)
model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=64)).double()
x, y = data.get_batch(train_ids, 32, 8, np.random.default_rng(0))
loss_fn = CrossEntropyLoss()
grads = {}
for threads in (1, 2) if blas_threads.available() else ():
    net = DataParallel(model, threads)                # DataParallel(model, 1) is the model alone
    loss_fn(net(x), y)
    model.zero_grad()
    net.backward(loss_fn.backward())
    grads[threads] = [p.grad.copy() for p in model.parameters()]
if grads:
    print("largest difference between the two gradients (float64):",
          max(np.abs(a - b).max() for a, b in zip(grads[1], grads[2])))
else:
    print("NumPy's BLAS is not an OpenBLAS minillm can set: DataParallel runs one thread only here")

# %% [markdown]
# Then the time of a training step with the convergence benchmark's recipe (4 layers, width 128,
# batch 12 x 64), with one thread and with one replica per core, taking turns (one, two, two, one, ...)
# so that whatever else runs on the machine slows both alike. `minillm train --threads 2` uses the same
# wrapper.

# %%
def step_times(net, model, opt, rng, steps):
    times = []
    for _ in range(steps):
        x, y = data.get_batch(train_ids, 64, 12, rng)
        t0 = time.perf_counter()
        loss_fn(net(x), y)
        model.zero_grad()
        net.backward(loss_fn.backward())
        opt.step()
        times.append(time.perf_counter() - t0)
    return times

cores = min(os.cpu_count() or 1, 2)
if cores > 1 and blas_threads.available():
    minillm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128))
    opt, rng = AdamW(param_groups(model, 0.1), lr=1e-3), np.random.default_rng(0)
    nets = {1: model, cores: DataParallel(model, cores)}
    times = {1: [], cores: []}
    for turn in range(2 if QUICK else 8):
        for threads in (1, cores) if turn % 2 == 0 else (cores, 1):
            step_times(nets[threads], model, opt, rng, 1)            # one step to warm the caches up
            times[threads] += step_times(nets[threads], model, opt, rng, 2 if QUICK else 10)
    one, many = (1e3 * np.median(times[k]) for k in (1, cores))
    print(f"median step: one thread {one:.1f} ms, {cores} threads {many:.1f} ms ({one / many:.2f}x faster)")
else:
    print("one core, or no OpenBLAS minillm can set: nothing to split here")
