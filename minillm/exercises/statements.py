"""What each exercise asks, in Markdown: the forward formula, the shapes, the cache, a hint.

A statement never gives the derivative; deriving it is the exercise. ``xp`` is the array module
(``backend.get_array_module(x)``: NumPy here); the checks run in float64.
"""

STATEMENTS = {
    "linear": """
Write `linear_backward(dout, cache)` for the affine layer `out = x W^T + b`.

- Shapes: `x: (..., C)`, `W: (O, C)`, `b: (O,)` or None, `out: (..., O)`, `dout: (..., O)`.
- The cache is `LinearCache(x2, weight, has_bias, x_shape)`: `x2` is `x` with its leading axes
  flattened to `(N, C)`, and `x_shape` is the shape `dx` must have.
- Return `(dx, dweight, dbias)`, `dbias = None` when `has_bias` is False.

Hint: write one output element `out[n, o] = sum_c x[n, c] W[o, c] + b[o]` and ask which inputs it
touches. Every gradient has the shape of what it is the gradient of.
""",
    "embedding": """
Write `embedding_backward(dout, cache, padding_idx=None)` for the lookup `out[n] = W[idx[n]]`.

- Shapes: `idx: (...)` integer ids in `[0, V)`, `W: (V, C)`, `dout: (..., C)`.
- The cache is `EmbeddingCache(idx, weight_shape)`.
- Return `dweight: (V, C)`. The row `padding_idx` (when not None) receives no gradient.

Hint: a token id can appear at several positions. NumPy's `a[idx] += b` does not add twice when
`idx` repeats an index; `xp.add.at` does.
""",
    "softmax": """
Write `softmax_backward(dout, cache)` and `log_softmax_backward(dout, cache)`.

- Forward: `p_i = exp(x_i - m) / sum_j exp(x_j - m)` along `cache.axis` (m = max_j x_j), and
  `log_softmax(x)_i = x_i - m - log sum_j exp(x_j - m)`.
- The cache is `SoftmaxCache(out, axis)`: `out` is p for softmax and log p for log-softmax.
- Return `dx`, the shape of `dout`.

Hint: every output depends on every input of its row. Write the Jacobian `dp_i / dx_j` for
`i == j` and `i != j`, then multiply by `dout` without building the matrix.
""",
    "cross_entropy": """
Write `cross_entropy_backward(cache, dloss=1.0)` for the mean cross-entropy from logits.

- Forward: `loss_n = -(1 - eps) log p_{y_n} - eps / V * sum_c log p_c` with `log p = log_softmax(z)`,
  and `loss = sum over counted rows of loss_n / count`, a row being counted when its target is
  not `ignore_index`.
- The cache is `CrossEntropyCache(logp, targets, valid, count, label_smoothing, logits_shape)`:
  `logp: (N, V)`, `targets: (N,)` (ignored ones replaced by 0), `valid: (N,)` bool, `count` the
  number of counted rows (at least 1).
- Return `dlogits` of shape `logits_shape`, for an upstream gradient `dloss` of the loss.

Hint: first derive `dloss_n / dz` for one row with eps = 0 (the result is famous), then add the
smoothing term, then the mean.
""",
    "gelu": """
Write `gelu_backward(dout, cache)` for both forms of GELU.

- tanh form: `u = SQRT_2_OVER_PI * (x + GELU_CUBIC * x^3)`, `out = x / 2 * (1 + tanh(u))`.
- exact form: `Phi(x)` is the standard normal CDF, `out = x * Phi(x)`; its density is
  `phi(x) = INV_SQRT_2PI * exp(-x^2 / 2)`.
- The cache is `GELUCache(approximate, x, saved)`: approximate is "tanh" or "none"; saved is
  `tanh(u)` for "tanh" and `Phi(x)` for "none".
- Return `dx`, the shape of `dout`.

Hint: both forms are a product `x * s(x)`.
""",
    "layer_norm": """
Write `layer_norm_backward(dout, cache)` for LayerNorm over the last axis.

- Forward: `mean = sum_c x_c / C`, `var = sum_c (x_c - mean)^2 / C`, `rstd = 1 / sqrt(var + eps)`,
  `xhat = (x - mean) * rstd`, `out = xhat * weight + bias`.
- Shapes: `x, out, dout: (..., C)`, `weight, bias: (C,)`.
- The cache is `LayerNormCache(xhat, rstd, weight)` with `rstd: (..., 1)`.
- Return `(dx, dweight, dbias)`.

Hint: x reaches xhat along three paths: directly, through the mean and through rstd. Write the
gradient of xhat first (dout scaled by the weight), then one term per path.
""",
    "dropout": """
Write `dropout_forward(x, p, mask)` and `dropout_backward(dout, cache)` ("inverted" dropout).

- Forward: keep an element where `mask` is True and scale what is kept by `1 / (1 - p)`, so that
  the expected output equals `x`; evaluation then needs no rescaling.
- Shapes: `x, mask (bool), out: (...)`. Return `(out, DropoutCache(mask, scale))` from the forward
  and `dx` from the backward.
""",
    "positional": """
Write `sinusoidal_table(max_len, dim, dtype=None)` and `positional_backward(dout)`.

- The table `P: (max_len, dim)`: `P[t, 2i] = sin(t / 10000^(2i / dim))` and
  `P[t, 2i + 1] = cos(t / 10000^(2i / dim))`; with an odd dim the last column is a sin.
  Build it in float64 with NumPy, then return `backend.to_device(table.astype(dtype or
  backend.DEFAULT_DTYPE))`.
- The layer computes `out = x + P[:T]` for `x: (B, T, C)`, broadcasting P over the batch.
  `positional_backward(dout)` returns `(dx, dtable)` with `dtable: (T, C)`.
""",
    "attention": """
Write `scaled_dot_product_attention(q, k, v, ...)` (forward) and
`scaled_dot_product_attention_backward(dout, cache)`.

- Forward: `s = q k^T * scale` (scale = 1/sqrt(D) when None), add a float `attn_mask`, set blocked
  keys to -inf, `p = softmax(s)` over the keys, `pd = p * dropout_mask / (1 - dropout_p)` when
  dropout_p > 0 (else `pd = p`), `out = pd v`.
- Shapes: `q: (B, H, T, D)`, `k, v: (B, H, S, D)`, `out: (B, H, T, D)`.
- Masks: `build_mask(attn_mask, key_padding_mask, is_causal, (B, H, T, S), xp)` returns
  `(allowed, additive)`: a bool array (True = may attend) or None, and a float mask or None.
  A query whose every key is blocked gets output 0, not NaN.
- Return `(out, AttentionCache(q, k, v, probs, probs_dropped, dropout_mask, dropout_p, scale))`
  from the forward and `(dq, dk, dv)` from the backward.

Hint: the backward is four matrix products and one softmax backward (the softmax exercise, row
by row). Blocked keys have p = 0, so they need no special case.
""",
    "multi_head": """
Write `split_heads(x, num_heads)` and `merge_heads(x)`.

- `split_heads`: `(B, T, C) -> (B, H, T, D)` with `H = num_heads`, `D = C / H`; head h takes the
  columns `h*D .. h*D + D - 1` of every position.
- `merge_heads`: `(B, H, T, D) -> (B, T, H*D)`, the inverse.

Each is the other's backward, so MultiHeadAttention uses them in both directions.
""",
    "transformer_block": """
Write `backward(self, dy)`, the method `TransformerBlock.backward`, for both layouts.

- pre-LN (`self.norm_first`): `h = x + drop1(attn(norm1(x)))`, `y = h + ff(norm2(h))`.
- post-LN: `h = norm1(x + drop1(attn(x)))`, `y = norm2(h + ff(h))`.
- Each sub-layer has its own `backward(dout) -> dx` that adds its parameters' gradients:
  `self.norm1`, `self.norm2`, `self.self_attn`, `self.ff`, `self.dropout1`. Call them in the
  reverse order of the forward. Return `dx: (B, T, C)`.

Hint: a sum `a + b` sends its gradient unchanged to both terms.
""",
    "gpt_backward": """
Write `backward(self, dlogits)`, the method `GPT.backward`.

- Forward: `x = drop(wpe(wte(idx)))`, then the blocks `self.h`, then `self.ln_f`, then the head
  `logits = linear_forward(x, self.wte.weight.data)` (no bias), whose cache the model keeps:
  `self.pop_cache()` returns it.
- `linear_backward(dlogits, cache)` returns `(dx, dweight, None)`. Every sub-layer has
  `backward(dout) -> dx` and adds its own gradients; `self.wte.backward(dx)` adds the lookup's
  gradient to `self.wte.weight.grad`. Return nothing.

Hint: count how many times `self.wte.weight` is used in the forward.
""",
    "lstm_cell": """
Write `lstm_cell_backward(dh_next, dc_next, cache)` for one LSTM step.

- Forward: `a = x W_ih^T + b_ih + h W_hh^T + b_hh` split into four (B, H) blocks in the order
  i, f, g, o; `i, f, o = sigmoid(a_i, a_f, a_o)`, `g = tanh(a_g)`, `c' = f * c + i * g`,
  `h' = o * tanh(c')`.
- Shapes: `x: (B, I)`, `h, c: (B, H)`, `W_ih: (4H, I)`, `W_hh: (4H, H)`, `b_ih, b_hh: (4H,)`.
- The cache is `LSTMCellCache(x, h, c, w_ih, w_hh, i, f, g, o, tanh_c)`.
- Return `(dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh)`.

Hint: sigmoid' = s (1 - s) and tanh' = 1 - tanh^2, both from saved values.
""",
    "bptt": """
Write `lstm_backward(dy, dh_T, dc_T, cache)`: backpropagation through time.

- Forward: `h_t, c_t = step(x[:, t], h_{t-1}, c_{t-1})` for t = 0 .. T-1, `y[:, t] = h_t`.
- Shapes: `dy: (B, T, H)`, `dh_T, dc_T: (B, H)` (the final state's gradients), `x: (B, T, I)`.
- The cache is `LSTMCache(steps)`, one `LSTMCellCache` per step; use the library's
  `lstm_cell_backward` for one step, so this exercise is graded on its own.
- Return `(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)`.

Hint: run the steps backward. Ask where h_t goes in the forward, and which arrays every step uses.
""",
    "adamw": """
Write `update(self, p, group, state)`, the method `Adam.update` shared by Adam and AdamW.

- With g the gradient (`p.grad`) and t the step number (`self.step_count`, 1 at the first step):
  `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`, and
  `p -= lr * m_hat / (sqrt(v_hat) + eps)` with the bias-corrected `m_hat, v_hat`.
- Weight decay `wd`: Adam (`self.decoupled` False) adds `wd * p` to g first; AdamW
  (`self.decoupled` True) shrinks the weights, `p *= 1 - lr * wd`, before the update.
- `group` holds `lr`, `betas` (b1, b2), `eps`, `weight_decay`; `state` is this parameter's dict:
  create `state["exp_avg"]` and `state["exp_avg_sq"]` (zeros) at the first step. Update `p.data`
  in place.

Hint: m and v start at 0, so early on they are biased towards 0.
""",
    "bpe_merge": """
Write `merge_pair(ids, pair, new_id)`: one merge of byte-pair encoding.

- Return a new list: `ids` with every occurrence of `pair` (two adjacent ids) replaced by `new_id`,
  scanning left to right; occurrences do not overlap. Do not change `ids`.
- Example: `merge_pair([1, 2, 3, 1, 2], (1, 2), 256) == [256, 3, 256]`.
""",
    "top_p": """
Write `filter_logits(logits, top_k=None, top_p=None)`.

- `logits: (B, V)` float64. Return a new array where the logits outside the kept set are -inf.
- top_k: keep the k largest logits of each row (ties with the k-th kept).
- top_p (nucleus): sort each row's probabilities `softmax(logits)` in decreasing order and keep the
  smallest prefix whose sum reaches top_p. top_p = 1 keeps everything.
- Both may be given: top-k first, then top-p on what is left.
""",
    "kv_cache": """
Write `use_kv_cache(cache, k, v, is_causal)`: one decode step with a KV cache.

- `cache` is a `KVCache` with arrays `k, v: (B, H, max_len, D)` and `length`, the positions already
  stored. This call's `k, v: (B, H, T, D)` are the next T positions.
- Store them, and return `(keys, values, attn_mask, is_causal)`: every position stored so far,
  `(B, H, length, D)` each, and the mask the T new queries attend with: with is_causal, a bool
  `(T, length)` mask (True = allowed), None when T == 1; `is_causal` returned is always False.
""",
}
