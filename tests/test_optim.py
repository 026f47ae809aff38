"""Optimizers match torch.optim for 10 steps in float64; clipping and the schedule do what they say."""
import math

import numpy as np
import pytest

from minillm import nn
from minillm.models import GPT, GPTConfig
from minillm.training.optim import SGD, Adam, AdamW, clip_grad_norm, lr_schedule, param_groups


def _run(make_ours, make_torch, torch, steps=10):
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    grads = [[rng.standard_normal(w.shape) for w in w0] for _ in range(steps)]
    ps = [nn.Parameter(w.copy()) for w in w0]
    tps = [torch.tensor(w.copy(), requires_grad=True) for w in w0]
    opt, topt = make_ours(ps), make_torch(tps)
    for g in grads:
        for p, tp, gi in zip(ps, tps, g):
            p.grad[...] = gi
            tp.grad = torch.tensor(gi)
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum_wd", "adam", "adam_wd", "adamw"])
def test_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    o = torch.optim
    cases = {
        "sgd": (lambda p: SGD(p, lr=0.1), lambda p: o.SGD(p, lr=0.1)),
        "sgd_momentum_wd": (lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
                            lambda p: o.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01)),
        "adam": (lambda p: Adam(p, lr=0.01), lambda p: o.Adam(p, lr=0.01)),
        "adam_wd": (lambda p: Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
                    lambda p: o.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
        "adamw": (lambda p: AdamW(p, lr=0.01, weight_decay=0.1), lambda p: o.AdamW(p, lr=0.01, weight_decay=0.1)),
    }
    _run(*cases[name], torch)


def test_param_groups_do_not_decay_biases_norms_embeddings():
    m = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    decay, no_decay = param_groups(m, 0.1)
    names = {id(p): n for n, p in m.named_parameters()}
    assert {names[id(p)] for p in decay["params"]} == {"h.0.self_attn.in_proj_weight", "h.0.self_attn.out_proj.weight",
                                             "h.0.ff.linear1.weight", "h.0.ff.linear2.weight"}
    assert "wte.weight" in {names[id(p)] for p in no_decay["params"]} and no_decay["weight_decay"] == 0.0


def test_clip_grad_norm():
    ps = [nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(4))]
    ps[0].grad[...] = [3, 0, 0]
    ps[1].grad[...] = [0, 4, 0, 0]
    assert clip_grad_norm(ps, 10.0) == pytest.approx(5.0)
    assert ps[0].grad[0] == 3                                   # under the limit: untouched
    clip_grad_norm(ps, 1.0)
    assert math.sqrt(sum(float((p.grad ** 2).sum()) for p in ps)) == pytest.approx(1.0, rel=1e-5)


def test_warmup_then_cosine():
    lrs = [lr_schedule(s, 1.0, 10, 110, 0.1) for s in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.55)                       # halfway through the cosine
    assert lrs[110] == pytest.approx(0.1) and all(a >= b for a, b in zip(lrs[9:110], lrs[10:110]))
