"""PyTorch parity: the same weights (loaded by name from the torch module's state_dict) must give
the same outputs and the same gradients for inputs and every parameter.

float64 agrees to 1e-10, float32 to 1e-4. Skipped when torch is not installed.
"""
import numpy as np
import pytest

from minillm import nn
from minillm.nn import attention
from minillm.nn.transformer import torch_key

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = [(np.float64, torch.float64, 1e-10), (np.float32, torch.float32, 1e-4)]


def close(name, ours, theirs, tol):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=tol, atol=tol, err_msg=f"{name} differs from PyTorch")


def t(a, requires_grad=True):
    return torch.tensor(a, requires_grad=requires_grad)


def load_from_torch(ours, tmod, npdt, key=lambda k: k):
    ours.to(dtype=npdt)
    ours.load_state_dict({key(k): v.detach().numpy() for k, v in tmod.state_dict().items()})


def check_module_grads(ours, tmod, tol, key=lambda k: k):
    named = dict(ours.named_parameters())
    for k, p in tmod.named_parameters():
        close(f"grad of {k}", named[key(k)].grad, p.grad, tol)


@pytest.fixture(params=DTYPES, ids=["float64", "float32"])
def dt(request):
    return request.param


def randn(*shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_linear(dt):
    npdt, tdt, tol = dt
    tm = torch.nn.Linear(5, 3).to(tdt)
    m = nn.Linear(5, 3)
    load_from_torch(m, tm, npdt)
    x, dy = randn(2, 4, 5, dtype=npdt), randn(2, 4, 3, dtype=npdt, seed=1)
    tx = t(x)
    ty = tm(tx)
    ty.backward(torch.tensor(dy))
    close("output", m(x), ty, tol)
    close("dx", m.backward(dy), tx.grad, tol)
    check_module_grads(m, tm, tol)


def test_embedding(dt):
    npdt, tdt, tol = dt
    tm = torch.nn.Embedding(9, 4, padding_idx=1).to(tdt)
    m = nn.Embedding(9, 4, padding_idx=1)
    load_from_torch(m, tm, npdt)
    idx = np.array([[1, 2, 2, 8], [0, 1, 5, 2]])
    dy = randn(2, 4, 4, dtype=npdt)
    ty = tm(torch.tensor(idx))
    ty.backward(torch.tensor(dy))
    close("output", m(idx), ty, tol)
    m.backward(dy)
    check_module_grads(m, tm, tol)


def test_layernorm(dt):
    npdt, tdt, tol = dt
    tm = torch.nn.LayerNorm(6).to(tdt)
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
    m = nn.LayerNorm(6)
    load_from_torch(m, tm, npdt)
    x, dy = randn(3, 2, 6, dtype=npdt), randn(3, 2, 6, dtype=npdt, seed=1)
    tx = t(x)
    ty = tm(tx)
    ty.backward(torch.tensor(dy))
    close("output", m(x), ty, tol)
    close("dx", m.backward(dy), tx.grad, tol)
    check_module_grads(m, tm, tol)


@pytest.mark.parametrize("name", ["relu", "gelu_tanh", "gelu", "softmax", "log_softmax"])
def test_activations(dt, name):
    npdt, tdt, tol = dt
    ours = {"relu": nn.ReLU(), "gelu_tanh": nn.GELU("tanh"), "gelu": nn.GELU("none"),
            "softmax": nn.Softmax(-1), "log_softmax": nn.LogSoftmax(-1)}[name]
    theirs = {"relu": F.relu, "gelu_tanh": lambda a: F.gelu(a, approximate="tanh"), "gelu": F.gelu,
              "softmax": lambda a: F.softmax(a, -1), "log_softmax": lambda a: F.log_softmax(a, -1)}[name]
    x, dy = randn(4, 7, dtype=npdt), randn(4, 7, dtype=npdt, seed=1)
    tx = t(x)
    ty = theirs(tx)
    ty.backward(torch.tensor(dy))
    close("output", ours(x), ty, tol)
    close("dx", ours.backward(dy), tx.grad, tol)


@pytest.mark.parametrize("mask", ["none", "causal", "bool", "float"])
def test_scaled_dot_product_attention(dt, mask):
    npdt, tdt, tol = dt
    B, H, T, S, D = 2, 3, 5, 7, 4
    q, k, v = randn(B, H, T, D, dtype=npdt), randn(B, H, S, D, dtype=npdt, seed=1), randn(B, H, S, D, dtype=npdt, seed=2)
    dy = randn(B, H, T, D, dtype=npdt, seed=3)
    kw = {}
    if mask == "causal":
        kw["is_causal"] = True
    elif mask == "bool":
        m = np.random.default_rng(4).random((B, 1, T, S)) > 0.4
        m[..., 0] = True
        kw["attn_mask"] = m
    elif mask == "float":
        kw["attn_mask"] = randn(1, H, T, S, dtype=npdt, seed=5)
    tq, tk, tv = t(q), t(k), t(v)
    tkw = {k_: (torch.tensor(v_) if isinstance(v_, np.ndarray) else v_) for k_, v_ in kw.items()}
    ty = F.scaled_dot_product_attention(tq, tk, tv, **tkw)
    ty.backward(torch.tensor(dy))
    out, cache = attention.scaled_dot_product_attention(q, k, v, **kw)
    close("output", out, ty, tol)
    for name, ours, theirs in zip(("dq", "dk", "dv"), attention.scaled_dot_product_attention_backward(dy, cache),
                                  (tq.grad, tk.grad, tv.grad)):
        close(name, ours, theirs, tol)


@pytest.mark.parametrize("case", ["self", "causal", "padding", "float_mask", "cross"])
def test_multihead_attention(dt, case):
    npdt, tdt, tol = dt
    B, T, S, C, H = 2, 5, 6, 8, 2
    tm = torch.nn.MultiheadAttention(C, H, batch_first=True).to(tdt)
    with torch.no_grad():
        tm.in_proj_bias.normal_()
        tm.out_proj.bias.normal_()
    m = nn.MultiHeadAttention(C, H)
    load_from_torch(m, tm, npdt)
    x, mem, dy = randn(B, T, C, dtype=npdt), randn(B, S, C, dtype=npdt, seed=1), randn(B, T, C, dtype=npdt, seed=2)
    ours_kw, torch_kw = {}, {}
    if case == "causal":
        ours_kw["is_causal"] = True
        torch_kw["attn_mask"] = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    if case == "padding":
        pad = np.array([[False] * T, [False, False, True, True, True]])
        ours_kw["key_padding_mask"], torch_kw["key_padding_mask"] = pad, torch.tensor(pad)
    if case == "float_mask":
        fm = randn(T, T, dtype=npdt, seed=3)
        ours_kw["attn_mask"], torch_kw["attn_mask"] = fm, torch.tensor(fm)
    tx, tmem = t(x), t(mem)
    src = tmem if case == "cross" else tx
    ty, _ = tm(tx, src, src, need_weights=False, **torch_kw)
    ty.backward(torch.tensor(dy))
    y = m(x, mem, **ours_kw) if case == "cross" else m(x, **ours_kw)
    close("output", y, ty, tol)
    grads = m.backward(dy)
    if case == "cross":
        close("dx", grads[0], tx.grad, tol)
        close("dmemory", grads[1], tmem.grad, tol)
    else:
        close("dx", grads, tx.grad, tol)
    check_module_grads(m, tm, tol)


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_block(dt, norm_first):
    npdt, tdt, tol = dt
    B, T, C, H = 2, 5, 8, 2
    act = (lambda a: F.gelu(a, approximate="tanh")) if norm_first else F.gelu
    tm = torch.nn.TransformerEncoderLayer(C, H, 16, dropout=0.0, activation=act, batch_first=True,
                                          norm_first=norm_first).to(tdt)
    m = nn.TransformerBlock(C, H, 16, activation="gelu_tanh" if norm_first else "gelu", norm_first=norm_first)
    load_from_torch(m, tm, npdt, torch_key)
    x, dy = randn(B, T, C, dtype=npdt), randn(B, T, C, dtype=npdt, seed=1)
    pad = np.array([[False] * T, [False, False, False, True, True]])
    tx = t(x)
    ty = tm(tx, src_key_padding_mask=torch.tensor(pad))
    ty.backward(torch.tensor(dy))
    close("output", m(x, key_padding_mask=pad), ty, tol)
    close("dx", m.backward(dy), tx.grad, tol)
    check_module_grads(m, tm, tol, torch_key)


def test_lstm_cell(dt):
    npdt, tdt, tol = dt
    tm = torch.nn.LSTMCell(3, 4).to(tdt)
    m = nn.LSTMCell(3, 4)
    load_from_torch(m, tm, npdt)
    x, h, c = randn(2, 3, dtype=npdt), randn(2, 4, dtype=npdt, seed=1), randn(2, 4, dtype=npdt, seed=2)
    dh, dc = randn(2, 4, dtype=npdt, seed=3), randn(2, 4, dtype=npdt, seed=4)
    tx, th, tc = t(x), t(h), t(c)
    th1, tc1 = tm(tx, (th, tc))
    (th1 * torch.tensor(dh) + tc1 * torch.tensor(dc)).sum().backward()
    h1, c1 = m(x, (h, c))
    close("h'", h1, th1, tol)
    close("c'", c1, tc1, tol)
    dx, (dh0, dc0) = m.backward(dh, dc)
    for name, a, b in (("dx", dx, tx.grad), ("dh", dh0, th.grad), ("dc", dc0, tc.grad)):
        close(name, a, b, tol)
    check_module_grads(m, tm, tol)


@pytest.mark.parametrize("batch_first", [True, False])
def test_lstm_two_layers_with_state(dt, batch_first):
    npdt, tdt, tol = dt
    L, B, T, I, H = 2, 3, 5, 4, 6
    tm = torch.nn.LSTM(I, H, num_layers=L, batch_first=batch_first).to(tdt)
    m = nn.LSTM(I, H, num_layers=L, batch_first=batch_first)
    load_from_torch(m, tm, npdt)
    shape = (B, T, I) if batch_first else (T, B, I)
    x, h0, c0 = randn(*shape, dtype=npdt), randn(L, B, H, dtype=npdt, seed=1), randn(L, B, H, dtype=npdt, seed=2)
    dy = randn(*shape[:2], H, dtype=npdt, seed=3)
    dh, dc = randn(L, B, H, dtype=npdt, seed=4), randn(L, B, H, dtype=npdt, seed=5)
    tx, th0, tc0 = t(x), t(h0), t(c0)
    ty, (thn, tcn) = tm(tx, (th0, tc0))
    (ty * torch.tensor(dy)).sum().add((thn * torch.tensor(dh)).sum()).add((tcn * torch.tensor(dc)).sum()).backward()
    y, (hn, cn) = m(x, (h0, c0))
    for name, a, b in (("y", y, ty), ("h_n", hn, thn), ("c_n", cn, tcn)):
        close(name, a, b, tol)
    close("dx", m.backward(dy, (dh, dc)), tx.grad, tol)
    close("dh0", m.dstate0[0], th0.grad, tol)
    close("dc0", m.dstate0[1], tc0.grad, tol)
    check_module_grads(m, tm, tol)


@pytest.mark.parametrize("opts", [{}, {"ignore_index": 1}, {"label_smoothing": 0.1},
                                  {"ignore_index": 3, "label_smoothing": 0.3}])
def test_cross_entropy(dt, opts):
    npdt, tdt, tol = dt
    logits = randn(2, 4, 6, dtype=npdt)
    targets = np.array([[0, 1, 3, 5], [1, 1, 2, 4]])
    tl = t(logits)
    tloss = torch.nn.CrossEntropyLoss(**opts)(tl.reshape(-1, 6), torch.tensor(targets).reshape(-1))
    tloss.backward()
    m = nn.CrossEntropyLoss(**opts)
    close("loss", m(logits, targets), tloss, tol)
    close("dlogits", m.backward(), tl.grad, tol)
