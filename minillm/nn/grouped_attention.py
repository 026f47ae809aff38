"""Grouped-query attention with rotary positions (Ainslie et al. 2023; Llama 2 70B, Llama 3, Mistral).

Letters: B batch, T new positions, S all positions attended (S = T without a cache), C model width,
H query heads, G key/value heads (n_kv_head, dividing H), D head size, R = H / G.

    q = x Wq^T   (B, T, H D)      k = x Wk^T,  v = x Wv^T   (B, T, G D)      split into heads
    q, k = rotary(q, k, positions)                   positions continue after a KV cache's
    k, v: (B, G, S, D) -> repeat each head R times -> (B, H, S, D)      query head h reads kv head h // R
    out = o_proj(merge_heads(softmax(q k^T / sqrt(D) + causal mask) v))

G = H is ordinary multi-head attention, G = 1 multi-query attention (Shazeer 2019). Fewer
key/value heads make the KV cache R times smaller. Backward: a repeated head receives the sum of
its copies' gradients. Parameter names follow Hugging Face's LlamaAttention (no biases).
"""
import math
from typing import NamedTuple

from .. import backend
from .attention import (KVCache, merge_heads, scaled_dot_product_attention, scaled_dot_product_attention_backward,
                        split_heads, use_kv_cache)
from .checks import check_backend, check_float, check_last_dim, check_ndim
from .linear import Linear
from .module import Module
from .rotary import apply_rotary, rotary_backward


def repeat_kv(x, repeats):
    """(B, G, S, D) -> (B, G * repeats, S, D), each head repeated ``repeats`` times in a row."""
    xp = backend.get_array_module(x)
    return x if repeats == 1 else xp.repeat(x, repeats, axis=1)


def repeat_kv_backward(dx, repeats):
    """forward: copy head g to heads g R .. g R + R - 1  =>  d head g = the sum of its R copies' gradients."""
    if repeats == 1:
        return dx
    B, H, S, D = dx.shape
    return dx.reshape(B, H // repeats, repeats, S, D).sum(axis=2)


class GroupedAttentionCache(NamedTuple):
    """What GroupedQueryAttention.backward needs: the rotary angles and the attention's cache."""
    rotary: object
    attention: object


class GroupedQueryAttention(Module):
    """Causal self-attention with ``num_kv_heads`` key/value heads shared by groups of query heads.

    q_proj: Linear(C, H D), k_proj, v_proj: Linear(C, G D), o_proj: Linear(H D, C), no biases.
    forward(x, kv_cache=None) with x: (B, T, C); with a KVCache (B, G, max_len, D) the new
    positions continue after cache.length and the cache holds rotated keys (generation, no backward).
    """

    def __init__(self, embed_dim, num_heads, num_kv_heads, rope_theta=10000.0, rope_interleaved=False,
                 head_dim=None, dtype=None):
        for name, value in (("num_heads", num_heads), ("num_kv_heads", num_kv_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GroupedQueryAttention: {name} must be an integer >= 1, got {value!r}")
        if num_heads % num_kv_heads:
            raise ValueError(f"GroupedQueryAttention: num_heads {num_heads} is not divisible by num_kv_heads "
                             f"{num_kv_heads}")
        self.head_dim = head_dim or embed_dim // num_heads
        if head_dim is None and embed_dim % num_heads:
            raise ValueError(f"GroupedQueryAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, num_kv_heads
        self.rope_theta, self.rope_interleaved = rope_theta, rope_interleaved
        D = self.head_dim
        self.q_proj = Linear(embed_dim, num_heads * D, bias=False, dtype=dtype)
        self.k_proj = Linear(embed_dim, num_kv_heads * D, bias=False, dtype=dtype)
        self.v_proj = Linear(embed_dim, num_kv_heads * D, bias=False, dtype=dtype)
        self.o_proj = Linear(num_heads * D, embed_dim, bias=False, dtype=dtype)

    def new_kv_cache(self, batch, max_len):
        """An empty KVCache for ``batch`` sequences of up to ``max_len`` positions: (B, G, max_len, D)."""
        w = self.k_proj.weight.data
        return KVCache(batch, self.num_kv_heads, max_len, self.head_dim, w.dtype, backend.get_array_module(w))

    def forward(self, x, kv_cache=None):
        """x: (B, T, C) -> (B, T, C), causal."""
        where = f"GroupedQueryAttention(embed_dim={self.embed_dim})"
        check_float("x", x, where)
        check_backend("x", x, self.q_proj.weight.data, where)
        check_ndim("x", x, (3,), where)
        check_last_dim("x", x, self.embed_dim, where)
        xp = backend.get_array_module(x)
        R = self.num_heads // self.num_kv_heads
        q = split_heads(self.q_proj(x), self.num_heads)                 # (B, H, T, D)
        k = split_heads(self.k_proj(x), self.num_kv_heads)              # (B, G, T, D)
        v = split_heads(self.v_proj(x), self.num_kv_heads)
        start = 0 if kv_cache is None else kv_cache.length
        positions = xp.arange(start, start + x.shape[1])
        q, k, rot = apply_rotary(q, k, positions, self.rope_theta, self.rope_interleaved)
        mask, causal = None, True
        if kv_cache is not None:                                        # keys of every position so far
            k, v, mask, causal = use_kv_cache(kv_cache, k, v, True)
        out, att = scaled_dot_product_attention(q, repeat_kv(k, R), repeat_kv(v, R), attn_mask=mask,
                                                is_causal=causal, scale=1.0 / math.sqrt(self.head_dim))
        self.cache = None if kv_cache is not None else GroupedAttentionCache(rot, att)
        return self.o_proj(merge_heads(out))

    def backward(self, dy):
        """dy: (B, T, C) -> dx: (B, T, C); x feeds q, k and v, so dx is the sum of three projections' dx."""
        rot, att = self.pop_cache()
        R = self.num_heads // self.num_kv_heads
        dout = split_heads(self.o_proj.backward(dy), self.num_heads)
        dq, dk, dv = scaled_dot_product_attention_backward(dout, att)
        dk, dv = repeat_kv_backward(dk, R), repeat_kv_backward(dv, R)
        dq, dk = rotary_backward(dq, dk, rot)
        return (self.q_proj.backward(merge_heads(dq)) + self.k_proj.backward(merge_heads(dk))
                + self.v_proj.backward(merge_heads(dv)))

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, num_kv_heads={self.num_kv_heads}, "
                f"rope_theta={self.rope_theta}")
