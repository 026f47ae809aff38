"""Scaled dot-product attention and multi-head attention (Vaswani et al. 2017).

Letters: B batch, H heads, T query positions, S key positions, D head size,
C = H * D model width.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(D) + M) V
    q: (B, H, T, D), k: (B, H, S, D), v: (B, H, S, D) -> out: (B, H, T, D)

M is the mask: 0 where a query may look at a key, -inf where it may not
(causal: key j > query i; padding: key j is a pad token), or any additive float.
The engine (minillm.kernels) has a fused CUDA kernel and a faster NumPy version of the
same formula; ``minillm.kernels.dispatch.last("scaled_dot_product_attention")`` says which ran.
"""
import math
from typing import NamedTuple

from .. import backend
from ..kernels import dispatch
from .checks import check_backend, check_float, check_ndim, check_last_dim, check_positions, check_same_dtype
from .dropout import dropout_mask
from .linear import linear_backward, linear_forward
from .module import Module, Parameter
from . import init


# ============================================================================ masks
def check_masks(attn_mask, key_padding_mask, shape):
    """Raise ValueError unless attn_mask broadcasts to ``shape`` (B, H, T, S) and key_padding_mask is (B, S) bool."""
    B, H, T, S = shape
    if attn_mask is not None:
        try:
            backend.get_array_module(attn_mask).broadcast_shapes(tuple(attn_mask.shape), shape)
        except ValueError:
            raise ValueError(f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to "
                             f"(B, H, T, S) = {shape}") from None
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (B, S) or key_padding_mask.dtype != bool:
            raise ValueError(f"key_padding_mask must be a bool array of shape (B, S) = {(B, S)}, got "
                             f"{key_padding_mask.dtype} of shape {tuple(key_padding_mask.shape)}")


def build_mask(attn_mask, key_padding_mask, is_causal, shape, xp):
    """Combine the mask options into (allowed, additive) for scores of ``shape`` (B, H, T, S).

    attn_mask: bool (True = may attend) or float (added to the scores), broadcastable to (B, H, T, S)
    key_padding_mask: (B, S) bool, True = padding (never attended)
    is_causal: query i attends keys j <= i (top-left aligned, as torch when T != S)
    Returns allowed: bool broadcastable to (B, H, T, S) or None; additive: float or None.
    """
    B, H, T, S = shape
    allowed, additive = None, None
    if attn_mask is not None:
        if attn_mask.dtype == bool:
            allowed = attn_mask
        else:
            additive = attn_mask
    if key_padding_mask is not None:
        keep = ~key_padding_mask[:, None, None, :]                     # (B, S) -> (B, 1, 1, S)
        allowed = keep if allowed is None else allowed & keep
    if is_causal:
        causal = xp.tril(xp.ones((T, S), dtype=bool))                  # (T, S)
        allowed = causal if allowed is None else allowed & causal
    return allowed, additive


# ============================================================================ forward
class AttentionCache(NamedTuple):
    """What scaled_dot_product_attention_backward needs from the forward."""
    q: object               # (B, H, T, D)
    k: object               # (B, H, S, D)
    v: object               # (B, H, S, D)
    probs: object           # (B, H, T, S) softmax weights
    probs_dropped: object   # (B, H, T, S) the weights after dropout (probs itself without dropout)
    dropout_mask: object    # (B, H, T, S) bool keep-mask, or None
    dropout_p: float
    scale: float


def scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False, key_padding_mask=None,
                                 dropout_p=0.0, dropout_mask=None, scale=None):
    """out = softmax(q k^T * scale + mask) v, with scale = 1/sqrt(D) by default.

    q: (B, H, T, D), k, v: (B, H, S, D) -> out: (B, H, T, D); also returns the cache for the backward.
    dropout_mask: bool keep-mask (B, H, T, S) applied to the probabilities when dropout_p > 0.
    A query row whose every key is masked gets output 0 (and gradient 0), not NaN.
    """
    _check_qkv(q, k, v)
    xp = backend.get_array_module(q)
    B, H, T, D = q.shape
    S = k.shape[2]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    key_padding_mask = None if key_padding_mask is None else backend.to_device_of(key_padding_mask, q)
    attn_mask = None if attn_mask is None else backend.to_device_of(attn_mask, q)
    check_masks(attn_mask, key_padding_mask, (B, H, T, S))
    kernel = dispatch.find("scaled_dot_product_attention", q, k, v, attn_mask, is_causal, key_padding_mask,
                           dropout_p)
    if kernel is not None:
        return kernel.forward(q, k, v, attn_mask, is_causal, key_padding_mask, dropout_p, dropout_mask, scale)
    allowed, additive = build_mask(attn_mask, key_padding_mask, is_causal, (B, H, T, S), xp)
    scores = (q @ k.swapaxes(-1, -2)) * scale                       # (B,H,T,D) x (B,H,D,S) -> (B,H,T,S)
    if additive is not None:
        scores = scores + additive
    if allowed is not None:
        scores = xp.where(allowed, scores, scores.dtype.type(-xp.inf))    # blocked keys: -inf
    # softmax over the keys, row by row (subtracting the row maximum avoids overflow)
    row_max = scores.max(axis=-1, keepdims=True)                    # (B,H,T,1)
    row_max = xp.where(xp.isfinite(row_max), row_max, scores.dtype.type(0))   # every key masked: exp() = 0
    e = xp.exp(scores - row_max)
    denom = e.sum(axis=-1, keepdims=True)                           # (B,H,T,1)
    probs = e / xp.where(denom == 0, denom.dtype.type(1), denom)    # ... and its weights 0, not NaN
    probs_dropped = probs
    if dropout_p > 0:
        probs_dropped = probs * dropout_mask / (1.0 - dropout_p)
    out = probs_dropped @ v                                         # (B,H,T,S) x (B,H,S,D) -> (B,H,T,D)
    return out, AttentionCache(q, k, v, probs, probs_dropped, dropout_mask, dropout_p, scale)


# ============================================================================ backward
def scaled_dot_product_attention_backward(dout, cache):
    """Given dL/dout (B, H, T, D), return dq (B, H, T, D), dk (B, H, S, D), dv (B, H, S, D).

    forward: s = q k^T * scale;  p = softmax(s);  pd = p * mask / (1 - p_drop);  out = pd v
      dv = pd^T dout                             (B,H,S,T) x (B,H,T,D) -> (B,H,S,D)
      dpd = dout v^T                             (B,H,T,D) x (B,H,D,S) -> (B,H,T,S)
      dp = dpd * mask / (1 - p_drop)             (dp = dpd without dropout)
      ds = p * (dp - rowsum(dp * p))             softmax backward, row by row
      dq = ds k * scale,   dk = ds^T q * scale
    Masked entries have p = 0, so they receive no gradient.
    """
    if not isinstance(cache, AttentionCache):
        return dispatch.backward("scaled_dot_product_attention", dout, cache)
    q, k, v, probs, probs_dropped, dropout_mask, dropout_p, scale = cache
    dv = probs_dropped.swapaxes(-1, -2) @ dout                      # (B,H,S,D)
    dprobs = dout @ v.swapaxes(-1, -2)                              # (B,H,T,S)
    if dropout_p > 0:
        dprobs = dprobs * dropout_mask / (1.0 - dropout_p)
    dscores = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))
    dq = (dscores @ k) * scale                                      # (B,H,T,S) x (B,H,S,D) -> (B,H,T,D)
    dk = (dscores.swapaxes(-1, -2) @ q) * scale                     # (B,H,S,T) x (B,H,T,D) -> (B,H,S,D)
    return dq, dk, dv


def _check_qkv(q, k, v):
    where = "scaled_dot_product_attention"
    for name, a in (("q", q), ("k", k), ("v", v)):
        check_float(name, a, where)
        check_ndim(name, a, (4,), where)
    check_same_dtype(where, q=q, k=k, v=v)
    check_positions("k", k, 2, where)
    if k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise ValueError(f"{where}: expected q (B, H, T, D) and k, v (B, H, S, D) with the same B, H, D; "
                         f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")


# ============================================================================ multi-head
def split_heads(x, num_heads):
    """(B, T, C) -> (B, H, T, D) with H = num_heads, D = C / H: head h takes columns h*D .. h*D + D - 1.

    reshape (B, T, C) -> (B, T, H, D), then swap the T and H axes so each head is a (T, D) matrix.
    """
    B, T, C = x.shape
    return x.reshape(B, T, num_heads, C // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(B, H, T, D) -> (B, T, C = H * D), the inverse of split_heads (and so its backward)."""
    B, H, T, D = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * D)


def use_kv_cache(cache, k, v, is_causal):
    """One decode step with a KVCache: write this call's k, v (B, H, T, D) at positions
    cache.length .. cache.length + T - 1, and return (keys, values, attn_mask, is_causal) to attend with.

    keys, values: (B, H, cache.length, D) every position so far. New query i sits at position
    start + i, so with is_causal it may see keys j <= start + i: a bool (T, start + T) mask
    (True = allowed, None when T == 1, where every cached key is allowed).
    """
    xp = backend.get_array_module(k)
    start, T = cache.length, k.shape[2]
    cache.k[:, :, start:start + T], cache.v[:, :, start:start + T] = k, v
    cache.length = start + T
    mask = None
    if is_causal and T > 1:
        mask = xp.arange(start + T)[None, :] <= (start + xp.arange(T))[:, None]
    return cache.k[:, :, :cache.length], cache.v[:, :, :cache.length], mask, False


class KVCache:
    """Keys and values of the positions seen so far, for fast generation. k, v: (B, H, max_len, D)."""

    def __init__(self, batch, heads, max_len, head_dim, dtype, xp):
        self.k = xp.zeros((batch, heads, max_len, head_dim), dtype=dtype)
        self.v = xp.zeros_like(self.k)
        self.length = 0


class MultiHeadAttentionCache(NamedTuple):
    """What MultiHeadAttention.backward needs: the projections' caches and the attention's."""
    projections: tuple      # (qkv,) for self-attention, (q, kv) for cross-attention: LinearCaches
    attention: object       # the scaled_dot_product_attention cache


class MultiHeadAttention(Module):
    """Multi-head attention with torch.nn.MultiheadAttention(batch_first=True)'s parameters.

    in_proj_weight: (3C, C) = [W_q; W_k; W_v], in_proj_bias: (3C,), out_proj: Linear(C, C).
    forward(x) is self-attention on x: (B, T, C); forward(x, memory) is cross-attention from
    x: (B, T, C) to memory: (B, S, C), whose backward returns (dx, dmemory).

    Masks follow nn.MultiheadAttention (note: the opposite of scaled_dot_product_attention):
      attn_mask: bool with True = NOT allowed, or float added; (T, S) or broadcastable to (B, H, T, S)
      key_padding_mask: (B, S) bool, True = padding
    """

    def __init__(self, embed_dim, num_heads, bias=True, dropout=0.0, dtype=None):
        for name, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MultiHeadAttention: {name} must be an integer >= 1, got {value!r}")
        if embed_dim % num_heads != 0:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout = dropout
        bound = math.sqrt(6.0 / (embed_dim + 3 * embed_dim))          # xavier_uniform, as torch
        self.in_proj_weight = Parameter(init.uniform((3 * embed_dim, embed_dim), bound, dtype))
        self.in_proj_bias = Parameter(init.zeros((3 * embed_dim,), dtype)) if bias else None
        from .linear import Linear
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if bias:
            self.out_proj.bias.data[...] = 0
        self.fixed_dropout_mask = None

    def project_memory(self, memory):
        """memory: (B, S, C) -> its keys and values (B, H, S, D) each, for ``memory_kv`` (decoding: the
        source is projected once, not at every new target position)."""
        C, W, b = self.embed_dim, self.in_proj_weight.data, self.in_proj_bias
        kv, _ = linear_forward(memory, W[C:], None if b is None else b.data[C:])
        return split_heads(kv[..., :C], self.num_heads), split_heads(kv[..., C:], self.num_heads)

    def forward(self, x, memory=None, attn_mask=None, key_padding_mask=None, is_causal=False, kv_cache=None,
                memory_kv=None):
        """x: (B, T, C) -> y: (B, T, C) = out_proj(merge_heads(softmax(q k^T / sqrt(D) + mask) v)).

        q, k, v = split_heads(x W_q^T + b_q, ...) from one (3C, C) matmul; with memory: (B, S, C), k and v
        come from memory (cross-attention). kv_cache: append this call's k, v and attend to all cached
        positions (generation; no backward). memory_kv: project_memory(memory), for cross-attention
        to a source projected once (generation; no backward)."""
        C, W = self.embed_dim, self.in_proj_weight.data
        b = None if self.in_proj_bias is None else self.in_proj_bias.data
        where = f"MultiHeadAttention(embed_dim={C})"
        for name, a in (("x", x), ("memory", memory)):
            if a is not None:
                check_float(name, a, where)
                check_backend(name, a, W, where)
                check_ndim(name, a, (3,), where)
                check_last_dim(name, a, C, where)
                check_positions(name, a, 1, where)
        if memory_kv is not None:                                      # cross-attention, memory projected already
            q, lin_q = linear_forward(x, W[:C], None if b is None else b[:C])
            (q, (k, v)), lin_caches = (split_heads(q, self.num_heads), memory_kv), (lin_q,)
        elif memory is None:                                           # one matmul for q, k and v
            qkv, lin = linear_forward(x, W, b)                         # (B, T, C) -> (B, T, 3C)
            q, k, v = (split_heads(qkv[..., i * C:(i + 1) * C], self.num_heads) for i in range(3))
            lin_caches = (lin,)
        else:                                                          # q from x, k and v from memory
            q, lin_q = linear_forward(x, W[:C], None if b is None else b[:C])
            kv, lin_kv = linear_forward(memory, W[C:], None if b is None else b[C:])
            q, k, v = (split_heads(a, self.num_heads) for a in (q, kv[..., :C], kv[..., C:]))
            lin_caches = (lin_q, lin_kv)
        if kv_cache is not None:
            k, v, attn_mask, is_causal = use_kv_cache(kv_cache, k, v, is_causal)
        elif attn_mask is not None and attn_mask.dtype == bool:
            attn_mask = ~attn_mask                                     # torch MHA: True = blocked
        if attn_mask is not None and attn_mask.ndim == 3:              # (B*H, T, S) -> (B, H, T, S)
            attn_mask = attn_mask.reshape(x.shape[0], self.num_heads, *attn_mask.shape[1:])
        drop = self.dropout if self.training else 0.0
        mask = None
        if drop > 0:
            shape = (x.shape[0], self.num_heads, q.shape[2], k.shape[2])
            mask = self.fixed_dropout_mask if self.fixed_dropout_mask is not None else dropout_mask(shape, drop)
        att, att_cache = scaled_dot_product_attention(q, k, v, attn_mask, is_causal, key_padding_mask,
                                                      drop, mask)
        y = self.out_proj(merge_heads(att))
        decoding = kv_cache is not None or memory_kv is not None      # generation: no backward
        self.cache = None if decoding else MultiHeadAttentionCache(lin_caches, att_cache)
        return y

    def backward(self, dy):
        """dy: (B, T, C) -> dx (B, T, C), or (dx, dmemory) for cross-attention."""
        lin_caches, att_cache = self.pop_cache()                     # MultiHeadAttentionCache
        C = self.embed_dim
        datt = split_heads(self.out_proj.backward(dy), self.num_heads)          # (B, T, C) -> (B, H, T, D)
        xp = backend.get_array_module(dy)
        dq, dk, dv = scaled_dot_product_attention_backward(datt, att_cache)
        if len(lin_caches) == 1:                                        # self-attention: one (3C, C) projection
            dqkv = xp.concatenate([merge_heads(dq), merge_heads(dk), merge_heads(dv)],
                                  axis=-1)                              # 3 x (B, T, C) -> (B, T, 3C)
            dx, dW, db = linear_backward(dqkv, lin_caches[0])
            self.accumulate(self.in_proj_weight, dW)
            if self.in_proj_bias is not None:
                self.accumulate(self.in_proj_bias, db)
            return dx
        dx, dWq, dbq = linear_backward(merge_heads(dq), lin_caches[0])
        dkv = xp.concatenate([merge_heads(dk), merge_heads(dv)], axis=-1)   # (B, S, 2C)
        dmem, dWkv, dbkv = linear_backward(dkv, lin_caches[1])
        self.in_proj_weight.grad[:C] += dWq
        self.in_proj_weight.grad[C:] += dWkv
        if self.in_proj_bias is not None:
            self.in_proj_bias.grad[:C] += dbq
            self.in_proj_bias.grad[C:] += dbkv
        return dx, dmem

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
