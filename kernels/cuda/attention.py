"""Scaled dot-product attention through the fused CUDA kernel (fused_attention.cu).

It takes float32 CuPy arrays with head size D <= 128 and masks that are causal and/or key
padding, without attention dropout; it never builds the (T, S) score matrix. The forward saves
the output and the row log-sum-exp, from which the backward recomputes the weights tile by tile
(minillm/nn/tiled_attention.py is the same algorithm in NumPy).
"""
from typing import NamedTuple

import numpy as np


class FusedAttentionCache(NamedTuple):
    q: object
    k: object
    v: object
    out: object                # (B, H, T, D)
    lse: object                # (B, H, T) log-sum-exp of each score row
    is_causal: bool
    key_padding_mask: object
    scale: float

    def backward(self, dout):
        from . import attention_backward
        return attention_backward(dout, self.q, self.k, self.v, self.out, self.lse, self.is_causal,
                                  self.key_padding_mask, self.scale)


def accepts(q, k, v, attn_mask, is_causal, key_padding_mask, dropout_p):
    """None when the kernel can take these inputs, else why not."""
    if type(q).__module__.split(".")[0] != "cupy":
        return "not a CuPy array"
    if q.dtype != np.float32:
        return f"dtype {q.dtype}, not float32"
    if q.shape[-1] > 128:
        return f"head size {q.shape[-1]} > 128"
    if attn_mask is not None:
        return "an attn_mask other than causal / key padding"
    if dropout_p > 0:
        return "attention dropout"
    return None


def forward(q, k, v, attn_mask, is_causal, key_padding_mask, dropout_p, dropout_mask, scale):
    """out (B, H, T, D) and a cache holding the row log-sum-exp."""
    from . import attention_forward
    out, lse = attention_forward(q, k, v, is_causal, key_padding_mask, scale)
    return out, FusedAttentionCache(q, k, v, out, lse, is_causal, key_padding_mask, scale)
