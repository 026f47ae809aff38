"""Tests of the attention exercises: attention, multi_head, kv_cache, transformer_block.

Each ``tests_<exercise>(student)`` returns [(test name, test)] (see grade_layers.py).
"""
from functools import partial

import numpy as np

from .. import backend, nn
from ..models import GPT, GPTConfig
from ..nn import attention, transformer
from .diagnosis import Wrong, call, expect, unpack
from .grade_activations import DIAGONAL_ONLY
from .harness import compare_backward, layer_case, method_case, normal, plugged, rng, scalar_loss

IGNORES_MASK = ("the mask is ignored: blocked keys (is_causal, key_padding_mask, a bool attn_mask) get score -inf "
                "and a float attn_mask is added to the scores, before the softmax")


# ============================================================================ attention
def _attention_cases():
    """(label, q, k, v, options): causal; key padding with one batch row all padding; float mask + dropout; T = 1."""
    padding = np.zeros((2, 6), dtype=bool)
    padding[0, 4:] = True
    padding[1, :] = True
    return [
        ("causal, q k v (2, 2, 5, 3)", (2, 2, 5, 3), 5, {"is_causal": True}),
        ("key_padding_mask, q (2, 2, 4, 3), k v (2, 2, 6, 3)", (2, 2, 4, 3), 6, {"key_padding_mask": padding}),
        ("float attn_mask and dropout_p=0.2, (2, 1, 3, 4)", (2, 1, 3, 4), 3,
         {"attn_mask": normal(9, 3, 3), "dropout_p": 0.2, "dropout_mask": rng(8).random((2, 1, 3, 3)) >= 0.2}),
        ("one query, one key, (1, 1, 1, 2)", (1, 1, 1, 2), 1, {}),
    ]


def tests_attention(student):
    tests = []
    for seed, (label, shape, S, options) in enumerate(_attention_cases()):
        tests.append((f"scaled_dot_product_attention: {label}", partial(_attention_forward, student, shape, S, options,
                                                                        seed)))
        tests.append((f"scaled_dot_product_attention_backward: {label}",
                      partial(_attention_backward, student, shape, S, options, seed)))
    return tests + [("inside nn.MultiHeadAttention(8, 2), causal and padded", partial(_attention_layer, student))]


def _qkv(shape, S, seed):
    B, H, T, D = shape
    return normal(seed, B, H, T, D), normal(seed + 10, B, H, S, D), normal(seed + 20, B, H, S, D)


def _attention_forward(student, shape, S, options, seed):
    q, k, v = _qkv(shape, S, seed)
    run = lambda *qkv: student.scaled_dot_product_attention(*qkv, **options)
    got = unpack("scaled_dot_product_attention", call(run, (q, k, v), ("q", "k", "v"), "scaled_dot_product_attention"),
                 ("out", "cache"))
    unmasked = {name: value for name, value in options.items() if name in ("dropout_p", "dropout_mask")}
    variants = [(IGNORES_MASK, attention.scaled_dot_product_attention(q, k, v, **unmasked)[0])] if len(
        unmasked) < len(options) else []
    return expect("out", got[0], attention.scaled_dot_product_attention(q, k, v, **options)[0], variants=variants)


def _attention_backward(student, shape, S, options, seed):
    q, k, v = _qkv(shape, S, seed)
    out, cache = attention.scaled_dot_product_attention(q, k, v, **options)
    dout = normal(seed + 30, *out.shape)
    p = cache.probs
    dp = dout @ v.swapaxes(-1, -2)
    if cache.dropout_p > 0:
        dp = dp * cache.dropout_mask / (1 - cache.dropout_p)
    diagonal = p * (1 - p) * dp
    scale_hint = {1 / cache.scale: "the scores are q k^T * scale, so dq and dk carry the factor scale = 1/sqrt(D)"}
    variants = {"dq": [(DIAGONAL_ONLY, (diagonal @ k) * cache.scale)],
                "dk": [(DIAGONAL_ONLY, (diagonal.swapaxes(-1, -2) @ q) * cache.scale)],
                "dv": [("dv = pd^T dout uses the probabilities after dropout (cache.probs_dropped)",
                        p.swapaxes(-1, -2) @ dout)] if cache.dropout_p > 0 else []}
    forward = lambda q, k, v: attention.scaled_dot_product_attention(q, k, v, **options)
    return compare_backward(student.scaled_dot_product_attention_backward,
                            attention.scaled_dot_product_attention_backward, (dout, cache), ("dout", "cache"),
                            ("dq", "dk", "dv"), scalar_loss(forward, (q, k, v), dout), {"dq": q, "dk": k, "dv": v},
                            variants=variants, factors={"dq": scale_hint, "dk": scale_hint})


def _attention_layer(student):
    padding = np.zeros((2, 5), dtype=bool)
    padding[1, 3:] = True
    with plugged(attention, scaled_dot_product_attention=student.scaled_dot_product_attention,
                 scaled_dot_product_attention_backward=student.scaled_dot_product_attention_backward):
        return max(layer_case(nn.MultiHeadAttention(8, 2), (normal(1, 2, 5, 8),), is_causal=True),
                   layer_case(nn.MultiHeadAttention(8, 2), (normal(2, 2, 5, 8),), key_padding_mask=padding))


# ============================================================================ multi-head split and merge
def tests_multi_head(student):
    cases = [((2, 5, 8), 2), ((1, 3, 6), 3), ((2, 1, 4), 1)]
    tests = []
    for seed, (shape, H) in enumerate(cases):
        tests.append((f"split_heads: x {shape}, num_heads={H}", partial(_split, student, shape, H, seed)))
        tests.append((f"merge_heads: x {_heads_shape(shape, H)}", partial(_merge, student, shape, H, seed)))
    return tests + [("inside nn.MultiHeadAttention(8, 2)", partial(_multi_head_layer, student))]


def _heads_shape(shape, H):
    B, T, C = shape
    return (B, H, T, C // H)


def _split(student, shape, H, seed):
    x = normal(seed, *shape)
    variants = [("a reshape to (B, H, T, D) alone mixes positions and heads: reshape to (B, T, H, D), then "
                 "swap the T and H axes", x.reshape(_heads_shape(shape, H)))]
    return expect("split_heads(x)", call(student.split_heads, (x, H), ("x", "num_heads")),
                  attention.split_heads(x, H), variants=variants)


def _merge(student, shape, H, seed):
    x = normal(seed, *_heads_shape(shape, H))
    variants = [("a reshape to (B, T, C) alone mixes positions and heads: swap the H and T axes first",
                 x.reshape(shape))]
    return expect("merge_heads(x)", call(student.merge_heads, (x,), ("x",)), attention.merge_heads(x),
                  variants=variants)


def _multi_head_layer(student):
    with plugged(attention, split_heads=student.split_heads, merge_heads=student.merge_heads):
        return layer_case(nn.MultiHeadAttention(8, 2), (normal(3, 2, 5, 8),), is_causal=True)


# ============================================================================ KV cache
def tests_kv_cache(student):
    cases = [("causal, a prompt of 3 then 2 steps of 1", (3, 1, 1), True),
             ("causal, a prompt of 2 then a chunk of 3", (2, 3), True), ("causal, steps of 1", (1, 1, 1, 1), True),
             ("not causal, steps of 2", (2, 2), False)]
    tests = [(f"use_kv_cache: {label}", partial(_kv_steps, student, steps, causal, seed))
             for seed, (label, steps, causal) in enumerate(cases)]
    return tests + [("inside GPT.generate: cached logits equal the full forward's",
                     partial(_kv_generate, student))]


def _kv_steps(student, steps, causal, seed):
    B, H, D = 2, 2, 3
    mine, library = (attention.KVCache(B, H, 8, D, np.float64, np) for _ in range(2))
    for step, T in enumerate(steps):
        k, v = normal(seed + step, B, H, T, D), normal(seed + 50 + step, B, H, T, D)
        start = library.length
        got = unpack("use_kv_cache", student.use_kv_cache(mine, k.copy(), v.copy(), causal),
                     ("keys", "values", "attn_mask", "is_causal"))
        want = attention.use_kv_cache(library, k, v, causal)
        if mine.length != library.length:
            raise Wrong(f"after step {step + 1} cache.length is {mine.length}, expected {library.length}: advance "
                        "it by the T positions this call wrote")
        overwritten = "an overwritten cache: " if step else ""
        for label, g, w in zip(("keys", "values"), got[:2], want[:2]):
            try:
                expect(f"step {step + 1}: {label}", g, w)
            except Wrong as e:
                raise Wrong(f"{e} ({overwritten}the new k, v go at positions cache.length .. cache.length + T - 1 "
                            f"= {start} .. {start + T - 1}, earlier positions stay as they are)") from None
        if want[2] is None and got[2] is not None and not np.asarray(got[2]).all():
            raise Wrong(f"step {step + 1}: attn_mask blocks keys, but with T = {T} every cached key is allowed")
        if want[2] is not None:
            hint = f"new query i sits at position cache.length + i = {start} + i, so it may see keys j <= {start} + i"
            if got[2] is None:
                raise Wrong(f"step {step + 1}: attn_mask is None, but with T = {T} causal queries need one ({hint})")
            expect(f"step {step + 1}: attn_mask", np.broadcast_to(got[2], want[2].shape), want[2],
                   variants=[(hint, np.tril(np.ones(want[2].shape, bool)))])
        if bool(got[3]):
            raise Wrong(f"step {step + 1}: return is_causal=False; the causal rule is now in attn_mask")
    return 0.0


def _kv_generate(student):
    backend.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=8)).to(dtype=np.float64)
    model.eval()
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    with plugged(attention, use_kv_cache=student.use_kv_cache):
        ids, logits = model.generate(prompt, 5, do_sample=False, use_cache=True, return_logits=True)
    want_ids, want_logits = model.generate(prompt, 5, do_sample=False, use_cache=False, return_logits=True)
    return expect("the logits of 5 cached steps", logits, want_logits)


# ============================================================================ transformer block
def tests_transformer_block(student):
    padding = np.zeros((2, 5), dtype=bool)
    padding[1, 3:] = True
    cases = [("pre-LN, causal", lambda: nn.TransformerBlock(8, 2), {"is_causal": True}),
             ("post-LN, key padding", lambda: nn.TransformerBlock(8, 2, norm_first=False, activation="gelu"),
              {"key_padding_mask": padding})]
    tests = [(f"TransformerBlock.backward: {label}", partial(_block, student, make, kwargs, seed))
             for seed, (label, make, kwargs) in enumerate(cases)]
    return tests + [("inside a 2-layer GPT", partial(_block_in_gpt, student))]


SKIP = ("a forgotten branch of the residual: y = h + f(h) sends dy both through f and straight to h, "
        "so dh = dy + f'(dy)")


def _pre_ln_no_ff_skip(block, dy):
    dh = block.norm2.backward(block.ff.backward(dy))
    return dh + block.norm1.backward(block.self_attn.backward(block.dropout1.backward(dh)))


def _pre_ln_no_attention_skip(block, dy):
    dh = dy + block.norm2.backward(block.ff.backward(dy))
    return block.norm1.backward(block.self_attn.backward(block.dropout1.backward(dh)))


def _post_ln_no_skips(block, dy):
    ds = block.norm2.backward(dy)
    dr = block.norm1.backward(block.ff.backward(ds))
    return block.self_attn.backward(block.dropout1.backward(dr))


def _block(student, make, kwargs, seed):
    variants = [(SKIP, _pre_ln_no_ff_skip), (SKIP, _pre_ln_no_attention_skip)] if make().norm_first else [
        (SKIP, _post_ln_no_skips)]
    return method_case(make, (normal(seed, 2, 5, 8),), student.backward, transformer.TransformerBlock.backward,
                       variants, kwargs, seed)


def _block_in_gpt(student):
    backend.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8))
    with plugged(transformer.TransformerBlock, backward=student.backward):
        return layer_case(model, (rng(0).integers(0, 11, (2, 6)),), backward=lambda m, d: (m.backward(d[0]),))

