"""Decoding an encoder-decoder Transformer: greedy, sampling and beam search.

The source is encoded once, and each decoder block's cross-attention keys and values are
projected from it once; the target's own keys and values grow in a KV cache by one position per
step. So a step costs one target position, whatever the length so far.

Beam search keeps the ``beam`` best partial outputs of every input. At each step each of them is
extended by every token, scored by its total log-probability, and the best 2 beam candidates are
sorted: one ending with end_id becomes a finished hypothesis, scored with Wu et al. (2016)'s length
penalty, sum log p / ((5 + length) / 6)^alpha (alpha = 0: the plain sum, which favours short
outputs); the best ``beam`` others carry on. An input is done when it has ``beam`` finished
hypotheses and none of its live ones can still beat the worst of them (with early_stopping: as
soon as it has ``beam`` finished ones), or at the length limit. With beam = 1 this is greedy
decoding.

``suppress_tokens`` are ids never produced (their log-probability is set to -inf before the
choice), as in transformers' generate: the padding, the begin token, and "<unk>", an answer
that always scores zero.
"""
import numpy as np

from .. import backend
from ..nn.activations import log_softmax_forward
from ..nn.attention import KVCache
from ..nn.positional import positional_forward
from .sampling import sample_next


class DecoderState:
    """The caches of one decoding run: memory, each block's projected source and target KV cache."""

    def __init__(self, model, src, src_key_padding_mask, rows, max_len, suppress_tokens=()):
        self.model, self.src_pad = model, src_key_padding_mask
        self.suppress = list(suppress_tokens)
        memory = model.encode(src, src_key_padding_mask)
        if rows != memory.shape[0]:                        # beam search: each input's memory once per beam
            repeats = rows // memory.shape[0]
            memory = memory.repeat(repeats, axis=0)
            self.src_pad = None if src_key_padding_mask is None else src_key_padding_mask.repeat(repeats, axis=0)
        self.memory_kv = [layer.multihead_attn.project_memory(memory) for layer in model.decoder_layers]
        c, xp = model.config, backend.get_array_module(memory)
        self.caches = [KVCache(rows, c.n_head, max_len, c.d_model // c.n_head, memory.dtype, xp)
                       for _ in model.decoder_layers]

    def step(self, tokens):
        """tokens: (rows,) the newest target token of each row -> log-probabilities (rows, V_t) of the next."""
        m = self.model
        start = self.caches[0].length
        table = m.tgt_pos.table if hasattr(m.tgt_pos, "table") else m.tgt_pos.weight.data   # fixed or learned
        y, _ = positional_forward(m._lookup_target(backend.to_device(tokens[:, None])) * m.scale,
                                  table.astype(m.generator.weight.data.dtype, copy=False), start)
        for layer, cache, memory_kv in zip(m.decoder_layers, self.caches, self.memory_kv):
            y = layer(y, None, None, self.src_pad, kv_cache=cache, memory_kv=memory_kv)
        logits = m.generator(m.decoder_norm(y))[:, -1]
        logp = backend.to_numpy(log_softmax_forward(logits.astype(np.float64))[0])
        logp[:, self.suppress] = -np.inf
        return logp

    def reorder(self, rows):
        """Keep the rows ``rows`` (beam search: the beams that survived, in their new order)."""
        for cache in self.caches:
            cache.k, cache.v = cache.k[rows], cache.v[rows]


def _check(model, src, max_len, beam):
    if src.ndim != 2 or src.shape[1] == 0:
        raise ValueError(f"the source must be (B, S) ids with S >= 1, got shape {tuple(src.shape)}")
    if not 1 <= max_len <= model.config.max_len:
        raise ValueError(f"max_len must lie in [1, {model.config.max_len}] (the model's positions), got {max_len}")
    if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= model.config.tgt_vocab_size:
        raise ValueError(f"the beam width must be an integer in [1, {model.config.tgt_vocab_size}] (the target "
                         f"vocabulary), got {beam!r}")


def generate(model, src, bos_id, eos_id, max_len, src_key_padding_mask=None, do_sample=False, temperature=1.0,
             top_k=None, top_p=None, seed=None, suppress_tokens=()):
    """Greedy (or sampled) outputs, one per source row: a list of id lists, without bos and eos."""
    _check(model, src, max_len, 1)
    model.eval()
    state = DecoderState(model, src, src_key_padding_mask, src.shape[0], max_len, suppress_tokens)
    rng = np.random.default_rng(seed)
    tokens, outputs = np.full(src.shape[0], bos_id), [[] for _ in range(src.shape[0])]
    done = np.zeros(src.shape[0], dtype=bool)
    for _ in range(max_len - 1):
        logp = state.step(tokens)
        tokens = sample_next(logp, temperature, top_k, top_p, do_sample, rng)
        for i, t in enumerate(tokens):
            if not done[i]:
                done[i] = t == eos_id
                if not done[i]:
                    outputs[i].append(int(t))
        if done.all():
            break
    return outputs


def beam_search(model, src, bos_id, eos_id, max_len, beam=4, length_penalty=1.0, src_key_padding_mask=None,
                suppress_tokens=(), early_stopping=False):
    """The n-best outputs of each source row: [[(ids, score), ...] best first], ``beam`` of them each."""
    _check(model, src, max_len, beam)
    model.eval()
    B, K = src.shape[0], beam
    state = DecoderState(model, src, src_key_padding_mask, B * K, max_len, suppress_tokens)
    tokens = np.full(B * K, bos_id)
    scores = np.tile(np.array([0.0] + [-np.inf] * (K - 1)), B)          # one live beam per input at first
    seqs = [[] for _ in range(B * K)]
    finished, done = [[] for _ in range(B)], [False] * B
    penalty = lambda n: ((5 + n) / 6) ** length_penalty                 # noqa: E731  (Wu et al. 2016)
    for step in range(max_len - 1):
        logp = state.step(tokens)                                       # (B K, V)
        V = logp.shape[1]
        total = (scores[:, None] + logp).reshape(B, K * V)
        keep_rows, keep_tokens, keep_scores = [], [], []
        for b in range(B):
            live = []
            for flat in [] if done[b] else np.argsort(-total[b], kind="stable")[:2 * K]:
                row, token, score = b * K + flat // V, int(flat % V), float(total[b, flat])
                if not np.isfinite(score) or len(live) == K:
                    break                                               # sorted: the rest are worse
                if token == eos_id:
                    _add_finished(finished[b], K, seqs[row], score / penalty(len(seqs[row]) + 1))
                else:
                    live.append((row, token, score))
            if live and not done[b]:
                # the best a live output can still reach: its log-probability only falls as it grows,
                # and is divided at most by the largest penalty of the lengths left (the penalty is
                # monotonic in the length, so the largest is at one end)
                best = live[0][2] / max(penalty(step + 1), penalty(max_len))
                done[b] = len(finished[b]) == K and (early_stopping or finished[b][-1][1] >= best)
            done[b] = done[b] or not live
            live += [(b * K, bos_id, -np.inf)] * (K - len(live))         # dead slots keep the shapes
            for row, token, score in live:
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(score if not done[b] else -np.inf)
        seqs = [seqs[r] + [t] for r, t in zip(keep_rows, keep_tokens)]
        state.reorder(np.array(keep_rows))
        tokens, scores = np.array(keep_tokens), np.array(keep_scores)
        if all(done):
            break
    for b in range(B):                                                   # the length limit: the live ones count
        for k in range(K):
            if np.isfinite(scores[b * K + k]):
                _add_finished(finished[b], K, seqs[b * K + k], scores[b * K + k] / penalty(len(seqs[b * K + k])))
    return finished


def _add_finished(hyps, K, ids, score):
    """Put (ids, score) into the K best finished outputs ``hyps``, kept sorted best first."""
    if len(hyps) < K or score > hyps[-1][1]:
        hyps.append((ids, score))
        hyps.sort(key=lambda h: -h[1])
        del hyps[K:]
