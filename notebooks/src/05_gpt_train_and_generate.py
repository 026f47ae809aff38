# %% [markdown]
# # 05 · A small GPT: train it, then make it write
#
# **Article:** part 1, section 3 (GPT: a generative transformer decoder, pre-trained, then generating
# from a context) and section 5 (practice: train a language model, generate text).
# **Code:** [`minillm/models/gpt.py`](../minillm/models/gpt.py) (the model, `generate`, the KV cache),
# [`minillm/models/sampling.py`](../minillm/models/sampling.py) (temperature, top-k, top-p),
# [`minillm/nn/transformer.py`](../minillm/nn/transformer.py) (the block), [`minillm/training/trainer.py`](../minillm/training/trainer.py) (the loop).
#
# GPT-2's shape, at toy size:
#
# $$\begin{aligned}
# x_0 &= W_{te}[\text{idx}] + W_{pe}[0..T-1] &&\text{token + position embeddings}\\
# x_{l} &= x_{l-1} + \mathrm{MHA}_{\text{causal}}(\mathrm{LN}(x_{l-1})),\quad x_l \mathrel{+}= \mathrm{FF}(\mathrm{LN}(x_l)) &&\text{pre-LN blocks}\\
# \text{logits} &= \mathrm{LN}_f(x_L)\, W_{te}^\top &&\text{the output matrix is the embedding (tied)}
# \end{aligned}$$
#
# and $p(w_{t+1} \mid w_{\le t}) = \mathrm{softmax}(\text{logits}_t)$.

# %%
import os
import tempfile
import time
import csv
import numpy as np
import matplotlib.pyplot as plt

import minillm
from minillm import gradcheck
from minillm.training import data
from minillm.models import GPT, GPTConfig
from minillm.models.sampling import filter_logits
from minillm.training.optim import AdamW, param_groups
from minillm.training.tasks import LMTask
from minillm.tokenizers import CharTokenizer
from minillm.training.trainer import Trainer, TrainConfig

QUICK = os.environ.get("MINILLM_NOTEBOOK_QUICK") == "1"   # set by tests/test_notebooks.py: a short run
SECONDS = 4 if QUICK else 50                              # training time budget

text = data.builtin_corpus()
tok = CharTokenizer.train(text)
train_ids, val_ids = data.train_val_split(tok.encode(text))

# %% [markdown]
# ## Train
# nanoGPT's small character recipe, shrunk to fit in under a minute on a laptop CPU: 4 layers,
# 4 heads, width 128, context of 64 characters, AdamW with warm-up and a cosine schedule, gradient
# clipping at 1. The [`Trainer`](../minillm/training/trainer.py) writes `log.csv`, `loss.png` and a checkpoint
# (`minillm train` uses the same one).

# %%
minillm.manual_seed(0)
cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128)
model = GPT(cfg)
print(f"GPT with {model.num_parameters():,} parameters")
out_dir = tempfile.mkdtemp(prefix="minillm-nb05-")
trainer = Trainer(model, LMTask(train_ids, val_ids, cfg.block_size, 12),
                  AdamW(param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.99)),
                  TrainConfig(max_steps=2000, max_seconds=SECONDS, lr=1e-3, min_lr=1e-4, warmup_steps=50,
                              eval_interval=100, eval_batches=10),
                  out_dir, meta={"kind": "gpt", "model_config": model.config_dict(), "tokenizer": tok.to_dict()},
                  quiet=True)
val = trainer.run()
print(f"{trainer.step} steps in {trainer.elapsed:.0f} s: validation loss {val:.3f} (perplexity {np.exp(val):.1f})")

with open(os.path.join(out_dir, "log.csv")) as f:
    rows = list(csv.DictReader(f))
plt.figure(figsize=(7, 3.5))
plt.plot([int(r["step"]) for r in rows], [float(r["train_loss"]) for r in rows], label="train (batch)")
vals = [(int(r["step"]), float(r["val_loss"])) for r in rows if r["val_loss"]]
plt.plot(*zip(*vals), "o-", label="validation")
plt.axhline(np.log(tok.vocab_size), ls="--", c="gray", label="log V (uniform guess)")
plt.xlabel("step")
plt.ylabel("cross-entropy (nats per character)")
plt.legend()
plt.title("training the GPT (from log.csv)")
plt.show()

# %% [markdown]
# ## Sampling: from logits to the next token
# At each step the model gives logits $z$ for the next token. Three knobs shape the distribution
# before we draw from it:
# * **temperature** $\tau$: $p = \mathrm{softmax}(z / \tau)$. $\tau < 1$ sharpens, $\tau > 1$ flattens; $\tau \to 0$ is greedy (argmax).
# * **top-k**: keep the $k$ most likely tokens, renormalise.
# * **top-p** (nucleus): keep the smallest set of most likely tokens whose probability reaches $p$.

# %%
prompt = "Return the "
model.eval()
logits = model(np.array([tok.encode(prompt)]))[0, -1].astype(np.float64)
model.cache = None
order = np.argsort(-logits)[:12]
labels = [repr(tok.decode([int(i)])) for i in order]


def probs(z):
    e = np.exp(z - z[np.isfinite(z)].max())
    e[~np.isfinite(z)] = 0
    return e / e.sum()


fig, axes = plt.subplots(1, 4, figsize=(16, 3.2), sharey=True)
for ax, (title, p) in zip(axes, [("temperature 1", probs(logits)), ("temperature 0.5", probs(logits / 0.5)),
                                 ("top-k = 3", probs(filter_logits(logits[None], top_k=3)[0])),
                                 ("top-p = 0.9", probs(filter_logits(logits[None], top_p=0.9)[0]))]):
    ax.bar(range(12), p[order])
    ax.set_xticks(range(12), labels, rotation=90)
    ax.set_title(title)
axes[0].set_ylabel(f"p(next | {prompt!r})")
plt.tight_layout()
plt.show()

# %%
start = np.array([tok.encode(prompt)])
for name, kw in [("greedy", dict(do_sample=False)), ("temperature 0.8", dict(temperature=0.8)),
                 ("temperature 1.3", dict(temperature=1.3)), ("top-k 5", dict(top_k=5)),
                 ("top-p 0.9", dict(top_p=0.9))]:
    out = model.generate(start, 120, seed=0, **kw)
    print(f"--- {name} ---\n{tok.decode(out[0].tolist())}\n")

# %% [markdown]
# Greedy decoding tends to loop on the likeliest phrase; a high temperature invents words; top-k and
# top-p cut off the unlikely tail that produces most of the nonsense.
#
# ## The KV cache
# Without a cache, every new token runs the whole context through the model again: step $t$ costs
# $O(t)$ positions. But the keys and values of past positions never change, so `generate` keeps them
# (one `KVCache` per block) and each step computes only the newest position, attending to the stored
# keys. Same tokens, far less work:

# %%
n_new = 40 if QUICK else 300
times, outs = {}, {}
for use_cache in (False, True):
    t0 = time.perf_counter()
    outs[use_cache] = model.generate(start, n_new, do_sample=False, use_cache=use_cache)
    times[use_cache] = time.perf_counter() - t0
print("identical tokens with and without the cache:", np.array_equal(outs[True], outs[False]))
print(f"speed-up: {times[False] / times[True]:.1f}x")
plt.figure(figsize=(5, 2.6))
plt.barh(["no cache", "KV cache"], [n_new / times[False], n_new / times[True]])
plt.xlabel("tokens per second")
plt.title(f"greedy generation of {n_new} tokens")
plt.show()

# %% [markdown]
# ## The learned position table
# In notebook 02 the table `wpe` was random. After training, neighbouring positions have similar rows
# (bright band along the diagonal of the similarity matrix): the model learned a sense of distance.

# %%
wpe = model.wpe.weight.data
wn = wpe / np.linalg.norm(wpe, axis=1, keepdims=True)
plt.figure(figsize=(4.5, 3.8))
plt.imshow(wn @ wn.T, cmap="viridis")
plt.colorbar(label="cosine similarity")
plt.xlabel("position")
plt.ylabel("position")
plt.title("trained wpe: row similarities")
plt.show()

# %% [markdown]
# ## The check: the whole model's backward
# One gradient check on a tiny GPT in float64 covers every layer together, including the tied weight
# (the token embedding receives gradient both from the lookup and from the output layer).

# %%
minillm.manual_seed(1)
tiny = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)).double()
errors = gradcheck.check_module(tiny, np.random.default_rng(0).integers(0, 11, (2, 6)), max_entries=20)
print(f"{len(errors)} parameter arrays; largest relative error {max(errors.values()):.1e}")
assert max(errors.values()) < gradcheck.TOLERANCE
