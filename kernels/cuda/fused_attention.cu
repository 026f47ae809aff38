// Fused softmax attention, forward and backward, float32 (FlashAttention: Dao et al. 2022,
// FlashAttention-2: Dao 2023). The NumPy twin with the same loops is
// minillm/nn/tiled_attention.py: read that first, then this.
//
// Shapes (contiguous, row-major): Q, O: (N, T, d); K, V: (N, S, d); N = batch * heads;
// L: (N, T) row log-sum-exp; kpm: (batch, S) bytes, 1 = padding key (only if has_kpm).
//
// Tiling. A thread block of 256 threads owns one (n, 64-row tile) pair. Its 256 threads
// form a 16 x 16 grid: ty = tid / 16 picks 4 consecutive rows (ty*4 .. ty*4+3) and
// tx = tid % 16 picks 4 strided columns (tx, tx+16, tx+32, tx+48) of each 64 x 64 score
// tile, so every thread computes a 4 x 4 patch of S in registers. The 16 threads that
// share rows are 16 consecutive lanes of one warp, so row max / row sum are 4 shuffles.
//
// Shared memory holds tiles row-major with the row stride padded from D to D + 4 floats:
// the 8 threads of a quarter warp then start their 16-byte reads in 8 different groups of
// 4 banks (row r starts at bank 4r mod 32) instead of all in one (a 8-way conflict).
// The probability tile goes through shared memory transposed (key-major), because the
// P V product needs, for every key, the 4 probabilities of a thread's 4 rows: one float4.
//
// Sizes of the dynamic shared memory (floats), LD = D + 4, LDP = 68:
//   forward: Q, K, V tiles 3 * 64 * LD  +  P^T 64 * LDP          (D=128: 119 KB)
//   dK/dV:   K, V, Q, dO   4 * 64 * LD  +  P, dS 2 * 64 * LDP + 128 (D=128: 171 KB)
//            (+ 64 * LDP for the key-major dS when it also adds dQ with atomics: D=128: 188 KB)
//   dQ:      Q, dO, K, V   4 * 64 * LD  +  dS^T 64 * LDP          (D=128: 153 KB)
// More than 48 KB per block must be requested explicitly (cudaFuncSetAttribute; CuPy's
// RawKernel.max_dynamic_shared_size_bytes); an H100 allows up to 227 KB.
//
// Scores are kept in base 2: s2 = (q . k) * scale * log2(e), so exp(x) becomes exp2f(x2),
// one hardware instruction. L is converted back to natural log when it is written.

#define NTHREADS 256
#define TILE 64          // rows of a query tile = rows of a key tile
#define LDP (TILE + 4)   // padded stride of the probability tiles
#define NEG_INF __int_as_float(0xff800000)
#define POS_INF __int_as_float(0x7f800000)
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

// Output columns a thread owns in a (64 x D) accumulator: CPT = D / 16 of them, in chunks of
// VEC contiguous columns so they are read as float4 (or float2 when D = 32).
template <int D> struct Cols {
    static constexpr int CPT = D / 16;
    static constexpr int VEC = CPT >= 4 ? 4 : CPT;
    __device__ static int col(int jj, int tx) { return (jj / VEC) * (16 * VEC) + tx * VEC + (jj % VEC); }
};

// Copy rows [r0, r0 + 64) of a (rows x d) global matrix into a (64 x LD) shared tile,
// zero-filling rows past the end and columns d..D-1 (zeros leave dot products unchanged).
template <int D>
__device__ void load_tile(float* tile, const float* __restrict__ g, int r0, int rows, int d, int tid) {
    constexpr int LD = D + 4;
    for (int idx = tid; idx < TILE * D; idx += NTHREADS) {
        int r = idx / D, c = idx % D;
        float x = 0.f;
        if (r0 + r < rows && c < d) x = __ldg(g + (size_t)(r0 + r) * d + c);
        tile[r * LD + c] = x;
    }
}

// acc[i][j] = sum_c A[ty*4 + i][c] * B[tx + 16 j][c]: a 4 x 4 patch of A B^T, both tiles (64 x LD).
template <int D>
__device__ void patch_abt(float acc[4][4], const float* A, const float* B, int ty, int tx) {
    constexpr int LD = D + 4;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
#pragma unroll 4
    for (int c = 0; c < D; c += 4) {
        float4 a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = *reinterpret_cast<const float4*>(A + (ty * 4 + i) * LD + c);
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = *reinterpret_cast<const float4*>(B + (tx + 16 * j) * LD + c);
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
                acc[i][j] += a[i].x * b[j].x + a[i].y * b[j].y + a[i].z * b[j].z + a[i].w * b[j].w;
    }
}

// acc[i][jj] += sum_k Pt[k][ty*4 + i] * M[k][col(jj)]: a thread's rows of P M, with P stored
// transposed (64 x LDP) and M a (64 x LD) tile. This is the "P V" of the forward pass and the
// "dS K", "P^T dO", "dS^T Q" of the backward pass.
template <int D>
__device__ void accumulate_pm(float acc[4][D / 16], const float* Pt, const float* M, int ty, int tx) {
    constexpr int LD = D + 4, CPT = Cols<D>::CPT, VEC = Cols<D>::VEC;
#pragma unroll 4
    for (int k = 0; k < TILE; ++k) {
        float4 p = *reinterpret_cast<const float4*>(Pt + k * LDP + ty * 4);
        float m[CPT];
#pragma unroll
        for (int jj = 0; jj < CPT; jj += VEC) {
            const float* src = M + k * LD + Cols<D>::col(jj, tx);
            if (VEC == 4) {
                float4 t = *reinterpret_cast<const float4*>(src);
                m[jj] = t.x; m[jj + 1] = t.y; m[jj + 2] = t.z; m[jj + 3] = t.w;
            } else {
                float2 t = *reinterpret_cast<const float2*>(src);
                m[jj] = t.x; m[jj + 1] = t.y;
            }
        }
#pragma unroll
        for (int jj = 0; jj < CPT; ++jj) {
            acc[0][jj] += p.x * m[jj];
            acc[1][jj] += p.y * m[jj];
            acc[2][jj] += p.z * m[jj];
            acc[3][jj] += p.w * m[jj];
        }
    }
}

// Store a thread's 4 x 4 patch v[i][j] (rows ty*4+i, columns tx+16j) transposed: Pt[col][row].
__device__ void store_patch_t(float* Pt, const float v[4][4], int ty, int tx) {
#pragma unroll
    for (int j = 0; j < 4; ++j)
        *reinterpret_cast<float4*>(Pt + (tx + 16 * j) * LDP + ty * 4) = make_float4(v[0][j], v[1][j], v[2][j], v[3][j]);
}

// Store a thread's 4 x 4 patch as it is: P[row][col] (rows ty*4+i, columns tx+16j).
__device__ void store_patch(float* P, const float v[4][4], int ty, int tx) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) P[(ty * 4 + i) * LDP + tx + 16 * j] = v[i][j];
}

// FlashAttention-2's dQ: g[m0 + r][c] += mul * sum_k dS[r][k] K[k][c] for this key tile, added
// with atomics because every key tile (another block) adds to the same rows of dQ. dSk is the
// key-major tile dSk[key][query]; the thread owns query rows ty*4+i and computes its columns in
// chunks of 4 so that only 16 extra accumulators are live at a time.
template <int D>
__device__ void atomic_add_ds_k(float* g, const float* dSk, const float* Ks, int m0, int rows, int d,
                                int ty, int tx, float mul) {
    constexpr int LD = D + 4, VEC = Cols<D>::VEC;
#pragma unroll
    for (int chunk = 0; chunk < Cols<D>::CPT; chunk += VEC) {
        float acc[4][VEC];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int e = 0; e < VEC; ++e) acc[i][e] = 0.f;
        const int c0 = Cols<D>::col(chunk, tx);
#pragma unroll 4
        for (int k = 0; k < TILE; ++k) {
            float4 p = *reinterpret_cast<const float4*>(dSk + k * LDP + ty * 4);
#pragma unroll
            for (int e = 0; e < VEC; ++e) {
                const float kv = Ks[k * LD + c0 + e];
                acc[0][e] += p.x * kv; acc[1][e] += p.y * kv; acc[2][e] += p.z * kv; acc[3][e] += p.w * kv;
            }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int r = m0 + ty * 4 + i;
#pragma unroll
            for (int e = 0; e < VEC; ++e)
                if (r < rows && c0 + e < d) atomicAdd(g + (size_t)r * d + c0 + e, acc[i][e] * mul);
        }
    }
}

// May query `row` attend key `col`? In range, not in the future (causal), not padding.
__device__ __forceinline__ bool visible(int row, int col, int S, int causal, const unsigned char* pad) {
    return col < S && (!causal || col <= row) && (pad == nullptr || pad[col] == 0);
}

// Write a thread's rows of a (64 x D) accumulator, times `mul`, to rows [r0, r0+64) of a (rows x d) matrix.
template <int D>
__device__ void store_rows(float* __restrict__ g, const float acc[4][D / 16], int r0, int rows, int d,
                           int ty, int tx, float mul) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        int r = r0 + ty * 4 + i;
        if (r >= rows) continue;
#pragma unroll
        for (int jj = 0; jj < Cols<D>::CPT; ++jj) {
            int c = Cols<D>::col(jj, tx);
            if (c < d) g[(size_t)r * d + c] = acc[i][jj] * mul;
        }
    }
}

// ---------------------------------------------------------------------------------- forward
// grid = (N, ceil(T / 64)); the query tile index is reversed so that, with a causal mask, the
// longest tiles (late queries see the most keys) start first and the short ones fill the tail.
template <int D>
__global__ void __launch_bounds__(NTHREADS)
attn_fwd(const float* __restrict__ Q, const float* __restrict__ K, const float* __restrict__ V,
         const unsigned char* __restrict__ kpm, float* __restrict__ O, float* __restrict__ L,
         int H, int T, int S, int d, float scale, int causal, int has_kpm) {
    constexpr int LD = D + 4, CPT = Cols<D>::CPT;
    extern __shared__ float smem[];
    float* sQ = smem;                 // (64, LD)
    float* sK = sQ + TILE * LD;       // (64, LD)
    float* sV = sK + TILE * LD;       // (64, LD)
    float* sPt = sV + TILE * LD;      // (64 keys, LDP) probabilities, transposed

    const int n = blockIdx.x, m0 = (gridDim.y - 1 - blockIdx.y) * TILE;
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const float* q = Q + (size_t)n * T * d;
    const float* k = K + (size_t)n * S * d;
    const float* v = V + (size_t)n * S * d;
    const unsigned char* pad = has_kpm ? kpm + (size_t)(n / H) * S : nullptr;
    const float scale2 = scale * LOG2E;

    load_tile<D>(sQ, q, m0, T, d, tid);
    float m_run[4], l_run[4], acc[4][CPT];       // running max (base 2), running sum, output
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        m_run[i] = NEG_INF; l_run[i] = 0.f;
#pragma unroll
        for (int jj = 0; jj < CPT; ++jj) acc[i][jj] = 0.f;
    }
    const int n_end = causal ? min(S, m0 + TILE) : S;   // causal: keys after the tile's last query are masked
    for (int n0 = 0; n0 < n_end; n0 += TILE) {
        __syncthreads();                                 // everyone is done with the previous K, V, P
        load_tile<D>(sK, k, n0, S, d, tid);
        load_tile<D>(sV, v, n0, S, d, tid);
        __syncthreads();
        float s[4][4];
        patch_abt<D>(s, sQ, sK, ty, tx);                 // s = Q K^T for this thread's 4 x 4 patch
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int row = m0 + ty * 4 + i;
            float mx = NEG_INF;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                s[i][j] = visible(row, n0 + tx + 16 * j, S, causal, pad) ? s[i][j] * scale2 : NEG_INF;
                mx = fmaxf(mx, s[i][j]);
            }
#pragma unroll
            for (int off = 8; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            const float m_new = fmaxf(m_run[i], mx);
            const float m_use = m_new == NEG_INF ? 0.f : m_new;   // row fully masked so far: exp2 stays 0
            const float alpha = exp2f(m_run[i] - m_use);          // rescales what was summed under the old max
            float rowsum = 0.f;
#pragma unroll
            for (int j = 0; j < 4; ++j) { s[i][j] = exp2f(s[i][j] - m_use); rowsum += s[i][j]; }
#pragma unroll
            for (int off = 8; off > 0; off >>= 1) rowsum += __shfl_xor_sync(0xffffffffu, rowsum, off);
            l_run[i] = l_run[i] * alpha + rowsum;
            m_run[i] = m_new;
#pragma unroll
            for (int jj = 0; jj < CPT; ++jj) acc[i][jj] *= alpha;
        }
        store_patch_t(sPt, s, ty, tx);
        __syncthreads();
        accumulate_pm<D>(acc, sPt, sV, ty, tx);          // acc += P V
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int row = m0 + ty * 4 + i;
        const float inv = l_run[i] > 0.f ? 1.f / l_run[i] : 0.f;   // fully masked row: output 0
#pragma unroll
        for (int jj = 0; jj < CPT; ++jj) acc[i][jj] *= inv;
        if (tx == 0 && row < T)
            L[(size_t)n * T + row] = l_run[i] > 0.f ? (m_run[i] + log2f(l_run[i])) * LN2 : POS_INF;
    }
    store_rows<D>(O + (size_t)n * T * d, acc, m0, T, d, ty, tx, 1.f);
}

// ---------------------------------------------------------------------------------- backward
// Both kernels recompute P = exp(s - L) exactly from the saved L and use Dv = rowsum(dO * O)
// (computed beforehand): dS = P * (dP - Dv), dP = dO V^T.

// dK, dV: grid = (N, ceil(S / 64)); one block owns a key tile and walks over the query tiles.
// Here the thread's 4 rows are keys and its 4 columns are queries.
template <int D>
__global__ void __launch_bounds__(NTHREADS)
attn_bwd_dkdv(const float* __restrict__ Q, const float* __restrict__ K, const float* __restrict__ V,
              const unsigned char* __restrict__ kpm, const float* __restrict__ dO,
              const float* __restrict__ L, const float* __restrict__ Dv,
              float* __restrict__ dK, float* __restrict__ dV, float* __restrict__ dQ,
              int H, int T, int S, int d, float scale, int causal, int has_kpm, int with_dq) {
    constexpr int LD = D + 4, CPT = Cols<D>::CPT;
    extern __shared__ float smem[];
    float* sK = smem;                  // (64 keys, LD)
    float* sV = sK + TILE * LD;        // (64 keys, LD)
    float* sQ = sV + TILE * LD;        // (64 queries, LD)
    float* sdO = sQ + TILE * LD;       // (64 queries, LD)
    float* sP = sdO + TILE * LD;       // (64 queries, LDP): P stored query-major = (P^T)^T
    float* sdS = sP + TILE * LDP;      // (64 queries, LDP)
    float* sL = sdS + TILE * LDP;      // (64,) L of the query tile, base 2
    float* sD = sL + TILE;             // (64,) Dv of the query tile
    float* sdSk = sD + TILE;           // (64 keys, LDP): dS key-major, only when with_dq

    const int n = blockIdx.x, n0 = (gridDim.y - 1 - blockIdx.y) * TILE;
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const size_t qoff = (size_t)n * T * d, koff = (size_t)n * S * d;
    const unsigned char* pad = has_kpm ? kpm + (size_t)(n / H) * S : nullptr;
    const float scale2 = scale * LOG2E;

    load_tile<D>(sK, K + koff, n0, S, d, tid);
    load_tile<D>(sV, V + koff, n0, S, d, tid);
    float dk[4][CPT], dv[4][CPT];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int jj = 0; jj < CPT; ++jj) dk[i][jj] = dv[i][jj] = 0.f;

    const int m_start = causal ? n0 : 0;             // causal: queries before the first key see none of them
    for (int m0 = m_start; m0 < T; m0 += TILE) {
        __syncthreads();
        load_tile<D>(sQ, Q + qoff, m0, T, d, tid);
        load_tile<D>(sdO, dO + qoff, m0, T, d, tid);
        if (tid < TILE) {
            const int r = m0 + tid;
            sL[tid] = r < T ? L[(size_t)n * T + r] * LOG2E : POS_INF;
            sD[tid] = r < T ? Dv[(size_t)n * T + r] : 0.f;
        }
        __syncthreads();
        float p[4][4], dp[4][4];
        patch_abt<D>(p, sK, sQ, ty, tx);             // S^T = K Q^T  (rows: keys, columns: queries)
        patch_abt<D>(dp, sV, sdO, ty, tx);           // dP^T = V dO^T
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int key = n0 + ty * 4 + i, qi = tx + 16 * j, row = m0 + qi;
                const bool ok = row < T && visible(row, key, S, causal, pad);
                p[i][j] = ok ? exp2f(p[i][j] * scale2 - sL[qi]) : 0.f;
                dp[i][j] = p[i][j] * (dp[i][j] - sD[qi]);   // dS^T
            }
        store_patch_t(sP, p, ty, tx);                // sP[query][key]
        store_patch_t(sdS, dp, ty, tx);
        if (with_dq) store_patch(sdSk, dp, ty, tx);  // sdSk[key][query]
        __syncthreads();
        accumulate_pm<D>(dv, sP, sdO, ty, tx);       // dV += P^T dO
        accumulate_pm<D>(dk, sdS, sQ, ty, tx);       // dK += dS^T Q
        if (with_dq) atomic_add_ds_k<D>(dQ + qoff, sdSk, sK, m0, T, d, ty, tx, scale);   // dQ += dS K
    }
    store_rows<D>(dK + koff, dk, n0, S, d, ty, tx, scale);
    store_rows<D>(dV + koff, dv, n0, S, d, ty, tx, 1.f);
}

// dQ: grid = (N, ceil(T / 64)); one block owns a query tile and walks over the key tiles.
template <int D>
__global__ void __launch_bounds__(NTHREADS)
attn_bwd_dq(const float* __restrict__ Q, const float* __restrict__ K, const float* __restrict__ V,
            const unsigned char* __restrict__ kpm, const float* __restrict__ dO,
            const float* __restrict__ L, const float* __restrict__ Dv, float* __restrict__ dQ,
            int H, int T, int S, int d, float scale, int causal, int has_kpm) {
    constexpr int LD = D + 4, CPT = Cols<D>::CPT;
    extern __shared__ float smem[];
    float* sQ = smem;                  // (64 queries, LD)
    float* sdO = sQ + TILE * LD;       // (64 queries, LD)
    float* sK = sdO + TILE * LD;       // (64 keys, LD)
    float* sV = sK + TILE * LD;        // (64 keys, LD)
    float* sdSt = sV + TILE * LD;      // (64 keys, LDP): dS transposed

    const int n = blockIdx.x, m0 = (gridDim.y - 1 - blockIdx.y) * TILE;
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const size_t qoff = (size_t)n * T * d, koff = (size_t)n * S * d;
    const unsigned char* pad = has_kpm ? kpm + (size_t)(n / H) * S : nullptr;
    const float scale2 = scale * LOG2E;

    load_tile<D>(sQ, Q + qoff, m0, T, d, tid);
    load_tile<D>(sdO, dO + qoff, m0, T, d, tid);
    float l2[4], dv_row[4], dq[4][CPT];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int row = m0 + ty * 4 + i;
        l2[i] = row < T ? L[(size_t)n * T + row] * LOG2E : POS_INF;
        dv_row[i] = row < T ? Dv[(size_t)n * T + row] : 0.f;
#pragma unroll
        for (int jj = 0; jj < CPT; ++jj) dq[i][jj] = 0.f;
    }
    const int n_end = causal ? min(S, m0 + TILE) : S;
    for (int n0 = 0; n0 < n_end; n0 += TILE) {
        __syncthreads();
        load_tile<D>(sK, K + koff, n0, S, d, tid);
        load_tile<D>(sV, V + koff, n0, S, d, tid);
        __syncthreads();
        float p[4][4], ds[4][4];
        patch_abt<D>(p, sQ, sK, ty, tx);             // S = Q K^T
        patch_abt<D>(ds, sdO, sV, ty, tx);           // dP = dO V^T
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int row = m0 + ty * 4 + i;
                const bool ok = row < T && visible(row, n0 + tx + 16 * j, S, causal, pad);
                const float pij = ok ? exp2f(p[i][j] * scale2 - l2[i]) : 0.f;
                ds[i][j] = pij * (ds[i][j] - dv_row[i]);
            }
        store_patch_t(sdSt, ds, ty, tx);
        __syncthreads();
        accumulate_pm<D>(dq, sdSt, sK, ty, tx);      // dQ += dS K
    }
    store_rows<D>(dQ + qoff, dq, m0, T, d, ty, tx, scale);
}

#ifdef MINILLM_INSTANTIATE
// For the nvcc compile test (tests/test_kernel_source.py): instantiate every kernel so that
// `nvcc -DMINILLM_INSTANTIATE -c fused_attention.cu` type-checks and assembles all of them.
#define INSTANTIATE(D)                                                                                   \
    template __global__ void attn_fwd<D>(const float*, const float*, const float*, const unsigned char*, \
                                         float*, float*, int, int, int, int, float, int, int);           \
    template __global__ void attn_bwd_dkdv<D>(const float*, const float*, const float*,                   \
                                              const unsigned char*, const float*, const float*,           \
                                              const float*, float*, float*, float*, int, int, int, int,   \
                                              float, int, int, int);                                      \
    template __global__ void attn_bwd_dq<D>(const float*, const float*, const float*,                     \
                                            const unsigned char*, const float*, const float*,             \
                                            const float*, float*, int, int, int, int, float, int, int);
INSTANTIATE(32)
INSTANTIATE(64)
INSTANTIATE(128)
#endif
