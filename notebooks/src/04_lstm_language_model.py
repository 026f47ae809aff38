# %% [markdown]
# # 04 · The LSTM language model of the article
#
# **Article:** part 2, section 5 (practice: Embedding → LSTM → Linear, `CrossEntropyLoss`, Adam, a loop
# over batches) and section 2 (RNN/LSTM as one of the architectures).
# **Code:** [`minillm/nn/lstm.py`](../minillm/nn/lstm.py) (the cell, the sequence, backpropagation through time),
# [`minillm/models/lstm_lm.py`](../minillm/models/lstm_lm.py) (the model), [`minillm/training/optim.py`](../minillm/training/optim.py) (Adam).
#
# An LSTM reads one token at a time and keeps two vectors: a hidden state $h$ (what it shows) and a
# cell $c$ (what it remembers). Four gates, computed from the input $x_t$ and the previous $h$, decide
# what to forget, what to write and what to show:
#
# $$\begin{aligned}
# a &= x_t W_{ih}^\top + h_{t-1} W_{hh}^\top + b &&\in \mathbb{R}^{4H}\\
# i &= \sigma(a_i),\; f = \sigma(a_f),\; g = \tanh(a_g),\; o = \sigma(a_o) &&\text{input, forget, candidate, output}\\
# c_t &= f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)
# \end{aligned}$$
#
# The language model puts an embedding in front and a linear layer behind, and predicts token $t+1$
# from $h_t$.

# %%
import os
import time
import numpy as np
import matplotlib.pyplot as plt

import minillm
from minillm import gradcheck
from minillm.training import data
from minillm.models import LSTMLM, LSTMConfig
from minillm.nn import CrossEntropyLoss, LSTM
from minillm.nn.lstm import lstm_forward
from minillm.training.optim import Adam, clip_grad_norm
from minillm.tokenizers import CharTokenizer

QUICK = os.environ.get("MINILLM_NOTEBOOK_QUICK") == "1"   # set by tests/test_notebooks.py: a short run
SECONDS = 4 if QUICK else 45                              # training time budget

# %% [markdown]
# ## 1. Preprocess: text → token ids
# The built-in corpus is made from the docstrings of Python's standard library (no download). A
# character tokenizer maps each distinct character to an id; the first 90 % of the ids train, the last
# 10 % validate.

# %%
text = data.builtin_corpus()
tok = CharTokenizer.train(text)
ids = np.array(tok.encode(text), dtype=np.int64)
train_ids, val_ids = data.train_val_split(ids)
print(f"{len(text):,} characters, vocabulary of {tok.vocab_size}; {len(train_ids):,} training ids")
print("example:", repr(text[:40]), "->", tok.encode(text[:12]))

# %% [markdown]
# ## 2-6. Initialise, then repeat: forward, loss, backward, update; validate now and then
# The loop below is the article's training loop written out; `minillm train --model lstm` runs the
# same one through [`minillm/training/trainer.py`](../minillm/training/trainer.py).

# %%
minillm.manual_seed(0)
cfg = LSTMConfig(vocab_size=tok.vocab_size, embed_dim=64, hidden_size=256, block_size=64)
model = LSTMLM(cfg)                                             # 2. initialise
opt = Adam(model.parameters(), lr=3e-3)
loss_fn = CrossEntropyLoss()
rng = np.random.default_rng(0)
print(model)
print(f"{model.num_parameters():,} parameters")


def val_loss(batches=10):
    model.eval()
    vrng = np.random.default_rng(123)
    out = np.mean([float(loss_fn(model(x), y)) for x, y in
                   (data.get_batch(val_ids, cfg.block_size, 32, vrng) for _ in range(batches))])
    loss_fn.cache = None
    model.train()
    return out


log = {"step": [], "train": [], "val_step": [], "val": []}
t0, step = time.perf_counter(), 0
while time.perf_counter() - t0 < SECONDS:
    x, y = data.get_batch(train_ids, cfg.block_size, 32, rng)   # a batch of 32 windows of 64 characters
    loss = loss_fn(model(x), y)                                  # 3-4. forward pass and loss
    model.zero_grad()
    model.backward(loss_fn.backward())                           # 5. backward pass (through time)
    clip_grad_norm(model.parameters(), 1.0)
    opt.step()                                                   # 6. update
    log["step"].append(step)
    log["train"].append(float(loss))
    if step % 50 == 0:                                           # 7. validate
        log["val_step"].append(step)
        log["val"].append(val_loss())
    step += 1
log["val_step"].append(step)
log["val"].append(val_loss())
print(f"{step} steps in {time.perf_counter() - t0:.0f} s; validation loss {log['val'][-1]:.3f} "
      f"(perplexity {np.exp(log['val'][-1]):.1f}; a uniform guess would be {np.log(tok.vocab_size):.2f})")

# %%
plt.figure(figsize=(7, 3.5))
plt.plot(log["step"], log["train"], alpha=0.5, label="training batch loss")
plt.plot(log["val_step"], log["val"], "o-", label="validation loss")
plt.axhline(np.log(tok.vocab_size), ls="--", c="gray", label="log V (uniform guess)")
plt.xlabel("step")
plt.ylabel("cross-entropy (nats per character)")
plt.legend()
plt.title("the LSTM language model learning the corpus")
plt.show()

# %% [markdown]
# ## Inside the gates
# Run the trained LSTM over one sentence and look at its gates. Each column is one character; each row
# of the heat map one of the first 48 cell units. A forget gate near 1 keeps that unit's memory, near 0
# wipes it; the right panel shows the average of each gate per character.

# %%
sentence = "Return the number of items in the list."
x_ids = np.array([tok.encode(sentence)])
emb = model.embedding(x_ids)
model.embedding.cache = None
lstm = model.lstm
H = cfg.hidden_size
os.environ["MINILLM_KERNELS"] = "plain"      # the lesson's code: its cache names every gate of every step
_, _, _, cache = lstm_forward(emb, np.zeros((1, H), np.float32), np.zeros((1, H), np.float32),
                              lstm.weight_ih_l0.data, lstm.weight_hh_l0.data,
                              lstm.bias_ih_l0.data, lstm.bias_hh_l0.data)
os.environ["MINILLM_KERNELS"] = "auto"
gates = {name: np.stack([getattr(step, name)[0] for step in cache.steps]) for name in "ifgo"}   # (T, H) each
fig, (a1, a2) = plt.subplots(1, 2, figsize=(15, 3.8), gridspec_kw={"width_ratios": [2, 1]})
im = a1.imshow(gates["f"][:, :48].T, aspect="auto", cmap="magma", vmin=0, vmax=1)
a1.set_xticks(range(len(sentence)), list(sentence))
a1.set_ylabel("cell unit")
a1.set_title("forget gate f (1 = keep the memory)")
plt.colorbar(im, ax=a1)
for key, name in (("i", "input i"), ("f", "forget f"), ("o", "output o")):
    a2.plot(gates[key].mean(axis=1), label=name)
a2.set_xticks(range(len(sentence)), list(sentence), fontsize=7)
a2.set_title("mean gate value per character")
a2.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Generate
# Feed a prompt, then sample one character at a time, carrying $(h, c)$ from step to step.
# Temperature below 1 sharpens the distribution (safer, more repetitive text).

# %%
for temperature in (0.5, 1.0):
    out = model.generate(np.array([tok.encode("The ")]), 200, temperature=temperature, seed=1)
    print(f"--- temperature {temperature} ---\n{tok.decode(out[0].tolist())}\n")

# %% [markdown]
# ## The check: backpropagation through time is right
# The LSTM's backward runs the step backward for $t = T-1, \dots, 0$, carrying $\partial L/\partial h$ and
# $\partial L/\partial c$ from step to step. Compare every weight's and the input's gradient with finite
# differences in float64 (two stacked layers; the gradients of the final state (h_T, c_T) flow in too):

# %%
small = LSTM(3, 5, num_layers=2).double()
xs = np.random.default_rng(2).standard_normal((2, 4, 3))
errors = gradcheck.check_module(small, xs, backward=lambda m, d: m.backward(d[0], (d[1], d[2])))
print({n: f"{e:.1e}" for n, e in errors.items()})
assert max(errors.values()) < gradcheck.TOLERANCE
