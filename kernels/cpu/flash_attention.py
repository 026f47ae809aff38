"""Attention on the CPU in tiles with an online softmax (FlashAttention), never the (T, S) matrix.

The algorithm of minillm/nn/tiled_attention.py and kernels/cuda/fused_attention.cu: for each
query tile Q_i (BM rows) the key tiles K_j (BN columns) stream past, and a running row maximum m,
row sum l and output acc are rescaled as each tile arrives:

    s = Q_i K_j^T * scale (masked: -inf),  m' = max(m, rowmax s),  p = exp(s - m'),
    alpha = exp(m - m'),  l = l alpha + rowsum p,  acc = acc alpha + p V_j,  m = m'
    out = acc / l,  L = m + log l      (the row log-sum-exp: all the backward keeps)

The backward recomputes each tile's weights from L (p = exp(s - L)) and, with
Dv = rowsum(dO * O), takes ds = p (dO V_j^T - Dv) and adds dV_j += p^T dO_i, dK_j += ds^T Q_i,
dQ_i += ds K_j (each ds product times the scale). A causal mask skips the tiles above the
diagonal, half of them, and cuts those on it into strips of rows that reach only the keys they
see. Memory: tiles of (B*H, BM, BN), the output and L: linear in T.

The tile products are BLAS matrix products, written into buffers reused from tile to tile (a new
array per product cost a fifth of the time at T = 2048); the rest between them (scaling, masking,
the running maximum, the exp and the sums, the rescaling) is compiled loops over a tile's rows
(Numba, exp from vector_exp), the rows shared between threads.
"""
from concurrent.futures import ThreadPoolExecutor, wait
from typing import NamedTuple

import numpy as np

from . import jit
from .jit import compiled, prange, unavailable
from .threads import blas_threads, current_cpu, off_core
from .vector_exp import exp
from .vector_max import from_key, key

BLOCK_M, BLOCK_N = 256, 256         # query rows and key columns per tile: bigger tiles, faster BLAS
DIAGONAL_ROWS = 64                  # rows per strip of a causal tile on the diagonal (_pieces)
MIN_SCORES = 256 * 256              # below T * S this many, one score matrix fits in cache: cpu.attention
_pool = {}                          # the worker threads of _on_shards, made at first use


class FlashAttentionCPUCache(NamedTuple):
    q: np.ndarray              # (N, T, D), N = B * H
    k: np.ndarray              # (N, S, D)
    v: np.ndarray              # (N, S, D)
    out: np.ndarray            # (N, T, D)
    lse: np.ndarray            # (N, T) row log-sum-exp (+inf where every key is masked)
    pad: np.ndarray            # (N, S) bool, True = a padded key (all False without a mask)
    is_causal: bool
    scale: float
    shape: tuple               # (B, H, T, D)

    def backward(self, dout):
        return backward(dout, self)


def accepts(q, k, v, attn_mask, is_causal, key_padding_mask, dropout_p):
    """None for NumPy float arrays with causal and/or key-padding masks, no dropout, long sequences."""
    reason = unavailable(q=q, k=k, v=v)
    if reason:
        return reason
    if attn_mask is not None:
        return "an attn_mask other than causal / key padding"
    if dropout_p > 0:
        return "attention dropout"
    if q.shape[2] * k.shape[2] < MIN_SCORES:
        return f"T * S = {q.shape[2] * k.shape[2]} < {MIN_SCORES}: the whole score matrix fits in cache"
    return None


@compiled(sums=True)
def _exp_tile(s, scale, m, pad, has_pad, row0, col0, causal, empty, alpha, l, r0):
    """s (N, R, C) scores of the rows r0:r0+R of m, alpha and l -> p = exp(s * scale - m') in place
    (masked entries 0), m = m' = max(m, rowmax), alpha = exp(m - m'), l = l alpha + rowsum(p).
    A row with every key so far masked keeps m' = -inf, alpha 1. The causal mask is an end
    column per row, so the loops have no branch and run in vectors; exp is vector_exp's."""
    N, R, C = s.shape
    for n in prange(N):
        for r in range(R):
            end = min(C, max(0, row0 + r - col0 + 1)) if causal else C
            if has_pad:
                for c in range(end):
                    if pad[n, col0 + c]:
                        s[n, r, c] = empty
            top_key = key(m[n, r0 + r])        # the maximum over integer keys runs in vectors
            for c in range(end):
                v = s[n, r, c] * scale
                s[n, r, c] = v
                top_key = max(top_key, key(v))
            top = from_key(top_key)
            shift = top
            if top == empty:
                shift = scale - scale
                alpha[n, r0 + r] = scale / scale
            else:
                alpha[n, r0 + r] = exp(m[n, r0 + r] - top)
            m[n, r0 + r] = top
            total = scale - scale
            for c in range(end):
                e = exp(s[n, r, c] - shift)
                s[n, r, c] = e
                total += e
            for c in range(end, C):
                s[n, r, c] = scale - scale
            l[n, r0 + r] = l[n, r0 + r] * alpha[n, r0 + r] + total


@compiled
def _rescale_add(acc, alpha, pv, r0):
    """acc[:, r0:r0+R] = acc[:, r0:r0+R] * alpha[:, r0:r0+R, None] + pv; pv: (N, R, D)."""
    N, R, D = pv.shape
    for n in prange(N):
        for r in range(R):
            a = alpha[n, r0 + r]
            for d in range(D):
                acc[n, r0 + r, d] = acc[n, r0 + r, d] * a + pv[n, r, d]


@compiled
def _finish(acc, m, l, out, lse, empty):
    """out = acc / l and L = m + log l per row; a row with every key masked: out 0, L = +inf."""
    N, R, D = acc.shape
    for n in prange(N):
        for r in range(R):
            if l[n, r] == 0:
                lse[n, r] = -empty
                for d in range(D):
                    out[n, r, d] = 0
            else:
                lse[n, r] = m[n, r] + np.log(l[n, r])
                inv = 1 / l[n, r]
                for d in range(D):
                    out[n, r, d] = acc[n, r, d] * inv


@compiled
def _weights_and_gradient(s, dp, lse, dv_row, pad, has_pad, scale, row0, col0, causal, empty):
    """s (N, R, C) scores -> p = exp(s * scale - L) in place, the exact weights (masked entries and
    rows with no key 0), and dp = dO V^T -> ds = p (dp - Dv) in place, in one pass over the tile."""
    N, R, C = s.shape
    zero = scale - scale
    for n in prange(N):
        for r in range(R):
            row = row0 + r
            L, d = lse[n, row], dv_row[n, row]
            end = min(C, max(0, row - col0 + 1)) if causal else C
            if L == -empty:
                end = 0
            if has_pad:
                for c in range(end):
                    if pad[n, col0 + c]:
                        s[n, r, c] = empty
            for c in range(end):
                p = exp(s[n, r, c] * scale - L)
                s[n, r, c] = p
                dp[n, r, c] = p * (dp[n, r, c] - d)
            for c in range(end, C):
                s[n, r, c] = zero
                dp[n, r, c] = zero


@compiled(sums=True)
def _row_dots(a, b, out):
    """out[n, t] = sum_d a[n, t, d] b[n, t, d]."""
    N, T, D = a.shape
    for n in prange(N):
        for t in range(T):
            total = a[n, t, 0] - a[n, t, 0]
            for d in range(D):
                total += a[n, t, d] * b[n, t, d]
            out[n, t] = total


def _flat(a):
    """(B, H, L, D) -> contiguous (B*H, L, D)."""
    B, H, L, D = a.shape
    return np.ascontiguousarray(a).reshape(B * H, L, D)


def _shards(N):
    """[(start, stop)] of the B*H axis: one per thread from the main thread, else the whole axis."""
    if jit.in_shared_thread() or not blas_threads.available() or jit.threads() < 2 or N < 2:
        return [(0, N)]
    parts = min(jit.threads(), N)
    return [(i * N // parts, (i + 1) * N // parts) for i in range(parts)]


def _on_shards(work, N):
    """work(start, stop) on each shard, one thread and one BLAS thread each: the tile products are
    small, and one thread per shard keeps every core busy without BLAS's threads waiting on each
    other between them."""
    shards = _shards(N)
    if len(shards) == 1:
        return work(0, N)
    if _pool.get("size") != len(shards) - 1:
        _pool["size"], _pool["pool"] = len(shards) - 1, ThreadPoolExecutor(len(shards) - 1)
    cpu = current_cpu()                # the other shards keep off this thread's core
    with blas_threads(1), jit.one_thread_each():
        futures = [_pool["pool"].submit(off_core.call, cpu, work, a, b) for a, b in shards[1:]]
        try:
            work(*shards[0])
        finally:
            wait(futures)
    for f in futures:
        f.result()                        # a shard's exception, raised here


def _pieces(m0, m1, n0, n1, causal):
    """[(r0, r1, c1)]: the query rows r0:r1 of the tile m0:m1 x n0:n1 and the keys n0:c1 they see.
    A causal tile that the diagonal crosses is cut into strips of DIAGONAL_ROWS rows, each only
    as wide as its last row sees, so its products skip most of the masked scores (a whole
    256 x 256 diagonal tile is half masked); strips that see no key of the tile are left out."""
    if not causal or n1 - 1 <= m0:
        return [(m0, m1, n1)]
    strips = [(r0, min(r0 + DIAGONAL_ROWS, m1)) for r0 in range(m0, m1, DIAGONAL_ROWS)]
    return [(r0, r1, min(n1, r1)) for r0, r1 in strips if min(n1, r1) > n0]


def _view(buf, *shape):
    """A C-contiguous array of this shape on the front of the flat buffer buf."""
    return buf[:int(np.prod(shape))].reshape(shape)


def _forward_rows(qf, kf, vf, pad, out, lse, is_causal, scale):
    """out and L of the rows n of q (n, T, D): the online softmax, tile by tile."""
    N, T, D = qf.shape
    S = kf.shape[1]
    t = qf.dtype.type
    empty = t(-np.inf)
    has_pad = bool(pad.any())
    s_buf = np.empty(N * BLOCK_M * BLOCK_N, dtype=qf.dtype)          # each piece's scores, (N, R, C)
    pv_buf = np.empty(N * BLOCK_M * D, dtype=qf.dtype)               # and its p V_j, (N, R, D)
    for m0 in range(0, T, BLOCK_M):
        m1 = min(m0 + BLOCK_M, T)
        m = np.full((N, m1 - m0), empty)
        l = np.zeros((N, m1 - m0), dtype=qf.dtype)
        alpha = np.empty_like(l)
        acc = np.zeros((N, m1 - m0, D), dtype=qf.dtype)
        n_end = min(S, m1) if is_causal else S                      # causal: later keys are all masked
        for n0 in range(0, n_end, BLOCK_N):
            for r0, r1, c1 in _pieces(m0, m1, n0, min(n0 + BLOCK_N, n_end), is_causal):
                s = np.matmul(qf[:, r0:r1], kf[:, n0:c1].transpose(0, 2, 1), out=_view(s_buf, N, r1 - r0, c1 - n0))
                _exp_tile(s, t(scale), m, pad, has_pad, r0, n0, is_causal, empty, alpha, l, r0 - m0)
                pv = np.matmul(s, vf[:, n0:c1], out=_view(pv_buf, N, r1 - r0, D))
                _rescale_add(acc, alpha, pv, r0 - m0)
        _finish(acc, m, l, out[:, m0:m1], lse[:, m0:m1], empty)


def forward(q, k, v, attn_mask, is_causal, key_padding_mask, dropout_p, dropout_mask, scale):
    """out = softmax(q k^T * scale + mask) v, tile by tile; q: (B, H, T, D), k, v: (B, H, S, D)."""
    B, H, T, D = q.shape
    S = k.shape[2]
    qf, kf, vf = _flat(q), _flat(k), _flat(v)
    N = B * H
    pad = (np.zeros((N, S), dtype=bool) if key_padding_mask is None
           else np.repeat(np.asarray(key_padding_mask, dtype=bool), H, axis=0))
    out, lse = np.empty_like(qf), np.empty((N, T), dtype=q.dtype)
    _on_shards(lambda a, b: _forward_rows(qf[a:b], kf[a:b], vf[a:b], pad[a:b], out[a:b], lse[a:b], is_causal, scale), N)
    cache = FlashAttentionCPUCache(qf, kf, vf, out, lse, pad, is_causal, scale, (B, H, T, D))
    return out.reshape(B, H, T, D), cache


def _backward_rows(qf, kf, vf, do, lse, dv_row, pad, causal, scale, dq, dk, dv):
    """dq, dk, dv of the rows n: key tile by key tile, each tile's weights recomputed from L."""
    N, T, D = qf.shape
    S = kf.shape[1]
    t = qf.dtype.type
    has_pad = bool(pad.any())
    s_buf, dp_buf = (np.empty(N * BLOCK_M * BLOCK_N, dtype=qf.dtype) for _ in range(2))
    kv_buf, q_buf = np.empty(N * BLOCK_N * D, dtype=qf.dtype), np.empty(N * BLOCK_M * D, dtype=qf.dtype)
    for n0 in range(0, S, BLOCK_N):
        n1 = min(n0 + BLOCK_N, S)
        m_start = (n0 // BLOCK_M) * BLOCK_M if causal else 0           # earlier queries never see these keys
        for m0 in range(m_start, T, BLOCK_M):
            for r0, r1, c1 in _pieces(m0, min(m0 + BLOCK_M, T), n0, n1, causal):
                q_i, do_i, k_j, v_j = qf[:, r0:r1], do[:, r0:r1], kf[:, n0:c1], vf[:, n0:c1]
                R, C = r1 - r0, c1 - n0
                s = np.matmul(q_i, k_j.transpose(0, 2, 1), out=_view(s_buf, N, R, C))        # (N, R, C)
                dp = np.matmul(do_i, v_j.transpose(0, 2, 1), out=_view(dp_buf, N, R, C))     # dO_i V_j^T
                _weights_and_gradient(s, dp, lse, dv_row, pad, has_pad, t(scale), r0, n0, causal, t(-np.inf))  # p; ds
                kv_part, q_part = _view(kv_buf, N, C, D), _view(q_buf, N, R, D)   # products into reused buffers
                dv[:, n0:c1] += np.matmul(s.transpose(0, 2, 1), do_i, out=kv_part)
                dk[:, n0:c1] += np.matmul(dp.transpose(0, 2, 1), q_i, out=kv_part)
                dq[:, r0:r1] += np.matmul(dp, k_j, out=q_part)
    dq *= t(scale)
    dk *= t(scale)


def backward(dout, cache):
    """dq, dk, dv (the shapes of q, k, v)."""
    qf, kf, vf, out, lse, pad, causal, scale, (B, H, T, D) = cache
    S, N = kf.shape[1], B * H
    do = np.ascontiguousarray(dout, dtype=qf.dtype).reshape(N, T, D)
    dv_row = np.empty((N, T), dtype=qf.dtype)
    dq, dk, dv = np.zeros_like(qf), np.zeros_like(kf), np.zeros_like(vf)

    def work(a, b):
        _row_dots(do[a:b], out[a:b], dv_row[a:b])                      # Dv = rowsum(dO * O)
        _backward_rows(qf[a:b], kf[a:b], vf[a:b], do[a:b], lse[a:b], dv_row[a:b], pad[a:b], causal, scale,
                       dq[a:b], dk[a:b], dv[a:b])

    _on_shards(work, N)
    return dq.reshape(B, H, T, D), dk.reshape(B, H, S, D), dv.reshape(B, H, S, D)
