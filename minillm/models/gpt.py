"""GPT: a decoder-only transformer language model with GPT-2's architecture (Radford et al. 2019).

Letters: B batch, T time (<= block_size), C = n_embd, V = vocab_size, L = n_layer.

    x = wte[idx] + wpe[0..T-1]                      token + learned position embeddings (B, T, C)
    x = Dropout(x)
    x = Block_l(x) for l = 1..L                      pre-LN blocks, causal self-attention, tanh GELU
    logits = LayerNorm_f(x) @ wte^T                  (B, T, V); the output matrix IS the token embedding
                                                     (weight tying, Press & Wolf 2017)

p(idx[t+1] | idx[..t]) = softmax(logits[t]); training minimises the cross-entropy of the next token.
"""
import math
from dataclasses import asdict, dataclass


from .. import backend
from ..nn import (Dropout, Embedding, KVCache, LayerNorm, LearnedPositionalEncoding, ModuleList,
                  TransformerBlock)
from ..nn.checks import check_sequences, check_token_ids
from ..nn.linear import linear_backward, linear_forward
from .generation import CausalLM


@dataclass
class GPTConfig:
    """The sizes of a GPT-2 shaped model (GPT-2 small: vocab 50257, block 1024, 12 layers, 12 heads, 768)."""
    vocab_size: int = 256     # characters or BPE tokens
    block_size: int = 128     # longest context the model can see
    n_layer: int = 4          # transformer blocks
    n_head: int = 4           # attention heads per block
    n_embd: int = 128         # model width C (head size = C / n_head)
    dropout: float = 0.0      # 0 for small data and for exact tests
    bias: bool = True         # biases in Linear and LayerNorm layers, as GPT-2


class GPT(CausalLM):
    """GPT-2 shaped language model. forward(idx (B, T) ints) -> logits (B, T, V); backward(dlogits)."""

    def __init__(self, config):
        self.config = config
        C = config.n_embd
        if C % config.n_head:
            raise ValueError(f"GPTConfig: n_embd {C} is not divisible by n_head {config.n_head}")
        self.wte = Embedding(config.vocab_size, C, std=0.02)
        self.wpe = LearnedPositionalEncoding(C, config.block_size, std=0.02)
        self.drop = Dropout(config.dropout)
        self.h = ModuleList(TransformerBlock(C, config.n_head, 4 * C, config.dropout, "gelu_tanh",
                                             norm_first=True, bias=config.bias) for _ in range(config.n_layer))
        self.ln_f = LayerNorm(C)
        self._init_weights()

    def _init_weights(self):
        """GPT-2: N(0, 0.02) weights, zero biases; the two projections that write into the residual
        stream get std 0.02 / sqrt(2 L), so the residual's variance does not grow with depth."""
        from ..nn import init
        proj_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for block in self.h:
            attn, ff = block.self_attn, block.ff
            attn.in_proj_weight.data[...] = init.normal(attn.in_proj_weight.shape, 0.02)
            attn.out_proj.weight.data[...] = init.normal(attn.out_proj.weight.shape, proj_std)
            ff.linear1.weight.data[...] = init.normal(ff.linear1.weight.shape, 0.02)
            ff.linear2.weight.data[...] = init.normal(ff.linear2.weight.shape, proj_std)
            for lin in (attn.out_proj, ff.linear1, ff.linear2):
                if lin.bias is not None:
                    lin.bias.data[...] = 0

    # ------------------------------------------------------------------ forward / backward
    def forward(self, idx, kv_caches=None):
        """idx: (B, T) token ids -> logits (B, T, V). With kv_caches (one per block) only the new
        positions are computed and their keys/values are appended (generation; no backward)."""
        check_token_ids("idx", idx, self.config.vocab_size, "GPT")
        check_sequences("idx", idx, "GPT")
        start = 0 if kv_caches is None else kv_caches[0].length
        if start + idx.shape[1] > self.config.block_size:
            raise ValueError(f"GPT: sequence length {start + idx.shape[1]} exceeds block_size {self.config.block_size}")
        x = self.wte(idx)                                           # (B, T) -> (B, T, C)
        x = self.wpe(x, offset=start)                               # + positions start..start+T-1
        x = self.drop(x)
        for i, block in enumerate(self.h):
            x = block(x, is_causal=True, kv_cache=None if kv_caches is None else kv_caches[i])
        x = self.ln_f(x)
        logits, self.cache = linear_forward(x, self.wte.weight.data)   # (B, T, C) x (C, V) -> (B, T, V)
        return logits

    def backward(self, dlogits):
        """dlogits: (B, T, V). Adds every parameter's gradient; the layers run in reverse order."""
        dx, dwte, _ = linear_backward(dlogits, self.pop_cache())
        self.wte.weight.grad += dwte                                # tied head: first share of wte's gradient
        dx = self.ln_f.backward(dx)
        for block in reversed(self.h):
            dx = block.backward(dx)
        dx = self.drop.backward(dx)
        dx = self.wpe.backward(dx)
        self.wte.backward(dx)                                       # second share: the lookup

    # ------------------------------------------------------------------ generation
    def new_kv_caches(self, batch):
        """One empty KVCache per block, each holding k, v: (batch, n_head, block_size, n_embd // n_head)."""
        xp = backend.get_array_module(self.wte.weight.data)
        c = self.config
        return [KVCache(batch, c.n_head, c.block_size, c.n_embd // c.n_head, self.wte.weight.data.dtype, xp)
                for _ in range(c.n_layer)]

    def config_dict(self):
        """The config as a plain dict (saved in checkpoints as JSON)."""
        return asdict(self.config)

