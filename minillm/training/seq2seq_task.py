"""Training and using an encoder-decoder on (source text, target text) pairs.

A batch is B pairs of about the same source length, as in the paper (5.1): B neighbours in the
order of source length, from a random start, so little of the batch is padding. Each side is
padded to its longest in the batch:

    src     (B, S)  source ids, then <pad>                   src_pad (B, S)  True at the padding
    tgt_in  (B, T)  <s> y_1 ... y_n, then <pad>              what the decoder reads (shifted right)
    tgt_out (B, T)  y_1 ... y_n </s>, then -100              what it must predict (-100: not counted)

The loss is the cross-entropy of tgt_out with label smoothing eps (Szegedy et al. 2016; 0.1 in
"Attention Is All You Need"): each target's one-hot is mixed with eps of the uniform distribution,
which keeps the model from becoming sure of itself and improves what beam search finds. The
target's padding needs no mask in the decoder: the causal mask already hides every position after
a real one, and the padded positions' own predictions are not counted.

``translate`` runs the trained model on texts: greedy decoding, or beam search with n-best lists.
"""
import numpy as np

from .. import backend
from ..models.seq2seq_decoding import beam_search, generate
from ..nn import CrossEntropyLoss
from ..tokenizers.word import UNK

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


def encode_pairs(pairs, src_tokenizer, tgt_tokenizer, max_src_len, max_tgt_len):
    """[(source, target)] -> [(source ids, target ids)], the source cut to max_src_len ids and the
    target to max_tgt_len - 1 (room for </s>); a pair with an empty side is dropped."""
    out = []
    for source, target in pairs:
        s, t = src_tokenizer.encode(source)[:max_src_len], tgt_tokenizer.encode(target)[:max_tgt_len - 1]
        if s and t:
            out.append((s, t))
    return out


def pad_sources(sources, pad_id):
    """[ids] -> ids (B, S) padded with pad_id to the longest, and its padding mask (B, S)."""
    S = max(len(s) for s in sources)
    src = np.full((len(sources), S), pad_id, dtype=np.int64)
    for i, s in enumerate(sources):
        src[i, :len(s)] = s
    return src, src == pad_id


class Seq2SeqTask:
    """Random batches of encoded pairs, padded per batch; label-smoothed cross-entropy of the target."""

    def __init__(self, train_pairs, val_pairs, src_tokenizer, tgt_tokenizer, max_src_len, max_tgt_len, batch_size,
                 label_smoothing=0.1):
        self.src_pad = src_tokenizer.token_to_id(PAD)
        self.tgt_pad, self.bos, self.eos = (tgt_tokenizer.token_to_id(t) for t in (PAD, BOS, EOS))
        self.data = {}
        for split, pairs in (("train", train_pairs), ("val", val_pairs)):
            self.data[split] = encode_pairs(pairs, src_tokenizer, tgt_tokenizer, max_src_len, max_tgt_len)
            if len(self.data[split]) < 1:
                raise ValueError(f"the {split} split has no pair with a non-empty source and target")
        self.by_length = {split: np.argsort([len(s) for s, _ in pairs], kind="stable")
                          for split, pairs in self.data.items()}
        self.batch_size = batch_size
        self.loss_fn = CrossEntropyLoss(ignore_index=-100, label_smoothing=label_smoothing)
        self._tokens = 0

    @property
    def tokens_per_batch(self):
        """Source and target tokens (padding left out) of the last batch drawn."""
        return self._tokens

    def collate(self, pairs):
        """[(source ids, target ids)] -> src (B, S), src_pad (B, S), tgt_in (B, T), tgt_out (B, T)."""
        src, src_pad = pad_sources([s for s, _ in pairs], self.src_pad)
        T = max(len(t) for _, t in pairs) + 1
        tgt_in = np.full((len(pairs), T), self.tgt_pad, dtype=np.int64)
        tgt_out = np.full((len(pairs), T), -100, dtype=np.int64)
        for i, (_, t) in enumerate(pairs):
            tgt_in[i, :len(t) + 1] = [self.bos] + t
            tgt_out[i, :len(t) + 1] = t + [self.eos]
        self._tokens = int((~src_pad).sum() + (tgt_out != -100).sum())
        return tuple(backend.to_device(a) for a in (src, src_pad, tgt_in, tgt_out))

    def batch(self, split, rng):
        """batch_size pairs of the split that are neighbours in length, from a random start, collated
        (a split smaller than a batch: batch_size pairs drawn from it at random)."""
        pairs, order = self.data[split], self.by_length[split]
        if len(order) < self.batch_size:
            picked = order[rng.integers(0, len(order), size=self.batch_size)]
        else:
            start = int(rng.integers(0, len(order) - self.batch_size + 1))
            picked = order[start:start + self.batch_size]
        return self.collate([pairs[i] for i in picked])

    def loss(self, model, batch):
        """Mean label-smoothed cross-entropy of tgt_out from model(src, tgt_in, src_pad), as a float."""
        src, src_pad, tgt_in, tgt_out = batch
        return float(self.loss_fn(model(src, tgt_in, src_pad), tgt_out))

    def backward(self, model):
        """Run the model's backward from dL/dlogits (B, T, V_t) of the last loss()."""
        model.backward(self.loss_fn.backward())


def translate(model, texts, src_tokenizer, tgt_tokenizer, beam=1, length_penalty=1.0, max_len=None,
              batch_size=32):
    """Each text's output: with beam 1, greedy decoding, a list of strings; with beam > 1, beam
    search, a list of n-best lists [(text, score)] best first. A source longer than the model's
    positions is cut to them (check its length first to say so). The target's <pad>, <s> and
    <unk> are never produced."""
    pad, bos, eos = src_tokenizer.token_to_id(PAD), tgt_tokenizer.token_to_id(BOS), tgt_tokenizer.token_to_id(EOS)
    suppress = [tgt_tokenizer.token_to_id(PAD), bos] + ([tgt_tokenizer.token_to_id(UNK)] if UNK in getattr(
        tgt_tokenizer, "stoi", {}) else [])
    limit = model.config.max_len
    max_len = max_len or limit
    results = []
    for start in range(0, len(texts), batch_size):
        sources = [src_tokenizer.encode(t)[:limit] for t in texts[start:start + batch_size]]
        empty = next((start + i for i, s in enumerate(sources) if not s), None)
        if empty is not None:
            raise ValueError(f"source {empty + 1} is empty: there is nothing to translate")
        src, src_pad = (backend.to_device(a) for a in pad_sources(sources, pad))
        if beam == 1:
            outputs = generate(model, src, bos, eos, max_len, src_key_padding_mask=src_pad, suppress_tokens=suppress)
            results += [tgt_tokenizer.decode(ids) for ids in outputs]
        else:
            nbest = beam_search(model, src, bos, eos, max_len, beam, length_penalty, src_key_padding_mask=src_pad,
                                suppress_tokens=suppress)
            results += [[(tgt_tokenizer.decode(ids), score) for ids, score in hyps] for hyps in nbest]
    return results
