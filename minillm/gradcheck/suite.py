"""The table printed by ``minillm gradcheck``: every layer, each option, checked in float64.

Each case builds a tiny float64 instance, runs forward and backward with a random
upstream gradient and reports the largest relative error over its inputs and
parameters (see minillm/gradcheck/finite_differences.py for the method).
"""
import numpy as np

from .. import backend, nn
from ..nn.decoder_block import DecoderBlock
from .finite_differences import TOLERANCE, check_module


def _x(*shape, seed=0):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape))


def _lstm_backward(m, d):
    return m.backward(d[0], (d[1], d[2]))


def _cases():
    """(layer, options, module factory, inputs, keyword arguments, custom backward or None)."""
    pad = np.array([[False] * 5, [False, False, False, True, True]])
    drop_mask = np.random.default_rng(1).random((2, 3, 6)) >= 0.3
    cases = [
        ("Linear", "bias", lambda: nn.Linear(6, 4), (_x(2, 3, 6),), {}, None),
        ("Linear", "no bias", lambda: nn.Linear(6, 4, bias=False), (_x(2, 3, 6),), {}, None),
        ("Embedding", "repeated ids", lambda: nn.Embedding(9, 4), (np.array([[1, 2, 2], [8, 0, 1]]),), {},
         lambda m, d: (m.backward(d[0]),)),
        ("LayerNorm", "", lambda: nn.LayerNorm(6), (_x(2, 3, 6),), {}, None),
        ("ReLU", "", lambda: nn.ReLU(), (_x(2, 3, 6) + 0.05,), {}, None),
        ("GELU", "tanh", lambda: nn.GELU("tanh"), (_x(2, 3, 6),), {}, None),
        ("GELU", "exact", lambda: nn.GELU("none"), (_x(2, 3, 6),), {}, None),
        ("Softmax", "", lambda: nn.Softmax(-1), (_x(2, 3, 6),), {}, None),
        ("LogSoftmax", "", lambda: nn.LogSoftmax(-1), (_x(2, 3, 6),), {}, None),
        ("Dropout", "p=0.3, fixed mask", lambda: _fixed_dropout(drop_mask), (_x(2, 3, 6),), {}, None),
        ("SinusoidalPositionalEncoding", "", lambda: nn.SinusoidalPositionalEncoding(6, 10), (_x(2, 3, 6),), {}, None),
        ("LearnedPositionalEncoding", "", lambda: nn.LearnedPositionalEncoding(6, 10), (_x(2, 3, 6),), {}, None),
        ("MultiHeadAttention", "self", lambda: nn.MultiHeadAttention(8, 2), (_x(2, 5, 8),), {}, None),
        ("MultiHeadAttention", "causal", lambda: nn.MultiHeadAttention(8, 2), (_x(2, 5, 8),), {"is_causal": True}, None),
        ("MultiHeadAttention", "key padding", lambda: nn.MultiHeadAttention(8, 2), (_x(2, 5, 8),),
         {"key_padding_mask": pad}, None),
        ("MultiHeadAttention", "bool mask", lambda: nn.MultiHeadAttention(8, 2), (_x(2, 5, 8),),
         {"attn_mask": np.triu(np.ones((5, 5), bool), 1)}, None),
        ("MultiHeadAttention", "float mask", lambda: nn.MultiHeadAttention(8, 2), (_x(2, 5, 8),),
         {"attn_mask": _x(5, 5, seed=3)}, None),
        ("MultiHeadAttention", "cross", lambda: nn.MultiHeadAttention(8, 2), (_x(2, 3, 8), _x(2, 5, 8, seed=1)), {},
         lambda m, d: m.backward(d[0])),
        ("FeedForward", "gelu_tanh", lambda: nn.FeedForward(6, 12), (_x(2, 3, 6),), {}, None),
        ("RMSNorm", "", lambda: nn.RMSNorm(6), (_x(2, 3, 6),), {}, None),
        ("SiLU", "", lambda: nn.SiLU(), (_x(2, 3, 6),), {}, None),
        ("SwiGLU", "", lambda: nn.SwiGLU(6, 10), (_x(2, 3, 6),), {}, None),
        ("GroupedQueryAttention", "4 heads, 2 kv heads", lambda: nn.GroupedQueryAttention(8, 4, 2), (_x(2, 5, 8),),
         {}, None),
        ("GroupedQueryAttention", "multi-query, interleaved", lambda: nn.GroupedQueryAttention(
            8, 4, 1, rope_interleaved=True), (_x(2, 5, 8),), {}, None),
        ("TransformerBlock", "pre-LN, causal", lambda: nn.TransformerBlock(8, 2), (_x(2, 5, 8),),
         {"is_causal": True}, None),
        ("TransformerBlock", "post-LN, padding", lambda: nn.TransformerBlock(8, 2, norm_first=False, activation="gelu"),
         (_x(2, 5, 8),), {"key_padding_mask": pad}, None),
        ("DecoderBlock", "post-LN, memory padding", lambda: DecoderBlock(8, 2, 16),
         (_x(2, 3, 8), _x(2, 5, 8, seed=1)), {"memory_key_padding_mask": pad}, lambda m, d: m.backward(d[0])),
        ("LSTMCell", "with state", lambda: nn.LSTMCell(3, 4), (_x(2, 3), (_x(2, 4, seed=1), _x(2, 4, seed=2))), {},
         lambda m, d: (m.backward(d[0], d[1])[0],)),
        ("LSTM", "1 layer", lambda: nn.LSTM(3, 5), (_x(2, 4, 3),), {}, _lstm_backward),
        ("LSTM", "2 layers, initial state", lambda: nn.LSTM(3, 5, num_layers=2),
         (_x(2, 4, 3), (_x(2, 2, 5, seed=1), _x(2, 2, 5, seed=2))), {}, _lstm_backward),
    ]
    return cases


def _fixed_dropout(mask):
    m = nn.Dropout(0.3)
    m.fixed_mask = backend.to_device(mask)
    return m


def _cross_entropy_rows():
    from .finite_differences import check_arrays
    rows = []
    targets = np.array([[0, 1, 2, 3], [4, 2, 2, 1]])
    for opts, label in (({}, ""), ({"ignore_index": 2}, "ignore_index"), ({"label_smoothing": 0.1}, "label smoothing")):
        loss_fn, logits = nn.CrossEntropyLoss(**opts), _x(2, 4, 5)
        loss_fn(logits, targets)
        dlogits = loss_fn.backward()
        err = check_arrays(lambda: float(loss_fn(logits, targets)), {"logits": logits}, {"logits": dlogits})
        rows.append(("CrossEntropyLoss", label, max(err.values())))
    return rows


def model_cases():
    """Whole-model checks on tiny configs (weight tying included): GPT, BERT (both heads), LSTM LM, Llama,
    the encoder-decoder."""
    from ..models import (GPT, LSTMLM, BertConfig, BertForMaskedLM, BertForSequenceClassification, GPTConfig,
                         Llama, LlamaConfig, LSTMConfig, Seq2SeqConfig, Seq2SeqTransformer)
    idx = np.random.default_rng(0).integers(0, 11, (2, 6))
    pad = np.zeros((2, 6), dtype=bool)
    pad[1, 4:] = True
    bert = BertConfig(vocab_size=11, max_position=8, n_layer=2, n_head=2, n_embd=8, num_labels=3)
    ids_only = lambda m, d: (m.backward(d[0]),)
    return [
        ("GPT", "2 layers, tied head", lambda: GPT(GPTConfig(11, 8, 2, 2, 8)), (idx,), {}, ids_only),
        ("BertForMaskedLM", "2 layers, padding", lambda: BertForMaskedLM(bert), (idx,), {"key_padding_mask": pad},
         ids_only),
        ("BertForSequenceClassification", "2 layers, padding", lambda: BertForSequenceClassification(bert), (idx,),
         {"key_padding_mask": pad}, ids_only),
        ("LSTMLM", "2 layers", lambda: LSTMLM(LSTMConfig(11, 5, 6, 2)), (idx,), {}, ids_only),
        ("Llama", "2 layers, GQA, tied", lambda: Llama(LlamaConfig(11, 8, 2, 4, 2, 8, 12)), (idx,), {}, ids_only),
        ("Seq2SeqTransformer", "1+1 layers, shared, padding", lambda: Seq2SeqTransformer(Seq2SeqConfig(
            11, 11, 8, 1, 1, 2, 8, 16, share_embeddings=True)), (idx, idx[:, :4]), {"src_key_padding_mask": pad},
         ids_only),
    ]


def run_suite(extra_cases=()):
    """Returns rows (layer, options, max relative error) for every case, in float64."""
    rows = []
    for name, opts, make, inputs, kwargs, bwd in list(_cases()) + list(extra_cases):
        module = make().to(dtype=np.float64)
        errors = check_module(module, *inputs, backward=bwd, **kwargs)
        rows.append((name, opts, max(errors.values())))
    return rows + _cross_entropy_rows()


def format_table(rows):
    """The rows as an aligned text table with PASS/FAIL against the tolerance."""
    lines = [f"{'layer':<30} {'options':<26} {'max rel. error':>14}  result",
             f"{'-' * 30} {'-' * 26} {'-' * 14}  ------"]
    for name, opts, err in rows:
        lines.append(f"{name:<30} {opts:<26} {err:>14.2e}  {'PASS' if err <= TOLERANCE else 'FAIL'}")
    failed = sum(err > TOLERANCE for _, _, err in rows)
    lines.append(f"{len(rows) - failed} passed, {failed} failed (tolerance {TOLERANCE:g}, float64, central differences)")
    return "\n".join(lines)
