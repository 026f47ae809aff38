"""Layers: each file holds the formula, ``*_forward``, ``*_backward`` and a thin Module."""
from .module import Module, ModuleList, Parameter
from .linear import Embedding, Linear
from .activations import GELU, LogSoftmax, ReLU, SiLU, Softmax
from .norm import LayerNorm, RMSNorm
from .dropout import Dropout
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding
from .attention import (KVCache, MultiHeadAttention, scaled_dot_product_attention,
                        scaled_dot_product_attention_backward)
from .transformer import FeedForward, TransformerBlock
from .swiglu import SwiGLU
from .rotary import apply_rotary, rotary_backward
from .grouped_attention import GroupedQueryAttention
from .lora import LoRALinear
from .lstm import LSTM, LSTMCell
from .loss import CrossEntropyLoss

__all__ = ["Module", "ModuleList", "Parameter", "Linear", "Embedding", "GELU", "ReLU", "SiLU", "Softmax", "LogSoftmax",
           "LayerNorm", "RMSNorm", "Dropout", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding",
           "MultiHeadAttention", "KVCache", "scaled_dot_product_attention", "scaled_dot_product_attention_backward",
           "FeedForward", "TransformerBlock", "SwiGLU", "apply_rotary", "rotary_backward", "GroupedQueryAttention",
           "LoRALinear",
           "LSTM", "LSTMCell", "CrossEntropyLoss"]
