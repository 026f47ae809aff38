"""Generation for the decoder language models (GPT, Llama): one token at a time, with a KV cache.

A model that inherits CausalLM provides ``forward(idx, kv_caches=None) -> logits (B, T, V)``,
``new_kv_caches(batch)`` (one cache per layer) and ``config.block_size``; ``generate`` does the rest.
"""
import warnings

import numpy as np

from .. import backend
from ..nn import Module
from ..nn.checks import check_sequences
from .sampling import check_generate_options, check_sampling_options, sample_next


class CausalLM(Module):
    """A decoder-only language model that can continue a prompt (see generate)."""

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, do_sample=True, seed=None,
                 use_cache=True, return_logits=False):
        """Extend idx (B, T) by max_new_tokens tokens, one at a time.

        Each step takes the logits of the last position, divides by ``temperature``, keeps the
        ``top_k`` largest and/or the smallest set whose probability reaches ``top_p``, then samples
        (or takes the argmax when do_sample=False). With ``use_cache`` the keys and values of past
        positions are kept (KV cache) so each step costs one position instead of the whole context.

        The context window: the model sees at most block_size tokens. When one more token would not
        fit, the window jumps forward to keep only the newest block_size // 2 tokens (not one token at
        a time, as nanoGPT does without a cache): learned positions mean every cached key changes when
        the window moves, so the cache must be refilled, and jumping by half a block refills it once
        per block_size // 2 tokens instead of at every step. Both paths use the same window, so they
        produce the same tokens. Returns the ids (B, T + max_new_tokens) as a NumPy array (and the
        per-step logits if asked).
        """
        check_sequences("idx", idx, f"{type(self).__name__}.generate")
        check_generate_options(max_new_tokens, seed)
        check_sampling_options(temperature, top_k, top_p)
        was_training = self.training
        self.eval()
        rng = np.random.default_rng(seed)
        idx = backend.to_numpy(idx).astype(np.int64)
        block = self.config.block_size
        if idx.shape[1] > block:
            warnings.warn(f"prompt of {idx.shape[1]} tokens cropped to the last {block} (block_size)")
        start, caches, steps = max(0, idx.shape[1] - block), None, []
        for _ in range(max_new_tokens):
            moved = idx.shape[1] - start > block
            if moved:
                start = idx.shape[1] - max(1, block // 2)          # the window jumps by half a block
            context = idx[:, start:]
            if not use_cache:
                logits = self.forward(backend.to_device(context))[:, -1]
            elif caches is None or moved:
                caches = self.new_kv_caches(idx.shape[0])           # (re)fill the cache with the window
                logits = self.forward(backend.to_device(context), caches)[:, -1]
            else:
                logits = self.forward(backend.to_device(context[:, -1:]), caches)[:, -1]
            logits = backend.to_numpy(logits)
            steps.append(logits)
            nxt = sample_next(logits, temperature, top_k, top_p, do_sample, rng)
            idx = np.concatenate([idx, nxt[:, None]], axis=1)
        self.train(was_training)
        self.cache = None
        return (idx, steps) if return_logits else idx
