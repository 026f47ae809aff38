"""The decoder block of the encoder-decoder Transformer (Vaswani et al. 2017): causal self-attention,
cross-attention to the encoder's output, feed-forward, each with a residual and a LayerNorm.

x: (B, T, C) target positions; memory: (B, S, C) the encoder's output.

post-LN (norm_first=False; the paper and torch.nn.TransformerDecoderLayer's default):
    h1 = LN1(x  + Dropout(SelfAttn(x, causal)))
    h2 = LN2(h1 + Dropout(CrossAttn(h1, memory)))            queries from the target, keys and values from the source
    y  = LN3(h2 + FF(h2))
pre-LN (norm_first=True):
    h1 = x  + Dropout(SelfAttn(LN1(x), causal))
    h2 = h1 + Dropout(CrossAttn(LN2(h1), memory))
    y  = h2 + FF(LN3(h2))

The memory feeds every decoder block, so the encoder receives the sum of all their dmemory.
Names follow torch.nn.TransformerDecoderLayer (multihead_attn is the cross-attention), except
that the feed-forward Linears sit under ``ff.`` as in TransformerBlock.
"""
from .attention import MultiHeadAttention
from .dropout import Dropout
from .module import Module
from .norm import LayerNorm
from .transformer import FeedForward


class DecoderBlock(Module):
    """Causal self-attention, cross-attention to ``memory``, feed-forward; pre- or post-LN."""

    def __init__(self, d_model, nhead, dim_feedforward=None, dropout=0.0, activation="relu", layer_norm_eps=1e-5,
                 norm_first=False, dtype=None):
        dim_feedforward = dim_feedforward or 4 * d_model
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, dtype=dtype)
        self.multihead_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, dtype=dtype)
        self.ff = FeedForward(d_model, dim_feedforward, dropout, activation, dtype=dtype)
        self.norm1, self.norm2, self.norm3 = (LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype) for _ in range(3))
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)

    def forward(self, x, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None, kv_cache=None,
                memory_kv=None):
        """x: (B, T, C), memory: (B, S, C) -> (B, T, C). Masks: (B, T) / (B, S) bool, True = padding.
        Decoding (no backward): kv_cache holds the target's past keys and values, memory_kv the
        source's, projected once (multihead_attn.project_memory)."""
        def self_part(a):
            return self.dropout1(self.self_attn(a, key_padding_mask=tgt_key_padding_mask, is_causal=True,
                                                kv_cache=kv_cache))

        def cross_part(a):
            return self.dropout2(self.multihead_attn(a, memory, key_padding_mask=memory_key_padding_mask,
                                                     memory_kv=memory_kv))
        if self.norm_first:
            h1 = x + self_part(self.norm1(x))
            h2 = h1 + cross_part(self.norm2(h1))
            return h2 + self.ff(self.norm3(h2))
        h1 = self.norm1(x + self_part(x))
        h2 = self.norm2(h1 + cross_part(h1))
        return self.norm3(h2 + self.ff(h2))

    def backward(self, dy):
        """dy: (B, T, C) -> (dx, dmemory). Every residual sends its gradient down both branches; the
        cross-attention's keys and values give dmemory."""
        if self.norm_first:
            dh2 = dy + self.norm3.backward(self.ff.backward(dy))
            dq, dmemory = self.multihead_attn.backward(self.dropout2.backward(dh2))
            dh1 = dh2 + self.norm2.backward(dq)
            return dh1 + self.norm1.backward(self.self_attn.backward(self.dropout1.backward(dh1))), dmemory
        ds3 = self.norm3.backward(dy)                       # y = LN3(h2 + ff(h2))
        dh2 = ds3 + self.ff.backward(ds3)
        ds2 = self.norm2.backward(dh2)                      # h2 = LN2(h1 + cross(h1))
        dq, dmemory = self.multihead_attn.backward(self.dropout2.backward(ds2))
        dh1 = ds2 + dq
        ds1 = self.norm1.backward(dh1)                      # h1 = LN1(x + self(x))
        return ds1 + self.self_attn.backward(self.dropout1.backward(ds1)), dmemory
