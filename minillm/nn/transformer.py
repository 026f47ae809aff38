"""The position-wise feed-forward network and the transformer block.

x: (B, T, C); F = dim_feedforward (4C in GPT-2 and BERT).

FeedForward:  FF(x) = Dropout(W2 act(W1 x + b1) + b2)       (B,T,C) -> (B,T,F) -> (B,T,C)

TransformerBlock, pre-LN (norm_first=True; GPT-2, Radford et al. 2019):
    h = x + Dropout(MHA(LN1(x)))
    y = h + FF(LN2(h))
post-LN (norm_first=False; the original Transformer and BERT, Devlin et al. 2018):
    h = LN1(x + Dropout(MHA(x)))
    y = LN2(h + FF(h))
Pre-LN keeps an unnormalised residual path from input to output, which is why
deep GPTs train without warm-up tricks; post-LN normalises after each sum.

Parameter names follow torch.nn.TransformerEncoderLayer except that the two
feed-forward Linears sit under ``ff.`` (``ff.linear1.weight`` for torch's
``linear1.weight``); see ``torch_key`` for the one-line mapping.
"""
from .activations import GELU, ReLU
from .attention import MultiHeadAttention
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .norm import LayerNorm

ACTIVATIONS = ("gelu_tanh", "gelu", "relu")


def make_activation(name):
    """"gelu_tanh" (GPT-2), "gelu" (exact erf form, BERT) or "relu" (the original Transformer)."""
    if name == "gelu_tanh":
        return GELU("tanh")
    if name == "gelu":
        return GELU("none")
    if name == "relu":
        return ReLU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class FeedForward(Module):
    """Linear(C, F) -> activation -> Linear(F, C) -> Dropout, applied at every position."""

    def __init__(self, d_model, dim_feedforward, dropout=0.0, activation="gelu_tanh", bias=True, dtype=None):
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.activation = make_activation(activation)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        """x: (B, T, C) -> (B, T, F) -> (B, T, C)."""
        return self.dropout(self.linear2(self.activation(self.linear1(x))))

    def backward(self, dout):
        """Reverse order of forward: dropout, linear2, activation, linear1."""
        return self.linear1.backward(self.activation.backward(self.linear2.backward(self.dropout.backward(dout))))


class TransformerBlock(Module):
    """Self-attention + feed-forward with residual connections and LayerNorm (pre- or post-LN)."""

    def __init__(self, d_model, nhead, dim_feedforward=None, dropout=0.0, activation="gelu_tanh",
                 layer_norm_eps=1e-5, norm_first=True, bias=True, dtype=None):
        dim_feedforward = dim_feedforward or 4 * d_model
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, nhead, bias=bias, dropout=dropout, dtype=dtype)
        self.ff = FeedForward(d_model, dim_feedforward, dropout, activation, bias=bias, dtype=dtype)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.dropout1 = Dropout(dropout)

    def forward(self, x, attn_mask=None, key_padding_mask=None, is_causal=False, kv_cache=None):
        """x: (B, T, C) -> (B, T, C). Masks as in MultiHeadAttention."""
        def attend(a):
            return self.dropout1(self.self_attn(a, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                                is_causal=is_causal, kv_cache=kv_cache))
        if self.norm_first:
            h = x + attend(self.norm1(x))
            return h + self.ff(self.norm2(h))
        h = self.norm1(x + attend(x))
        return self.norm2(h + self.ff(h))

    def backward(self, dy):
        """dy: (B, T, C) -> dx: (B, T, C). Each residual sum sends its gradient down both branches."""
        if self.norm_first:
            # y = h + ff(norm2(h))   =>   dh = dy + norm2'(ff'(dy))
            dh = dy + self.norm2.backward(self.ff.backward(dy))
            # h = x + attend(norm1(x))   =>   dx = dh + norm1'(attn'(drop'(dh)))
            return dh + self.norm1.backward(self.self_attn.backward(self.dropout1.backward(dh)))
        # y = norm2(h + ff(h))   =>   ds = norm2'(dy);  dh = ds + ff'(ds)
        ds = self.norm2.backward(dy)
        dh = ds + self.ff.backward(ds)
        # h = norm1(x + attend(x))   =>   dr = norm1'(dh);  dx = dr + attn'(drop'(dr))
        dr = self.norm1.backward(dh)
        return dr + self.self_attn.backward(self.dropout1.backward(dr))


def torch_key(name):
    """Map a torch.nn.TransformerEncoderLayer state_dict key to TransformerBlock's ("linear1.weight" -> "ff.linear1.weight")."""
    return "ff." + name if name.startswith(("linear1.", "linear2.")) else name
