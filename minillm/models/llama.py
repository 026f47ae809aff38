"""Llama: the decoder of Llama, Qwen, SmolLM and Mistral, which changed four pieces of GPT-2.

Letters: B batch, T time (<= block_size), C = n_embd, V = vocab_size, L = n_layer, F = intermediate_size.

    x = embed_tokens[idx]                                   (B, T, C); no position embedding
    for each of the L blocks:
        h = x + self_attn(input_layernorm(x))               RMSNorm, grouped-query attention with RoPE
        x = h + mlp(post_attention_layernorm(h))            RMSNorm, SwiGLU feed-forward
    logits = norm(x) @ lm_head^T                             (B, T, V)

Against GPT-2: RMSNorm for LayerNorm, rotary positions for learned ones, SwiGLU for the GELU MLP,
n_kv_head <= n_head key/value heads, and no biases anywhere. With tie_word_embeddings the head is
embed_tokens itself (SmolLM, Llama 3.2 1B); otherwise a separate lm_head (Llama 2 and 3 8B).
Parameter names are Hugging Face's LlamaForCausalLM names without its "model." prefix.
"""
from dataclasses import asdict, dataclass

from ..nn import Embedding, Linear, Module, ModuleList, RMSNorm, SwiGLU
from ..nn.checks import check_sequences, check_token_ids
from ..nn.grouped_attention import GroupedQueryAttention
from ..nn.linear import linear_backward, linear_forward
from .generation import CausalLM


@dataclass
class LlamaConfig:
    """The sizes of a Llama-family model (SmolLM2-135M: vocab 49152, 30 layers, 9 heads, 3 kv heads, 576, F 1536)."""
    vocab_size: int = 256
    block_size: int = 128          # longest context trained on (Hugging Face: max_position_embeddings)
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 2             # key/value heads; n_head must be a multiple of it
    n_embd: int = 128
    intermediate_size: int = 344   # SwiGLU width F, about 8/3 C
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = True
    rope_interleaved: bool = False  # Hugging Face's half-split pairs (False) or the paper's interleaved ones
    head_dim: object = None         # None: n_embd // n_head (Hugging Face allows another size)

    def __post_init__(self):
        if self.head_dim is not None and (isinstance(self.head_dim, bool) or not isinstance(self.head_dim, int)
                                          or self.head_dim < 2):
            raise ValueError(f"LlamaConfig: head_dim must be None or an integer >= 2, got {self.head_dim!r}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"LlamaConfig: n_head {self.n_head} is not divisible by n_kv_head {self.n_kv_head}")
        if not self.head_dim and self.n_embd % self.n_head:
            raise ValueError(f"LlamaConfig: n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if (self.head_dim or self.n_embd // self.n_head) % 2:
            raise ValueError(f"LlamaConfig: the head size {self.head_dim or self.n_embd // self.n_head} must be "
                             "even (rotary positions rotate pairs of coordinates)")


class LlamaBlock(Module):
    """Pre-RMSNorm block: h = x + attn(norm(x)); y = h + mlp(norm(h))."""

    def __init__(self, config):
        c = config
        self.input_layernorm = RMSNorm(c.n_embd, c.rms_norm_eps)
        self.self_attn = GroupedQueryAttention(c.n_embd, c.n_head, c.n_kv_head, c.rope_theta, c.rope_interleaved,
                                               head_dim=c.head_dim or None)
        self.post_attention_layernorm = RMSNorm(c.n_embd, c.rms_norm_eps)
        self.mlp = SwiGLU(c.n_embd, c.intermediate_size)

    def forward(self, x, kv_cache=None):
        """x: (B, T, C) -> (B, T, C)."""
        h = x + self.self_attn(self.input_layernorm(x), kv_cache)
        return h + self.mlp(self.post_attention_layernorm(h))

    def backward(self, dy):
        """Each residual sum sends its gradient down both branches:
        dh = dy + norm2'(mlp'(dy));  dx = dh + norm1'(attn'(dh))."""
        dh = dy + self.post_attention_layernorm.backward(self.mlp.backward(dy))
        return dh + self.input_layernorm.backward(self.self_attn.backward(dh))


class Llama(CausalLM):
    """Llama-family language model. forward(idx (B, T) ints) -> logits (B, T, V); backward(dlogits)."""

    def __init__(self, config):
        self.config = config
        self.embed_tokens = Embedding(config.vocab_size, config.n_embd, std=0.02)
        self.layers = ModuleList(LlamaBlock(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.lm_head = None if config.tie_word_embeddings else Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights()

    def _init_weights(self):
        """Hugging Face's initialisation: every matrix N(0, 0.02^2); the norms' weights 1."""
        from ..nn import init
        for name, p in self.named_parameters():
            if p.data.ndim == 2:
                p.data[...] = init.normal(p.data.shape, 0.02, p.data.dtype)

    def head_weight(self):
        """The output matrix (V, C): embed_tokens.weight when tied, else lm_head.weight."""
        return (self.embed_tokens if self.lm_head is None else self.lm_head).weight

    def forward(self, idx, kv_caches=None):
        """idx: (B, T) token ids -> logits (B, T, V). With kv_caches (one per block) only the new
        positions are computed, their positions continuing after the cached ones (no backward)."""
        check_token_ids("idx", idx, self.config.vocab_size, "Llama")
        check_sequences("idx", idx, "Llama")
        start = 0 if kv_caches is None else kv_caches[0].length
        if start + idx.shape[1] > self.config.block_size:
            raise ValueError(f"Llama: sequence length {start + idx.shape[1]} exceeds block_size "
                             f"{self.config.block_size}")
        x = self.embed_tokens(idx)
        for i, layer in enumerate(self.layers):
            x = layer(x, None if kv_caches is None else kv_caches[i])
        x = self.norm(x)
        logits, self.cache = linear_forward(x, self.head_weight().data)    # (B, T, C) x (C, V)
        return logits

    def backward(self, dlogits):
        """dlogits: (B, T, V). Adds every parameter's gradient, layers in reverse order; a tied
        embedding receives both its shares (the head's and the lookup's)."""
        dx, dhead, _ = linear_backward(dlogits, self.pop_cache())
        self.head_weight().grad += dhead
        dx = self.norm.backward(dx)
        for layer in reversed(self.layers):
            dx = layer.backward(dx)
        self.embed_tokens.backward(dx)

    def new_kv_caches(self, batch):
        """One empty KVCache per block, (batch, n_kv_head, block_size, head_dim) each."""
        return [layer.self_attn.new_kv_cache(batch, self.config.block_size) for layer in self.layers]

    def config_dict(self):
        """The config as a plain dict (saved in checkpoints as JSON)."""
        return asdict(self.config)
