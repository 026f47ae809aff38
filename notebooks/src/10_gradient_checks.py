# %% [markdown]
# # 10 · Writing a backward pass, and catching the wrong ones
#
# **Article:** part 2, section 3, step 5 (the backward pass) and part 1, section 4 (the math the
# gradients come from).
# **Code:** [`minillm/gradcheck/finite_differences.py`](../minillm/gradcheck/finite_differences.py) (the check), the `*_backward` functions
# in [`minillm/nn/`](../minillm/nn/) (what it checks), `minillm gradcheck` (all of them at once).
#
# minillm has no autograd. Every gradient exists because somebody derived it and typed it in, and
# typing it in is where mistakes happen. So every backward here is compared with the one definition
# of a derivative that needs no derivation: the finite difference. This notebook does what a
# contributor does when adding a layer (derive, write, check), then plants the mistakes that
# hand-written backward passes most often contain and shows what each one looks like in the check.
#
# ## The check
# For out = f(x), draw a random upstream gradient `dout` shaped like `out` and form the scalar
# $L = \sum \text{out} \cdot \text{dout}$. A backward pass must return $\partial L/\partial x$.
# Central differences estimate it one entry at a time, with an error of order $h^2$:
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h\,e_i) - L(x - h\,e_i)}{2h}$$
#
# The two are compared by relative error, $\lVert a - n\rVert / (\lVert a\rVert + \lVert n\rVert)$: about
# $10^{-11}$ for a right backward in float64, usually $10^{-3}$ to $1$ for a wrong one (mistake 6 below
# is the exception). minillm's tests fail above $10^{-6}$ (`gradcheck.TOLERANCE`).

# %%
import numpy as np
import matplotlib.pyplot as plt

import minillm
from minillm import gradcheck
from minillm.nn import Embedding, Module
from minillm.nn.linear import linear_backward, linear_forward

rng = np.random.default_rng(0)
x = rng.standard_normal((6, 5))          # N = 6 positions, C = 5 features, float64
w = rng.standard_normal(5)
results = {}                             # name -> worst relative error, for the chart at the end


def worst(errors):
    return max(errors.values())


def fmt(errors):
    """{'arg0': 2.5e-11, ...} -> {'arg0': '2.5e-11', ...}; check_pair names the checked arguments arg0, arg1, ..."""
    return {k: f"{v:.1e}" for k, v in errors.items()}

# %% [markdown]
# ## Exercise: a layer minillm does not have, RMSNorm
# LLaMA and many later models replace LayerNorm with RMSNorm (Zhang & Sennrich 2019): no mean is
# subtracted and there is no bias, only a division by the root mean square.
#
# $$r = \sqrt{\tfrac1C \textstyle\sum_c x_c^2 + \epsilon}, \qquad \hat x = x / r, \qquad y = \hat x \odot w$$
#
# **Derive.** With $g = \text{dy} \odot w$ (the gradient reaching $\hat x$) and $\partial r/\partial x_j = x_j/(C r)$:
#
# $$\frac{\partial L}{\partial x_j} = \frac{g_j}{r} - \frac{x_j}{C r^3}\sum_c g_c x_c
#   = \frac{1}{r}\Big(g_j - \hat x_j \cdot \tfrac1C \textstyle\sum_c g_c \hat x_c\Big),
#   \qquad \frac{\partial L}{\partial w} = \sum_{\text{positions}} \text{dy} \odot \hat x$$
#
# The first term is the direct path through $x/r$; the second is the path through $r$, which
# depends on every $x_c$. **Write** it, then **check** it:

# %%
def rmsnorm_forward(x, w, eps=1e-6):
    """x: (..., C), w: (C,) -> y: (..., C), and the cache for the backward."""
    r = np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)     # (..., 1)
    xhat = x / r
    return xhat * w, (xhat, r, w)


def rmsnorm_backward(douts, cache):
    """douts: [dy], dy: (..., C) -> (dx, dw)."""
    (dy,), (xhat, r, w) = douts, cache
    g = dy * w
    dx = (g - xhat * (g * xhat).mean(axis=-1, keepdims=True)) / r
    dw = (dy * xhat).reshape(-1, xhat.shape[-1]).sum(axis=0)
    return dx, dw


errors = gradcheck.check_pair(rmsnorm_forward, rmsnorm_backward, (x, w), wrt=(0, 1))
print("RMSNorm, float64 (arg0 = x, arg1 = w):", fmt(errors))
assert worst(errors) < gradcheck.TOLERANCE
results["right (float64)"] = worst(errors)

try:                                     # a second witness, where PyTorch is installed
    import torch
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    dy = rng.standard_normal(x.shape)
    torch.nn.functional.rms_norm(tx, (5,), tw, eps=1e-6).backward(torch.tensor(dy))
    dx, dw = rmsnorm_backward([dy], rmsnorm_forward(x, w)[1])
    print("largest difference from torch.nn.functional.rms_norm:",
          f"{max(np.abs(dx - tx.grad.numpy()).max(), np.abs(dw - tw.grad.numpy()).max()):.1e}")
except ImportError:
    print("PyTorch is not installed: comparison skipped")

# %% [markdown]
# ## Six common mistakes, and what the check says
# Each function below is a copy of a right backward with one classic mistake in it.
#
# **1. A missing path.** Forgetting that $r$ depends on $x$ keeps only the direct term.

# %%
def rmsnorm_backward_no_r_path(douts, cache):
    (dy,), (xhat, r, w) = douts, cache
    return dy * w / r, (dy * xhat).reshape(-1, xhat.shape[-1]).sum(axis=0)


errors = gradcheck.check_pair(rmsnorm_forward, rmsnorm_backward_no_r_path, (x, w), wrt=(0, 1))
print(fmt(errors), "<- dx is wrong, dw is still right")
results["1 missing path"] = worst(errors)

# %% [markdown]
# **2. A broadcast undone with the wrong reduction.** $w$ is shared by all $N$ positions, so its
# gradient is the *sum* over them. A mean has the right shape and points the right way, but is
# $N$ times too small: relative error $(N-1)/(N+1) = 5/7$ here.

# %%
def rmsnorm_backward_mean(douts, cache):
    dx, _ = rmsnorm_backward(douts, cache)
    (dy,), (xhat, r, w) = douts, cache
    return dx, (dy * xhat).mean(axis=0)


errors = gradcheck.check_pair(rmsnorm_forward, rmsnorm_backward_mean, (x, w), wrt=(0, 1))
print(fmt(errors), " (N - 1)/(N + 1) =", round(5 / 7, 2))
results["2 mean, not sum"] = worst(errors)

# %% [markdown]
# **3. Shapes that match, values that do not.** For a square Linear layer, $dW = dout^T x$ and its
# transpose $x^T dout$ have the same shape, so no shape check can catch the swap. Only the numbers
# can.

# %%
W = rng.standard_normal((5, 5))


def linear_backward_transposed(douts, cache):
    dx, dW, _ = linear_backward(douts[0], cache)
    return dx, dW.T                                                 # x^T dout instead of dout^T x


print("right:     ", fmt(gradcheck.check_pair(linear_forward, lambda d, c: linear_backward(d[0], c)[:2], (x, W), wrt=(0, 1))))
errors = gradcheck.check_pair(linear_forward, linear_backward_transposed, (x, W), wrt=(0, 1))
print("transposed:", fmt(errors), " (arg0 = x, arg1 = W)")
results["3 transposed dW"] = worst(errors)

# %% [markdown]
# **4. A shared weight whose gradient is overwritten.** GPT ties its output matrix to its token
# embedding: one array, used twice, so its gradient is the sum of two shares. minillm's layers
# *add* into `.grad` for that reason. A layer that assigns instead throws the first share away.

# %%
class TiedToy(Module):
    """Embedding(V, C), then logits = h @ E^T with the same E (GPT's weight tying)."""

    def __init__(self, overwrite=False):
        self.emb, self.overwrite = Embedding(7, 4), overwrite

    def forward(self, idx):
        logits, self.cache = linear_forward(self.emb(idx), self.emb.weight.data)
        return logits

    def backward(self, dlogits):
        dh, dE, _ = linear_backward(dlogits, self.pop_cache())
        self.emb.weight.grad += dE                                  # share 1: the output matrix
        if self.overwrite:
            self.emb.weight.grad[...] = 0                           # the mistake: grad = ..., not +=
        self.emb.backward(dh)                                       # share 2: the lookup


idx = rng.integers(0, 7, (2, 3))
for overwrite in (False, True):
    minillm.manual_seed(0)
    errors = gradcheck.check_module(TiedToy(overwrite).double(), idx)
    print("overwrite " if overwrite else "accumulate", fmt(errors))
results["4 overwritten share"] = worst(errors)

# %% [markdown]
# **5. A cache changed after the forward pass.** A forward keeps references, not copies. Here the
# sigmoid keeps its output `s` for the backward ($\sigma' = s(1-s)$), and the caller then doubles
# that same array in place. The backward reads the doubled values.

# %%
def sigmoid_forward(x):
    s = 1.0 / (1.0 + np.exp(-x))
    return s, s                                                     # the cache IS the output array


def twice_sigmoid_forward(x, in_place):
    out, cache = sigmoid_forward(x)
    if in_place:
        out *= 2.0                                                  # the mistake: also changes the cache
    else:
        out = 2.0 * out                                             # a new array: the cache is untouched
    return out, cache


def twice_sigmoid_backward(douts, s):
    return (2.0 * douts[0] * s * (1.0 - s),)


for in_place in (False, True):
    errors = gradcheck.check_pair(lambda x: twice_sigmoid_forward(x, in_place), twice_sigmoid_backward, (x,), wrt=(0,))
    print("in place " if in_place else "new array", fmt(errors))
results["5 cache edited in place"] = worst(errors)

# %% [markdown]
# **6. A mistake too small to see.** A check has a resolution. Suppose the backward recomputes $r$
# but forgets the $\epsilon$. Its gradient is then off by a relative amount of order
# $\epsilon / \text{mean}(x^2)$. With $\epsilon = 10^{-2}$ the check fails clearly; with the
# $10^{-6}$ used here it fails just barely; with $\epsilon = 10^{-8}$ (a common choice too) the wrong
# backward passes. A passing check proves a backward right to about the tolerance, not exactly.

# %%
def rmsnorm_backward_no_eps(douts, cache):
    (dy,), (xhat, r, w) = douts, cache
    x_ = xhat * r
    r0 = np.sqrt((x_ * x_).mean(axis=-1, keepdims=True))           # the mistake: no + eps
    return rmsnorm_backward(douts, (x_ / r0, r0, w))


for eps in (1e-2, 1e-6, 1e-8):
    errors = gradcheck.check_pair(lambda x, w: rmsnorm_forward(x, w, eps), rmsnorm_backward_no_eps, (x, w), wrt=(0, 1))
    print(f"eps = {eps:.0e}:", fmt(errors), "passes" if worst(errors) < gradcheck.TOLERANCE else "fails")


# %% [markdown]
# ## Why the check runs in float64
# The same right RMSNorm backward, checked in float32, looks broken. Two errors compete in a finite
# difference: truncation, which shrinks like $h^2$, and rounding, which grows like $\varepsilon/h$
# ($\varepsilon$ is the machine epsilon: $1.2 \times 10^{-7}$ in float32, $2.2 \times 10^{-16}$ in
# float64). Their sum is smallest near $h \approx \varepsilon^{1/3}$: about $10^{-5}$ in float64,
# where the check reaches $10^{-11}$, but $5 \times 10^{-3}$ in float32, where it cannot get below
# about $10^{-5}$. A float32 check cannot tell a small bug from rounding; a float64 check can.

# %%
def check_with_step(dtype, h):
    xs, ws = x.astype(dtype), w.astype(dtype)
    (dy,) = gradcheck.random_like(rmsnorm_forward(xs, ws)[0])
    dx, _ = rmsnorm_backward([dy], rmsnorm_forward(xs, ws)[1])
    loss = lambda: float((rmsnorm_forward(xs, ws)[0] * dy).sum())
    entries = np.arange(xs.size)
    return gradcheck.rel_error(dx.reshape(-1), gradcheck.numerical_gradient(loss, xs, entries, h))


steps = np.logspace(-9, -1, 17)
curves = {dt.__name__: [check_with_step(dt, h) for h in steps] for dt in (np.float64, np.float32)}
results["right, float32 check"] = check_with_step(np.float32, 1e-5)
plt.figure(figsize=(6, 3.5))
for name, errs in curves.items():
    plt.loglog(steps, errs, "o-", label=name)
plt.axhline(gradcheck.TOLERANCE, ls="--", c="gray", label="minillm's tolerance 1e-6")
plt.axvline(1e-5, ls=":", c="k", lw=0.8)
plt.xlabel("finite-difference step h")
plt.ylabel("relative error (right backward)")
plt.legend()
plt.title("rounding (left) vs truncation (right)")
plt.show()
print({k: f"best {min(v):.0e} at h = {steps[int(np.argmin(v))]:.0e}" for k, v in curves.items()},
      f"; float32 at minillm's h = 1e-5: {results['right, float32 check']:.0e}")

# %% [markdown]
# ## All of it in one picture
# Right backward passes sit near $10^{-11}$ and the planted mistakes between 0.2 and 0.9, ten orders of
# magnitude apart. Quiet mistakes like number 6 are the reason the tolerance is as tight as
# $10^{-6}$ and the check runs in float64, where a right backward stays five orders below the line.
# The green bar above the line is the right backward checked in float32, which such a check would
# wrongly reject.
# To check every backward in minillm this way: `minillm gradcheck`.

# %%
names, values = list(results), list(results.values())
plt.figure(figsize=(7, 3.6))
colors = ["tab:green" if "right" in n else "tab:red" for n in names]
plt.barh(names, values, color=colors)
plt.xscale("log")
plt.axvline(gradcheck.TOLERANCE, ls="--", c="gray")
plt.gca().invert_yaxis()
plt.xlabel("worst relative error")
plt.title("gradient check: right backward passes vs planted mistakes")
plt.show()
assert results["right (float64)"] < 1e-8
assert all(v > 1e-2 for n, v in results.items() if "right" not in n)

# %% [markdown]
# ## Your turn: a graded exercise, end to end
# `minillm exercises` turns this into assignments: 18 functions of the library, in course order,
# each to be re-derived under its own name and signature and graded by the same checks (float64
# finite differences, a comparison with the library, the function plugged into a real layer).
# A teacher hands out a workspace; a student fills it in and runs the check; the checker names the
# common mistakes. From a terminal: `minillm exercises start w`, then `minillm exercises check w`.
# Here, from Python, on the LayerNorm exercise:

# %%
import tempfile
from pathlib import Path

from minillm import exercises

workspace = Path(tempfile.mkdtemp()) / "w"
exercises.start(workspace, only="layer_norm")
starter = (workspace / "layer_norm.py").read_text()
print(starter[starter.index("from minillm"):])

# %% [markdown]
# A first attempt, written the way a student might: the direct path and the path through the
# variance, but not the one through the mean. The checker runs it in a separate process and says
# which branch is missing.

# %%
attempt = starter[:starter.index("def layer_norm_backward")] + '''def layer_norm_backward(dout, cache):
    xhat, rstd, weight = cache
    axes = tuple(range(dout.ndim - 1))
    dxhat = dout * weight
    C = dout.shape[-1]
    dx = rstd * (dxhat - xhat * (dxhat * xhat).sum(axis=-1, keepdims=True) / C)
    return dx, (dout * xhat).sum(axis=axes), dout.sum(axis=axes)
'''
(workspace / "layer_norm.py").write_text(attempt)
print(exercises.format_table(exercises.check(workspace, "layer_norm")))

# %% [markdown]
# The mean is subtracted from every $x_c$, so each $x_j$ also moves every $\hat x_c$ through it:
# that adds $-\frac{1}{C}\sum_c \partial L/\partial \hat x_c$ to every entry. With the third term the
# exercise passes, and `--json` writes what Gradescope reads:

# %%
fixed = attempt.replace("dx = rstd * (dxhat - xhat", "dx = rstd * (dxhat - dxhat.sum(axis=-1, keepdims=True) / C - xhat")
(workspace / "layer_norm.py").write_text(fixed)
results = exercises.check(workspace, "layer_norm")
print(exercises.format_table(results))
print(exercises.gradescope(results))
assert results[0]["status"] == "passed"
