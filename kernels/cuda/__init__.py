"""Loads ``fused_attention.cu`` with cupy.RawModule and launches its kernels.

The CUDA source is read as text and compiled by CuPy (NVRTC) on first use; CuPy
caches the binary on disk, so later runs start at once. Kernels are templates on
the padded head size D in {32, 64, 128}; a head size d <= D is zero-padded inside
the kernel (zeros do not change dot products). Scalars are passed as
numpy.int32 / numpy.float32 and arrays must be contiguous: RawKernel checks nothing.

    out, lse = attention_forward(q, k, v, causal, key_padding_mask, scale)
    dq, dk, dv = attention_backward(dout, q, k, v, out, lse, causal, key_padding_mask, scale)
q: (B, H, T, d), k, v: (B, H, S, d), key_padding_mask: (B, S) bool (True = pad) or None.
"""
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("fused_attention.cu")
TILE = 64
THREADS = 256
_module = None


def _get_module():
    global _module
    if _module is None:
        import cupy
        names = [f"{k}<{D}>" for k in ("attn_fwd", "attn_bwd_dkdv", "attn_bwd_dq") for D in (32, 64, 128)]
        _module = cupy.RawModule(code=SOURCE.read_text(encoding="utf-8"), options=("-std=c++17",), name_expressions=names)
    return _module


def padded_dim(d):
    """The kernel template (32, 64 or 128) that serves head size d (1..128)."""
    if not 1 <= d <= 128:
        raise ValueError(f"fused attention supports head_dim 1..128, got {d}")
    return 32 if d <= 32 else 64 if d <= 64 else 128


def shared_bytes(kind, D):
    """Dynamic shared memory of one block, in bytes (see the table at the top of the .cu file)."""
    tile, ptile = TILE * (D + 4), TILE * (TILE + 4)
    floats = {"fwd": 3 * tile + ptile, "dkdv": 4 * tile + 2 * ptile + 2 * TILE, "dq": 4 * tile + ptile,
              "dkdvq": 4 * tile + 3 * ptile + 2 * TILE}[kind]
    return 4 * floats


def _kernel(kind, D):
    name = {"fwd": "attn_fwd", "dkdv": "attn_bwd_dkdv", "dkdvq": "attn_bwd_dkdv", "dq": "attn_bwd_dq"}[kind]
    kern = _get_module().get_function(f"{name}<{D}>")
    smem = shared_bytes(kind, D)
    if smem > 48 * 1024:    # above 48 KB a block must opt in (cudaFuncSetAttribute)
        kern.max_dynamic_shared_size_bytes = smem
    return kern, smem


def _flat(x, n, t, d):
    import cupy
    return cupy.ascontiguousarray(x, dtype=cupy.float32).reshape(n, t, d)


def _mask_args(key_padding_mask):
    import cupy
    if key_padding_mask is None:
        return cupy.zeros(1, dtype=cupy.uint8), np.int32(0)
    return cupy.ascontiguousarray(key_padding_mask, dtype=cupy.uint8), np.int32(1)


def attention_forward(q, k, v, causal, key_padding_mask, scale):
    """Fused forward. Returns out (B, H, T, d) and the row log-sum-exp lse (B, H, T), float32."""
    import cupy
    B, H, T, d = q.shape
    S = k.shape[2]
    N, D = B * H, padded_dim(d)
    q3, k3, v3 = _flat(q, N, T, d), _flat(k, N, S, d), _flat(v, N, S, d)
    out = cupy.empty_like(q3)
    lse = cupy.empty((N, T), dtype=cupy.float32)
    kpm, has_kpm = _mask_args(key_padding_mask)
    kern, smem = _kernel("fwd", D)
    kern((N, -(-T // TILE)), (THREADS,),
         (q3, k3, v3, kpm, out, lse, np.int32(H), np.int32(T), np.int32(S), np.int32(d),
          np.float32(scale), np.int32(bool(causal)), has_kpm), shared_mem=smem)
    return out.reshape(B, H, T, d), lse.reshape(B, H, T)


def attention_backward(dout, q, k, v, out, lse, causal, key_padding_mask, scale, dq_mode=None):
    """Fused backward from the saved out and lse. Returns dq (B, H, T, d), dk, dv (B, H, S, d).

    dq_mode "atomic": one kernel; each key-tile block also adds its share of dQ with atomicAdd
    (FlashAttention-2; fewer matmuls, run-to-run rounding differences in dQ). "two_pass": a second
    kernel computes dQ per query tile (deterministic, recomputes two tile products).
    Default: $MINILLM_ATTN_DQ, else "atomic".
    """
    import os
    dq_mode = dq_mode or os.environ.get("MINILLM_ATTN_DQ", "atomic")
    import cupy
    B, H, T, d = q.shape
    S = k.shape[2]
    N, D = B * H, padded_dim(d)
    q3, k3, v3 = _flat(q, N, T, d), _flat(k, N, S, d), _flat(v, N, S, d)
    do3, o3 = _flat(dout, N, T, d), _flat(out, N, T, d)
    Dv = (do3 * o3).sum(axis=2)                          # (N, T): rowsum(dO * O)
    lse2 = cupy.ascontiguousarray(lse, dtype=cupy.float32).reshape(N, T)
    atomic = dq_mode == "atomic"
    dq = cupy.zeros_like(q3) if atomic else cupy.empty_like(q3)
    dk, dv = cupy.empty_like(k3), cupy.empty_like(v3)
    kpm, has_kpm = _mask_args(key_padding_mask)
    tail = (np.int32(H), np.int32(T), np.int32(S), np.int32(d), np.float32(scale), np.int32(bool(causal)), has_kpm)
    kern, smem = _kernel("dkdvq" if atomic else "dkdv", D)
    kern((N, -(-S // TILE)), (THREADS,), (q3, k3, v3, kpm, do3, lse2, Dv, dk, dv, dq) + tail + (np.int32(atomic),),
         shared_mem=smem)
    if not atomic:
        kern, smem = _kernel("dq", D)
        kern((N, -(-T // TILE)), (THREADS,), (q3, k3, v3, kpm, do3, lse2, Dv, dq) + tail, shared_mem=smem)
    return dq.reshape(B, H, T, d), dk.reshape(B, H, S, d), dv.reshape(B, H, S, d)
