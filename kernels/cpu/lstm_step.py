"""One LSTM step's gate arithmetic as compiled loops (Numba), forward and backward.

The lesson's step (minillm/nn/lstm.py) after the products: a = W_hh h + (W_ih x + b) holds the
four gates' pre-activations, (4H, B) in columns. Each loop reads and writes every value of the
step once. fused_lstm.py calls them after each step's BLAS product; lstm_parallel.py on each
part's share of the units. tanh is vector_tanh's.
"""
from .jit import compiled
from .vector_tanh import tanh


@compiled(one_thread=True)
def step_forward(a, ax, c, k, gates, c_next, tanh_c, h_next):
    """One step on flat (4H*B) a = W_hh h and ax = W_ih x + b, and flat (H*B) c; k = [1/2, 1].

    i, f, o = (1 + tanh(z/2)) / 2,  g = tanh(z),  c' = f c + i g,  h' = o tanh(c')
    """
    n = c.shape[0]
    half = k[0]
    for e in range(n):
        i = half + half * tanh(half * (a[e] + ax[e]))
        f = half + half * tanh(half * (a[n + e] + ax[n + e]))
        g = tanh(a[2 * n + e] + ax[2 * n + e])
        o = half + half * tanh(half * (a[3 * n + e] + ax[3 * n + e]))
        cn = f * c[e] + i * g
        tc = tanh(cn)
        gates[e], gates[n + e], gates[2 * n + e], gates[3 * n + e] = i, f, g, o
        c_next[e] = cn
        tanh_c[e] = tc
        h_next[e] = o * tc


@compiled(one_thread=True)
def cells_backward(dh, dc, gates, c, tanh_c, k, da):
    """One step backward: dh (H, B) the gradient of h', dc (H, B) that of c', which becomes that of
    c; gates (4H, B) and c, tanh_c (H, B) are the step's. Writes the step's da (4H, B). k = [1/2, 1].

    dc' = dc + dh o (1 - tanh(c')^2);  da_i = dc' g i (1 - i),  da_f = dc' c f (1 - f),
    da_g = dc' i (1 - g^2),  da_o = dh tanh(c') o (1 - o);  dc = dc' f
    """
    H, B = dh.shape
    one = k[1]
    for j in range(H):                       # the rows of the four gates of unit j, B values each
        for b in range(B):
            i, f, g, o = gates[j, b], gates[H + j, b], gates[2 * H + j, b], gates[3 * H + j, b]
            tc, d = tanh_c[j, b], dh[j, b]
            dct = dc[j, b] + d * o * (one - tc * tc)
            da[j, b] = dct * g * i * (one - i)
            da[H + j, b] = dct * c[j, b] * f * (one - f)
            da[2 * H + j, b] = dct * i * (one - g * g)
            da[3 * H + j, b] = d * tc * o * (one - o)
            dc[j, b] = dct * f
