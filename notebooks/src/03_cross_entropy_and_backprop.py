# %% [markdown]
# # 03 · Cross-entropy, maximum likelihood and backpropagation
#
# **Article:** part 1, section 4 (the loss over token positions) and part 2, section 4 (maximise
# $\sum_i \log p(x_i \mid \theta)$; the per-sequence cross-entropy).
# **Code:** [`minillm/nn/loss.py`](../minillm/nn/loss.py) (loss and its gradient),
# [`minillm/nn/activations.py`](../minillm/nn/activations.py) (log-softmax),
# [`minillm/gradcheck/finite_differences.py`](../minillm/gradcheck/finite_differences.py) (finite differences).
#
# ## From likelihood to a loss
# A language model gives, at every position $t$, a distribution $p_\theta(\cdot \mid w_{<t})$ over the
# vocabulary. Training makes the text we have as probable as possible:
#
# $$\max_\theta \prod_t p_\theta(w_t \mid w_{<t}) \iff \min_\theta\; -\frac1N \sum_t \log p_\theta(w_t \mid w_{<t})$$
#
# The right-hand side is the **cross-entropy** between the data and the model, averaged over the $N$
# predicted tokens. The model outputs *logits* $z \in \mathbb{R}^V$; softmax turns them into
# probabilities, so the loss at one position with target $y$ is
#
# $$\ell = -\log \mathrm{softmax}(z)_y = -z_y + \log \sum_c e^{z_c}.$$

# %%
import numpy as np
import matplotlib.pyplot as plt

import minillm
from minillm.nn import CrossEntropyLoss, Linear, GELU, Module
from minillm import gradcheck

vocab = ["a", "b", "c", "d", "e"]
z = np.array([[2.0, 1.0, 0.1, -1.0, 0.5]])       # logits for one position
y = np.array([0])                                  # the true next token is "a"

p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
by_hand = -np.log(p[0, y[0]])
loss_fn = CrossEntropyLoss()
print("softmax(z) =", p.round(3), "  loss by hand =", round(float(by_hand), 6),
      "  minillm =", round(float(loss_fn(z, y)), 6))
try:
    import torch
    print("PyTorch F.cross_entropy =", round(float(torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y))), 6))
except ImportError:
    print("PyTorch is not installed: comparison skipped")

# %% [markdown]
# $-\log p$ is 0 when the model is certain and right, and grows without bound as the probability of
# the right token goes to 0. A model that knows nothing spreads its probability evenly and pays
# $\log V$ per token. $e^{\text{loss}}$ is the **perplexity**: "as unsure as a uniform choice among
# that many tokens".

# %%
ps = np.linspace(0.01, 1, 200)
plt.figure(figsize=(6, 3.5))
plt.plot(ps, -np.log(ps))
plt.axhline(np.log(len(vocab)), ls="--", c="gray")
plt.text(0.55, np.log(len(vocab)) + 0.15, f"uniform guess over V={len(vocab)}: log V = {np.log(len(vocab)):.2f}")
plt.xlabel("probability the model gives to the correct token")
plt.ylabel("loss = -log p")
plt.title("per-token cross-entropy")
plt.show()

# %% [markdown]
# ## Its gradient: softmax minus one-hot
# Differentiate $\ell = -z_y + \log\sum_c e^{z_c}$ with respect to $z_j$:
#
# $$\frac{\partial \ell}{\partial z_j} = -[j = y] + \frac{e^{z_j}}{\sum_c e^{z_c}} = \mathrm{softmax}(z)_j - \mathrm{onehot}(y)_j$$
#
# Push up the right logit, push down every other one in proportion to its probability. Averaged over
# $N$ positions the gradient is divided by $N$ (`cross_entropy_backward` in
# [loss.py](../minillm/nn/loss.py)). Check it against central differences, entry by entry:

# %%
analytic = loss_fn.backward()[0]
h = 1e-5
numeric = np.zeros(len(vocab))
for j in range(len(vocab)):
    zp, zm = z.copy(), z.copy()
    zp[0, j] += h
    zm[0, j] -= h
    numeric[j] = (float(loss_fn(zp, y)) - float(loss_fn(zm, y))) / (2 * h)
loss_fn.cache = None
print("softmax - onehot :", analytic.round(6))
print("finite difference:", numeric.round(6))
assert np.allclose(analytic, numeric, atol=1e-8)

xs = np.arange(len(vocab))
plt.figure(figsize=(6, 3.2))
plt.bar(xs - 0.2, analytic, 0.4, label="analytic: softmax - onehot")
plt.bar(xs + 0.2, numeric, 0.4, label="numeric: (L(z+h) - L(z-h)) / 2h")
plt.xticks(xs, vocab)
plt.axhline(0, c="k", lw=0.5)
plt.legend()
plt.title("dloss/dlogits: the right token ('a') is pushed up, the others down")
plt.show()

# %% [markdown]
# ## Backpropagation through a small network
# A network is a chain of layers $x \to h_1 \to h_2 \to z \to \ell$. The chain rule multiplies the
# local derivatives from the loss backwards, so each layer only needs one function: given
# $\partial\ell/\partial(\text{its output})$, return $\partial\ell/\partial(\text{its input})$ and add its
# parameters' gradients. That is exactly the `backward` method of every minillm layer, called in the
# reverse order of `forward`:

# %%
class TinyNet(Module):
    """Linear(4, 8) -> GELU -> Linear(8, 5): logits for 5 classes."""

    def __init__(self):
        self.fc1, self.act, self.fc2 = Linear(4, 8), GELU(), Linear(8, 5)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))

    def backward(self, dz):
        return self.fc1.backward(self.act.backward(self.fc2.backward(dz)))   # reverse order


minillm.manual_seed(0)
net = TinyNet().double()
x = np.random.default_rng(1).standard_normal((6, 4))
targets = np.array([0, 1, 2, 3, 4, 0])
loss = loss_fn(net(x), targets)
net.zero_grad()
net.backward(loss_fn.backward())
print(f"loss {float(loss):.4f};  gradient shapes:", {n: p.grad.shape for n, p in net.named_parameters()})

# the proof: every parameter's gradient against finite differences of the network's output
errors = gradcheck.check_module(net, x)
print({n: f"{e:.1e}" for n, e in errors.items()})
assert max(errors.values()) < gradcheck.TOLERANCE

# %% [markdown]
# ## Training is following this gradient
# A few hundred steps of plain gradient descent, $\theta \leftarrow \theta - \eta\, \partial\ell/\partial\theta$,
# on these six points. The loss falls from about $\log 5 = 1.61$ (guessing) towards 0 (every target
# certain): maximum likelihood in action.

# %%
losses = []
for step in range(300):
    losses.append(float(loss_fn(net(x), targets)))
    net.zero_grad()
    net.backward(loss_fn.backward())
    for p in net.parameters():
        p.data -= 0.5 * p.grad
plt.figure(figsize=(6, 3.2))
plt.plot(losses)
plt.axhline(np.log(5), ls="--", c="gray", label="log V (uniform guess)")
plt.xlabel("step")
plt.ylabel("cross-entropy")
plt.legend()
plt.title("gradient descent on the cross-entropy")
plt.show()
print(f"loss {losses[0]:.3f} -> {losses[-1]:.4f}; perplexity {np.exp(losses[0]):.2f} -> {np.exp(losses[-1]):.3f}")
