# %% [markdown]
# # 11 · The encoder-decoder: cross-attention and beam search
#
# **Article:** part 1, where translation and summarization are named as the applications of both
# model families, and the attention sections (queries from one sequence, keys and values from
# another). **Code:** [`minillm/models/seq2seq.py`](../minillm/models/seq2seq.py) (the model),
# [`minillm/nn/decoder_block.py`](../minillm/nn/decoder_block.py) (causal self-attention,
# cross-attention, feed-forward), [`minillm/models/seq2seq_decoding.py`](../minillm/models/seq2seq_decoding.py)
# (greedy decoding and beam search), [`minillm/training/seq2seq_task.py`](../minillm/training/seq2seq_task.py)
# (padded batches, label smoothing, `translate`).
#
# GPT reads and writes one sequence. The model of "Attention Is All You Need" reads a *source*
# with an encoder and writes a *target* with a decoder. Every decoder block has three parts:
#
# - causal self-attention over the target written so far;
# - **cross-attention**: queries from the target, keys and values from the encoder's output
#   (the memory), so each output token can look at any source position;
# - a feed-forward network.
#
# This notebook trains a small one on a task whose right answer we know, reversing a list of
# words, so we can see what cross-attention learns. Then it compares greedy decoding with beam
# search, and checks the whole backward pass against finite differences.

# %%
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

from minillm import backend
from minillm.models import Seq2SeqConfig, Seq2SeqTransformer
from minillm.tokenizers import WordTokenizer
from minillm.training.optim import AdamW, noam_schedule
from minillm.training.seq2seq_task import BOS, EOS, PAD, Seq2SeqTask, translate
from minillm.training.trainer import TrainConfig, Trainer

QUICK = os.environ.get("MINILLM_NOTEBOOK_QUICK") == "1"   # set by tests/test_notebooks.py: a short run
WORDS = "ant bee cat dog eel fox gnu hen owl pig rat yak".split()


def reverse_pairs(n, seed):
    """n pairs (source, target): 3 to 8 random words, and the same words in reverse order."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(3, 9))))
        pairs.append((" ".join(words), " ".join(reversed(words))))
    return pairs


tok = WordTokenizer.train(WORDS, special_tokens=(PAD, BOS, EOS))   # one word per id, plus <unk>
train_pairs, val_pairs, test_pairs = reverse_pairs(4000, 0), reverse_pairs(100, 1), reverse_pairs(300, 2)
print(tok.vocab_size, "ids;", train_pairs[0])

# %% [markdown]
# ## A batch: the target shifted right
# The decoder is trained like GPT, with *teacher forcing*: it reads the true target shifted right
# by one position (starting with `<s>`) and predicts the target itself, ending with `</s>`. Both
# sides are padded to the longest in the batch; the source's padding is masked in every attention
# over the source, and the padded target positions get the label -100, which the loss skips.

# %%
task = Seq2SeqTask(train_pairs, val_pairs, tok, tok, max_src_len=12, max_tgt_len=12, batch_size=32,
                   label_smoothing=0.1)
src, src_pad, tgt_in, tgt_out = task.collate(task.data["train"][:2])
for name, a in (("src", src), ("src_pad", src_pad.astype(int)), ("tgt_in", tgt_in), ("tgt_out", tgt_out)):
    print(f"{name:8}", a.tolist())

# %% [markdown]
# ## Training with the paper's schedule
# The learning rate rises linearly for `warmup` steps and then decays as $1/\sqrt{\text{step}}$
# (section 5.3 of the paper): $\text{lr} = \text{peak}\cdot\min(n/w, \sqrt{w/n})$. The loss uses
# label smoothing $\varepsilon = 0.1$: the one-hot target is mixed with $\varepsilon$ of the uniform
# distribution, so the model is never rewarded for being certain.

# %%
backend.manual_seed(0)
config = Seq2SeqConfig(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, max_len=12, n_encoder_layer=2,
                       n_decoder_layer=2, n_head=2, d_model=32, dim_feedforward=64, share_embeddings=True)
model = Seq2SeqTransformer(config)
steps = 60 if QUICK else 700
train_config = TrainConfig(max_steps=steps, lr=3e-3, warmup_steps=60, schedule="noam", eval_interval=steps,
                           eval_batches=4, threads=1)
trainer = Trainer(model, task, AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98)), train_config,
                  tempfile.mkdtemp(prefix="minillm-nb11-"), {"kind": "seq2seq"}, quiet=True)
t0 = time.perf_counter()
trainer.run()
print(f"{steps} steps in {time.perf_counter() - t0:.0f} s, validation loss {trainer.last_val:.3f} "
      f"(label smoothing keeps it above 0)")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3))
ax1.plot([s for s, _ in trainer.history], [loss for _, loss in trainer.history])
ax1.set(xlabel="step", ylabel="training loss", title="label-smoothed cross-entropy")
ax2.plot([noam_schedule(s, 3e-3, 60) for s in range(steps)])
ax2.set(xlabel="step", ylabel="learning rate", title="warm-up, then 1/sqrt(step)")
fig.tight_layout()

# %% [markdown]
# ## What cross-attention looks at
# Each row of the map below is one output token; its columns are the source positions, and the
# colour is the weight that token's query gives each source key (averaged over the heads of the
# last decoder block). To reverse a list, output token $i$ needs source word $n - 1 - i$: the
# trained model's attention should run along the anti-diagonal.

# %%
source = "ant bee cat dog eel fox"
output = translate(model, [source], tok, tok)[0]
print(source, "->", output)
os.environ["MINILLM_KERNELS"] = "plain"     # the lesson's attention keeps its weights P for us to read
model.eval()
model(np.array([tok.encode(source)]), np.array([[tok.token_to_id(BOS)] + tok.encode(output)]))
del os.environ["MINILLM_KERNELS"]
weights = model.decoder_layers[-1].multihead_attn.cache.attention.probs[0].mean(axis=0)   # (T, S)
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(weights, cmap="viridis")
ax.set_xticks(range(len(source.split())), source.split())
ax.set_yticks(range(weights.shape[0]), output.split() + ["</s>"])
ax.set(xlabel="source position (key)", ylabel="output token (query)", title="cross-attention, last block")
fig.tight_layout()

# %% [markdown]
# ## Greedy decoding and beam search
# Greedy decoding takes the most likely token at every step. Beam search keeps the `beam` best
# partial outputs; each step extends each of them by every token, and keeps the `beam` best by
# total log-probability. A finished output's score is divided by Wu et al.'s length penalty
# $((5 + |y|) / 6)^\alpha$, so that longer outputs, which add more negative log-probabilities,
# are not always beaten by short ones. Both reuse the encoder's output and each block's
# cross-attention keys and values for every step, and keep the target's keys and values in a
# cache, so one step costs one position.
#
# A model stopped early makes mistakes that a wider search can repair: the best first word may
# look worse than another after one step, but lead to a better whole output.

# %%
backend.manual_seed(0)
early = Seq2SeqTransformer(config)
short = TrainConfig(max_steps=40 if QUICK else 250, lr=3e-3, warmup_steps=60, schedule="noam", eval_interval=1000,
                    eval_batches=1, threads=1)
Trainer(early, task, AdamW(early.parameters(), lr=3e-3, betas=(0.9, 0.98)), short,
        tempfile.mkdtemp(prefix="minillm-nb11-"), {"kind": "seq2seq"}, quiet=True).run()
sources, references = [s for s, _ in test_pairs], [t for _, t in test_pairs]
for name, m in (("trained", model), ("stopped early", early)):
    greedy = translate(m, sources, tok, tok)
    beam = [nbest[0][0] for nbest in translate(m, sources, tok, tok, beam=4)]
    print(f"{name:14} exact match on {len(sources)} test lists: greedy {np.mean([g == r for g, r in zip(greedy, references)]):.3f}, "
          f"beam 4 {np.mean([b == r for b, r in zip(beam, references)]):.3f}")
print("\nthe n-best list of beam search (score: log-probability / length penalty):")
for text, score in translate(early, ["owl pig rat yak hen gnu fox"], tok, tok, beam=4)[0]:
    print(f"  {score:8.4f}  {text}")

# %% [markdown]
# ## The backward pass, checked
# Every gradient is written by hand; the encoder's arrives only through the cross-attention of
# every decoder block (each block's backward returns both $\partial L/\partial x$ and
# $\partial L/\partial \text{memory}$, and the encoder starts from their sum). A float64 finite
# difference check of a tiny model proves it, parameter by parameter.

# %%
from minillm.gradcheck import TOLERANCE, check_module

backend.manual_seed(0)
tiny = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=11, tgt_vocab_size=11, max_len=8, n_encoder_layer=1,
                                        n_decoder_layer=1, n_head=2, d_model=8, dim_feedforward=16)).to(dtype=np.float64)
rng = np.random.default_rng(0)
pad = np.zeros((2, 5), dtype=bool)
pad[1, 3:] = True                                   # the second source is two positions shorter
errors = check_module(tiny, rng.integers(0, 11, (2, 5)), rng.integers(0, 11, (2, 4)),
                      backward=lambda m, d: (m.backward(d[0]),), src_key_padding_mask=pad)
for name in ("src_embed.weight", "encoder_layers.0.self_attn.in_proj_weight",
             "decoder_layers.0.multihead_attn.in_proj_weight", "generator.weight"):
    print(f"{name:48} relative error {errors[name]:.1e}")
print(f"largest of {len(errors)}: {max(errors.values()):.1e} (tolerance {TOLERANCE:.0e})")
