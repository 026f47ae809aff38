"""Tests of the model, optimizer, tokenizer and sampling exercises: gpt_backward, adamw, bpe_merge, top_p.

Each ``tests_<exercise>(student)`` returns [(test name, test)] (see grade_layers.py).
"""
from functools import partial

import numpy as np

from .. import backend, nn
from ..models import GPT, GPTConfig, sampling
from ..nn.linear import linear_backward
from ..tokenizers import ByteBPETokenizer, bpe
from ..training import optim
from .diagnosis import Wrong, call, expect
from .harness import method_case, normal, plugged, rng

TIED = ("a forgotten branch of a tied weight: wte is both the token lookup and the output head, so its gradient "
        "is the sum of both shares (the head's dW and the lookup's scatter-add)")


# ============================================================================ GPT backward
def tests_gpt_backward(student):
    cases = [("2 layers, n_embd 8", GPTConfig(11, 8, 2, 2, 8)),
             ("1 layer, no biases", GPTConfig(7, 6, 1, 1, 4, bias=False))]
    tests = [(f"GPT.backward: {label}", partial(_gpt, student, config, seed))
             for seed, (label, config) in enumerate(cases)]
    return tests + [("three AdamW steps of a GPT with this backward", partial(_gpt_training, student))]


def _without_head_share(model, dlogits):
    dx, _, _ = linear_backward(dlogits, model.pop_cache())
    _blocks_down(model, dx)


def _without_lookup_share(model, dlogits):
    dx, dwte, _ = linear_backward(dlogits, model.pop_cache())
    model.wte.weight.grad += dwte
    model.wte.pop_cache()
    _blocks_down(model, dx, lookup=False)


def _blocks_down(model, dx, lookup=True):
    dx = model.ln_f.backward(dx)
    for block in reversed(model.h):
        dx = block.backward(dx)
    dx = model.wpe.backward(model.drop.backward(dx))
    if lookup:
        model.wte.backward(dx)


def _gpt(student, config, seed):
    idx = rng(seed).integers(0, config.vocab_size, (2, config.block_size - 1))
    return method_case(lambda: GPT(config), (idx,), student.backward, GPT.backward,
                       [(TIED, _without_head_share), (TIED, _without_lookup_share)], seed=seed)


def _gpt_training(student):
    def train(backward):
        backend.manual_seed(0)
        model = GPT(GPTConfig(11, 8, 2, 2, 8)).to(dtype=np.float64)
        opt = optim.AdamW(optim.param_groups(model, 0.1), lr=1e-2)
        loss_fn = nn.CrossEntropyLoss()
        for step in range(3):
            idx = rng(step).integers(0, 11, (2, 8))
            model.zero_grad()
            loss_fn(model(idx[:, :-1]), idx[:, 1:])
            backward(model, loss_fn.backward())
            opt.step()
        return model.state_dict()
    got, want = train(student.backward), train(GPT.backward)
    return max(expect(f"{name} after 3 steps", got[name], want[name]) for name in want)


# ============================================================================ AdamW
def tests_adamw(student):
    cases = [("AdamW, lr 0.01, weight_decay 0.1", optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
             ("Adam, lr 0.01, weight_decay 0.1 (L2 in the gradient)", optim.Adam, {"lr": 0.01, "weight_decay": 0.1}),
             ("AdamW, betas (0.8, 0.99), eps 1e-6, no decay", optim.AdamW,
              {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.0})]
    tests = [(f"update: 5 steps of {label}", partial(_adam, student, kind, options, seed))
             for seed, (label, kind, options) in enumerate(cases)]
    return tests + [("AdamW with parameter groups inside a GPT training loop", partial(_adam_in_training, student))]


def _bias_correction_free(self, p, group, state):
    """The update with m and v used as they are: what forgetting the bias correction computes."""
    b1, b2 = group["betas"]
    if "exp_avg" not in state:
        state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p.data), np.zeros_like(p.data)
    g = p.grad
    if group["weight_decay"] and self.decoupled:
        p.data *= 1 - group["lr"] * group["weight_decay"]
    elif group["weight_decay"]:
        g = g + group["weight_decay"] * p.data
    state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
    state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
    p.data -= group["lr"] * state["exp_avg"] / (np.sqrt(state["exp_avg_sq"]) + group["eps"])


def _trajectory(kind, update, options, seed, steps=5):
    """The parameters after each of ``steps`` updates from fixed gradients, with Adam.update replaced."""
    optimizer_class = type("Graded", (kind,), {"update": update})
    params = [nn.Parameter(normal(seed, 3, 4)), nn.Parameter(normal(seed + 1, 4))]
    opt = optimizer_class(params, **options)
    history = []
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = normal(seed + 10 * step + i + 100, *p.data.shape)
        opt.step()
        history.append(np.concatenate([p.data.ravel() for p in params]))
    return np.stack(history)


def _adam(student, kind, options, seed):
    got = _trajectory(kind, student.update, options, seed)
    want = _trajectory(kind, optim.Adam.update, options, seed)
    other = optim.Adam if kind is optim.AdamW else optim.AdamW
    variants = [("the bias correction is missing: m and v start at 0, so divide them by 1 - beta1^t and "
                 "1 - beta2^t (t = self.step_count)", _trajectory(kind, _bias_correction_free, options, seed))]
    if options["weight_decay"]:
        variants.append(("AdamW decays the weights directly, p -= lr * weight_decay * p, instead of adding "
                         "weight_decay * p to the gradient (that is Adam's L2 term)" if kind is optim.AdamW else
                         "Adam adds weight_decay * p to the gradient (L2); shrinking p directly is AdamW "
                         "(self.decoupled tells which)", _trajectory(other, optim.Adam.update, options, seed)))
    for step in range(len(want)):
        expect(f"the parameters after step {step + 1}", got[step], want[step],
               variants=[(hint, wrong[step]) for hint, wrong in variants])
    return 0.0


def _adam_in_training(student):
    def train(update):
        backend.manual_seed(0)
        model = GPT(GPTConfig(11, 8, 1, 2, 8)).to(dtype=np.float64)
        opt = type("Graded", (optim.AdamW,), {"update": update})(optim.param_groups(model, 0.1), lr=1e-2)
        loss_fn = nn.CrossEntropyLoss()
        for step in range(3):
            idx = rng(step).integers(0, 11, (2, 8))
            model.zero_grad()
            loss_fn(model(idx[:, :-1]), idx[:, 1:])
            model.backward(loss_fn.backward())
            opt.step()
        return model.state_dict()
    got, want = train(student.update), train(optim.Adam.update)
    return max(expect(f"{name} after 3 steps", got[name], want[name]) for name in want)


# ============================================================================ one BPE merge
def tests_bpe_merge(student):
    cases = [([1, 2, 3, 1, 2], (1, 2), 300), ([5, 5, 5], (5, 5), 301), ([5, 5, 5, 5], (5, 5), 301),
             ([2, 1, 2, 1], (1, 2), 302), ([3, 4], (4, 3), 303), ([7], (7, 7), 304), ([], (1, 2), 305)]
    tests = [(f"merge_pair({ids}, {pair}, {new})", partial(_merge, student, ids, pair, new))
             for ids, pair, new in cases]
    return tests + [("inside ByteBPETokenizer.train and encode", partial(_bpe_layer, student))]


def _merge_overlapping(ids, pair, new_id):
    """Every position where the pair starts, overlaps included: what advancing by one after a merge gives."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            if i + 2 < len(ids) and (ids[i + 1], ids[i + 2]) == pair:
                i += 1
                continue
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge(student, ids, pair, new_id):
    ids = list(ids)
    got = call(student.merge_pair, (ids, pair, new_id), ("ids", "pair", "new_id"))
    want = bpe.merge_pair(ids, pair, new_id)
    if not isinstance(got, (list, tuple)) or [int(t) for t in got] != want:
        hint = ""
        if isinstance(got, (list, tuple)) and list(got) == _merge_overlapping(ids, pair, new_id):
            hint = ": occurrences do not overlap; after a merge, skip both tokens and go on left to right"
        raise Wrong(f"merge_pair({ids}, {pair}, {new_id}) returned {got!r}, expected {want}{hint}")
    return 0.0


def _bpe_layer(student):
    text = "the cat sat on the mat; the rat ate the hat. " * 20 + "aaaa bbbb aaab"
    with plugged(bpe, merge_pair=student.merge_pair):
        mine = ByteBPETokenizer.train(text, 280)
        ids = mine.encode(text[:80])
    library = ByteBPETokenizer.train(text, 280)
    if mine.to_dict() != library.to_dict():
        raise Wrong("ByteBPETokenizer.train learned other merges with this merge_pair than with the library's")
    expect("encode(text)", np.array(ids), np.array(library.encode(text[:80])))
    return 0.0


# ============================================================================ top-p sampling
def tests_top_p(student):
    cases = [("top_p=0.9", (2, 6), None, 0.9), ("top_p=0.5, one dominant token", (3, 5), None, 0.5),
             ("top_k=2", (2, 6), 2, None), ("top_k=3 and top_p=0.8", (2, 7), 3, 0.8), ("top_p=1.0", (1, 4), None, 1.0),
             ("top_k=9 >= V", (1, 4), 9, None)]
    tests = [(f"filter_logits: {label}", partial(_filter, student, shape, k, p, seed))
             for seed, (label, shape, k, p) in enumerate(cases)]
    return tests + [("inside sample_next: 20 draws with a fixed seed", partial(_sample_layer, student))]


def _filter(student, shape, top_k, top_p, seed):
    logits = normal(seed, *shape) * 2
    logits[:, 0] += 4 if shape == (3, 5) else 0
    got = np.asarray(call(student.filter_logits, (logits, top_k, top_p), ("logits", "top_k", "top_p")))
    want = sampling.filter_logits(logits, top_k, top_p)
    variants = []
    if top_p is not None and top_k is None:
        order = np.argsort(-logits, axis=1)
        p = np.exp(np.take_along_axis(logits, order, 1) - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        drop = np.zeros(shape, bool)
        np.put_along_axis(drop, order, np.cumsum(p, 1) >= top_p, 1)
        variants.append(("keep the token that crosses top_p: a token is dropped only when the tokens before it "
                         "already reach top_p (cumulative - p >= top_p)", drop))
    if got.shape == want.shape:
        expect("which logits are -inf", np.isneginf(got), np.isneginf(want), variants=variants)
    return expect("the logits kept", np.where(np.isneginf(got), 0.0, got), np.where(np.isneginf(want), 0.0, want))


def _sample_layer(student):
    logits = normal(9, 4, 8) * 2
    with plugged(sampling, filter_logits=student.filter_logits):
        got = [sampling.sample_next(logits, 0.8, None, 0.9, rng=np.random.default_rng(i)) for i in range(20)]
    want = [sampling.sample_next(logits, 0.8, None, 0.9, rng=np.random.default_rng(i)) for i in range(20)]
    return expect("the sampled ids", np.array(got), np.array(want))

