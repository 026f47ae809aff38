# %% [markdown]
# # 02 · Positional encodings: how a transformer knows word order
#
# **Article:** part 1, section 3 (BERT and GPT: "positional encoding" is one of the parts of the model).
# **Code:** [`minillm/nn/positional.py`](../minillm/nn/positional.py) (sinusoidal and learned tables),
# used by [`minillm/models/gpt.py`](../minillm/models/gpt.py) (`wpe`) and [`minillm/models/bert.py`](../minillm/models/bert.py).
#
# ## Attention alone does not see order
# Self-attention compares every position with every other one, but nothing in
# $\mathrm{softmax}(QK^\top/\sqrt d)V$ says *where* a token sits. Shuffle the input tokens and the
# outputs are shuffled the same way, otherwise unchanged: "dog bites man" and "man bites dog" get the
# same set of vectors. (Mathematically: self-attention without a mask is *permutation-equivariant*.)

# %%
import numpy as np
import matplotlib.pyplot as plt

import minillm
from minillm.nn import MultiHeadAttention, SinusoidalPositionalEncoding, LearnedPositionalEncoding
from minillm.nn.positional import sinusoidal_table
from minillm import gradcheck

minillm.manual_seed(0)
rng = np.random.default_rng(0)
T, C = 5, 16
mha = MultiHeadAttention(C, 4).double()
x = rng.standard_normal((1, T, C))              # five token embeddings
perm = np.array([4, 2, 0, 1, 3])                # a shuffled order

y, y_shuffled = mha(x), mha(x[:, perm])
print("outputs of the shuffled input == shuffled outputs:", np.allclose(y_shuffled, y[:, perm]))

# %% [markdown]
# ## Sinusoidal encodings (Vaswani et al. 2017)
# Add to each token embedding a vector that depends only on its position `pos`:
#
# $$PE_{pos,\,2i} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad
#   PE_{pos,\,2i+1} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)$$
#
# Each pair of dimensions is a clock hand turning at its own speed: the first pairs turn fast
# (wavelength $2\pi$), the last ones slowly (wavelength up to $10000 \cdot 2\pi$), so every position
# gets a distinct pattern and nearby positions get similar ones.

# %%
pe = sinusoidal_table(100, 64)                  # (max_len, d)
fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4))
im = a1.imshow(pe.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
a1.set_xlabel("position")
a1.set_ylabel("dimension")
a1.set_title("sinusoidal table PE (100 positions x 64 dimensions)")
plt.colorbar(im, ax=a1)
for dim in (0, 10, 20, 40):
    a2.plot(pe[:, dim], label=f"dimension {dim}")
a2.set_xlabel("position")
a2.set_title("each dimension is a wave of its own frequency")
a2.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Relative position is built in
# For a fixed offset $k$, $PE_{pos+k}$ is a rotation of $PE_{pos}$ (each sin/cos pair turns by a
# fixed angle), so the dot product $PE_{pos} \cdot PE_{pos+k}$ depends on $k$ only, not on $pos$.
# The similarity matrix is therefore constant along its diagonals and largest on the main one:

# %%
sim = pe @ pe.T
plt.figure(figsize=(5, 4))
plt.imshow(sim, cmap="viridis")
plt.colorbar()
plt.xlabel("position j")
plt.ylabel("position i")
plt.title("PE_i . PE_j depends only on i - j")
plt.show()
print("PE_10.PE_15 =", round(float(sim[10, 15]), 6), "  PE_60.PE_65 =", round(float(sim[60, 65]), 6))

# %% [markdown]
# With the encoding added, shuffling the tokens no longer just shuffles the outputs: order now matters.

# %%
pos = SinusoidalPositionalEncoding(C, max_len=T).double()
y, y_shuffled = mha(pos(x)), mha(pos(x[:, perm]))
print("after adding positions, shuffled outputs == shuffled original:", np.allclose(y_shuffled, y[:, perm]))

# %% [markdown]
# ## Learned encodings (GPT-2, BERT)
# GPT-2 and BERT do not use the formula: they learn a table `wpe` of shape `(block_size, C)` like any
# other weight, and add row `pos` to the token at `pos`. The forward is a lookup-and-add; the
# backward sends each position's gradient to its row:
#
# $$y_{b,t} = x_{b,t} + W_t \quad\Rightarrow\quad \frac{\partial L}{\partial W_t} = \sum_b \frac{\partial L}{\partial y_{b,t}},\qquad
#   \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}$$
#
# The price: a model trained with `block_size` positions has no row for position `block_size` and
# cannot read longer texts (GPT-2: 1024). The check below compares that backward with finite differences.

# %%
learned = LearnedPositionalEncoding(C, max_len=8).double()
errors = gradcheck.check_module(learned, rng.standard_normal((2, 6, C)))
print({name: f"{err:.1e}" for name, err in errors.items()})
assert max(errors.values()) < gradcheck.TOLERANCE

plt.figure(figsize=(6, 2.5))
plt.imshow(learned.weight.data.T, aspect="auto", cmap="RdBu")
plt.xlabel("position")
plt.ylabel("dimension")
plt.title("a learned table before training: random N(0, 0.02), it only means something after training")
plt.colorbar()
plt.show()
