"""The SwiGLU feed-forward network (Shazeer 2020; Llama, Qwen, Mistral).

x: (B, T, C); F = intermediate_size (about 8C/3 in Llama, rounded).

    gate = x W1^T       up = x W3^T          (B, T, C) -> (B, T, F) each
    h    = silu(gate) * up                   a gated linear unit: the SiLU branch decides how much
    out  = h W2^T                            (B, T, F) -> (B, T, C)

Hugging Face calls W1, W3, W2 gate_proj, up_proj and down_proj; none has a bias.
"""
from .activations import SiLU
from .linear import Linear
from .module import Module


class SwiGLU(Module):
    """down_proj(silu(gate_proj(x)) * up_proj(x)), as Hugging Face's LlamaMLP."""

    def __init__(self, dim, hidden_dim, bias=False, dtype=None):
        self.gate_proj = Linear(dim, hidden_dim, bias=bias, dtype=dtype)
        self.up_proj = Linear(dim, hidden_dim, bias=bias, dtype=dtype)
        self.down_proj = Linear(hidden_dim, dim, bias=bias, dtype=dtype)
        self.act = SiLU()

    def forward(self, x):
        """x: (B, T, C) -> (B, T, F) -> (B, T, C)."""
        a = self.act(self.gate_proj(x))           # silu(gate)
        u = self.up_proj(x)                       # up
        self.cache = (a, u)
        return self.down_proj(a * u)

    def backward(self, dout):
        """out = W2 (a * u)  =>  dh = W2' dout;  da = dh * u;  du = dh * a;
        x feeds both branches, so dx = gate_proj'(silu'(da)) + up_proj'(du)."""
        a, u = self.pop_cache()
        dh = self.down_proj.backward(dout)
        return self.gate_proj.backward(self.act.backward(dh * u)) + self.up_proj.backward(dh * a)
