# %% [markdown]
# # 09 · Tokenizers: from text to ids and back
#
# **Article:** part 2, section 2 (the vocabulary a model reads and writes with) and section 3, step 1
# (preprocessing: cutting the text into tokens); part 1, section 5, whose code loads
# `GPT2Tokenizer` (byte-level BPE, this notebook) and `BertTokenizer` (WordPiece, notebook 06).
# **Code:** [`minillm/tokenizers/bpe.py`](../minillm/tokenizers/bpe.py) (`CharTokenizer`, `ByteBPETokenizer`),
# [`minillm/tokenizers/wordpiece.py`](../minillm/tokenizers/wordpiece.py) (BERT's WordPiece).
#
# ## What a tokenizer decides
# A model never sees text, only integers in $[0, V)$. The tokenizer fixes $V$, the vocabulary size,
# and with it two costs that pull in opposite directions:
#
# - the embedding table and the output layer each hold $V \times C$ numbers ($C$: the model width);
# - the number of tokens a text turns into, which sets how many positions attention must look at
#   and how many predictions one training step makes.
#
# Characters give a small $V$ and long sequences; whole words give short sequences, a huge $V$ and
# words the model has never seen. Byte-pair encoding (BPE) starts from bytes and learns the pieces
# in between from data.

# %%
import os
import time

import matplotlib.pyplot as plt

from minillm.training import data
from minillm.tokenizers import ByteBPETokenizer, CharTokenizer, merge_pair
from minillm.tokenizers.bpe import SPLIT_PATTERN

QUICK = os.environ.get("MINILLM_NOTEBOOK_QUICK") == "1"   # set by tests/test_notebooks.py: a short run
corpus = data.builtin_corpus()                            # docstrings of this Python's standard library
print(f"{len(corpus):,} characters, {len(corpus.encode('utf-8')):,} bytes")

# %% [markdown]
# ## Characters
# The simplest vocabulary: every distinct character of the training text gets an id. It is what
# `minillm train` uses by default. Its weakness shows as soon as the text contains a character the
# training text did not.

# %%
chars = CharTokenizer.train(corpus)
ids = chars.encode("Return the value.")
print("V =", chars.vocab_size)
print(ids)
print(repr(chars.decode(ids)))
try:
    chars.encode("返回值")
except ValueError as e:
    print("ValueError:", e)

# %% [markdown]
# ## Bytes
# UTF-8 writes every character as 1 to 4 bytes, so 256 byte values can spell any text at all: a
# byte-level vocabulary has no unknown tokens. The price is length: a Chinese character is three
# bytes, an emoji four.

# %%
for s in ["a", "é", "数", "😀"]:
    b = s.encode("utf-8")
    print(f"{s!r}: {len(b)} byte(s) {list(b)}")

# %% [markdown]
# ## Byte-pair encoding, by hand
# BPE (Sennrich et al. 2016; GPT-2's tokenizer) grows the vocabulary one token at a time:
#
# 1. cut the text into pieces (words with their leading space, numbers, punctuation, whitespace),
#    so that no token spans two words;
# 2. write each piece as its bytes;
# 3. count every adjacent pair of tokens; the most frequent pair $(a, b)$ becomes a new token with
#    the next free id, and every occurrence of $a\,b$ is replaced by it;
# 4. repeat step 3 until the vocabulary has the size asked for, or until no pair occurs twice
#    (merging a pair seen once saves one token in one place and costs a vocabulary entry).
#
# Here are the merges on a tiny text, counted from scratch at every step.

# %%
tiny = "the cat sat on the mat; the hat and the bat sat on the cat"
words = [list(w.encode("utf-8")) for w in SPLIT_PATTERN.findall(tiny)]
print("pieces:", SPLIT_PATTERN.findall(tiny))
token_text = {i: bytes([i]) for i in range(256)}
by_hand = []
for step in range(10):
    counts = {}
    for w in words:
        for pair in zip(w, w[1:]):
            counts[pair] = counts.get(pair, 0) + 1
    best = min(counts, key=lambda p: (-counts[p], p))          # most frequent; ties: smallest ids
    if counts[best] < 2:
        print(f"no pair occurs twice: stop after {step} merges")
        break
    new_id = 256 + step
    token_text[new_id] = token_text[best[0]] + token_text[best[1]]
    by_hand.append(best)
    words = [merge_pair(w, best, new_id) for w in words]
    print(f"merge {step + 1}: {token_text[best[0]]!r} + {token_text[best[1]]!r} -> id {new_id} "
          f"{token_text[new_id]!r}  (seen {counts[best]} times)")

# %% [markdown]
# **Check:** `ByteBPETokenizer.train` must learn exactly these merges. It does not recount
# everything at each step. It counts each distinct piece once, with its frequency. After a merge it
# updates only the pieces that contain the merged pair. And it keeps the counts in a heap, so the
# most frequent pair comes out without a pass over all of them. Those are shortcuts, and this cell
# checks that they change nothing. (`tests/test_tokenizers_data.py` checks the same on longer text.)

# %%
learned = ByteBPETokenizer.train(tiny, 256 + 10).merges
print(learned)
assert learned == by_hand, "the fast training differs from the definition"
print("same merges as by hand")

# %% [markdown]
# ## On real text
# Trained on the standard-library docstrings, the first merges are the commonest letter pairs
# and short words with their leading space; later merges are whole words of Python's vocabulary.

# %%
n_bytes = 200_000 if QUICK else 1_000_000
text = corpus.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore")
held_out = corpus.encode("utf-8")[n_bytes:n_bytes + 50_000].decode("utf-8", errors="ignore")
t0 = time.perf_counter()
bpe = ByteBPETokenizer.train(text, 1024)
print(f"V = 1024 (256 bytes + {len(bpe.merges)} merges) learned from {len(text.encode('utf-8')):,} bytes "
      f"in {time.perf_counter() - t0:.1f} s")
show = lambda ids: [bpe.token_bytes[i].decode("utf-8", errors="replace") for i in ids]
print("merges 1-12:   ", show(range(256, 268)))
print("merges 757-768:", show(range(1012, 1024)))
sentence = "Return the number of items in the container."
ids = bpe.encode(sentence)
print(f"{len(sentence)} characters -> {len(ids)} tokens:", show(ids))

# %% [markdown]
# ## Vocabulary size against sequence length
# More merges make the text shorter, with fewer tokens per byte of held-out text (text the
# tokenizer was not trained on). But every token costs a row of the embedding table, and since
# GPT ties the output layer to it, a row there too. The first few hundred merges halve the length.
# After that, each extra thousand tokens buys less.

# %%
sizes = [256, 300, 512, 1024, 2048] if QUICK else [256, 300, 512, 1024, 2048, 4096, 8192]
per_byte = []
for v in sizes:
    tok = ByteBPETokenizer.train(text, v)
    per_byte.append(len(tok.encode(held_out)) / len(held_out.encode("utf-8")))
    print(f"V = {v:5d}: {per_byte[-1]:.3f} tokens per byte, embedding table {v * 128:,} numbers at C = 128")

fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
ax[0].plot(sizes, per_byte, "o-")
ax[0].set_xscale("log", base=2)
ax[0].set_xlabel("vocabulary size V")
ax[0].set_ylabel("tokens per byte (held-out text)")
ax[0].set_title("larger vocabularies, shorter sequences")
ax[1].plot(sizes, [v * 128 / 1e6 for v in sizes], "o-", c="C1")
ax[1].set_xscale("log", base=2)
ax[1].set_xlabel("vocabulary size V")
ax[1].set_ylabel("million parameters (V x 128)")
ax[1].set_title("the embedding table grows with V")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Any text, back unchanged
# Because every token is a byte string, decoding just glues the bytes back together, so
# `decode(encode(s)) == s` for every string, even one with characters the training text never
# contained. Special tokens such as `<|endoftext|>` (GPT-2's document separator) or BERT's `[MASK]`
# get ids of their own after the learned ones. They are recognised inside text only when asked
# (`allowed_special=True`), so a document that happens to contain the string cannot inject them.
# Note the Chinese line below: one token per byte. The docstrings hold almost no Chinese, so no merge
# covers it. A tokenizer compresses the kind of text it was trained on, and only that.

# %%
bpe_sp = ByteBPETokenizer.train(text, 512, special_tokens=("<|endoftext|>",))
for s in ["数据和模型 😀", "tabs\tand\nnew lines", "x = 1_000  # comment"]:
    ids = bpe_sp.encode(s)
    assert bpe_sp.decode(ids) == s
    print(f"{s!r}: {len(s.encode('utf-8'))} bytes -> {len(ids)} tokens, round trip ok")
doc = "first document<|endoftext|>second"
eot = bpe_sp.token_to_id("<|endoftext|>")
for allowed in (False, True):
    ids = bpe_sp.encode(doc, allowed_special=allowed)
    print(f"allowed_special={allowed}: {len(ids)} tokens, contains id {eot} (<|endoftext|>): {eot in ids}")

# %% [markdown]
# ## GPT-2 and BERT
# - GPT-2's tokenizer is this algorithm with 50,000 merges learned from web text, saved as
#   `vocab.json` + `merges.txt`. `ByteBPETokenizer.from_gpt2_files` reads them, and the tests check
#   its ids against Hugging Face's on mixed text.
# - BERT's WordPiece (`minillm/tokenizers/wordpiece.py`, notebook 06) also builds words from pieces, but it
#   works on characters, marks pieces inside a word with `##`, and needs an `[UNK]` token.
# - Train a model on BPE tokens with `minillm train --tokenizer bpe --vocab-size 1024`.
