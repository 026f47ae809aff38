"""BERT: a bidirectional transformer encoder (Devlin et al. 2018), with its two heads.

Letters: B batch, T time (<= max_position), C hidden size, V vocabulary, K classes.

    x = LayerNorm(tok[idx] + pos[0..T-1] + seg[segments])    embeddings (B, T, C)
    x = Block_l(x) for l = 1..L                                post-LN blocks, exact GELU, every
                                                               token attends to every non-pad token
Masked-LM head:      logits = (LN(GELU(x W_t + b_t))) @ tok^T + b     (B, T, V), tied to the embedding
Classification head: logits = tanh(x[:, 0] W_p + b_p) W_c + b_c       (B, K), read from [CLS]
"""
from dataclasses import asdict, dataclass
from typing import NamedTuple

from .. import backend
from ..nn import (GELU, Dropout, Embedding, LayerNorm, LearnedPositionalEncoding, Linear, Module, ModuleList,
                  Parameter, TransformerBlock, init)
from ..nn.checks import check_sequences, check_token_ids
from ..nn.linear import linear_backward, linear_forward


@dataclass
class BertConfig:
    """The sizes of a BERT encoder: V = vocab_size, C = n_embd, 4C feed-forward, post-LN blocks (BERT's eps 1e-12)."""
    vocab_size: int = 256
    max_position: int = 128      # longest input
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    type_vocab_size: int = 2     # segments A / B
    dropout: float = 0.0
    layer_norm_eps: float = 1e-12
    num_labels: int = 2          # for the classification head


class BERT(Module):
    """The encoder. forward(idx, segments=None, key_padding_mask=None) -> hidden (B, T, C)."""

    def __init__(self, config):
        self.config = config
        C = config.n_embd
        self.tok = Embedding(config.vocab_size, C, std=0.02)
        self.pos = LearnedPositionalEncoding(C, config.max_position, std=0.02)
        self.seg = Embedding(config.type_vocab_size, C, std=0.02)
        self.emb_norm = LayerNorm(C, eps=config.layer_norm_eps)
        self.emb_drop = Dropout(config.dropout)
        self.layers = ModuleList(TransformerBlock(C, config.n_head, 4 * C, config.dropout, "gelu",
                                                  config.layer_norm_eps, norm_first=False)
                                 for _ in range(config.n_layer))

    def forward(self, idx, segments=None, key_padding_mask=None):
        """idx: (B, T) ids; segments: (B, T) in [0, type_vocab_size) or None; key_padding_mask: (B, T), True = pad."""
        check_token_ids("idx", idx, self.config.vocab_size, "BERT")
        check_sequences("idx", idx, "BERT")
        xp = backend.get_array_module(self.tok.weight.data)
        segments = xp.zeros(idx.shape, dtype=xp.int64) if segments is None else segments
        x = self.pos(self.tok(idx)) + self.seg(segments)            # (B, T, C)
        x = self.emb_drop(self.emb_norm(x))
        for layer in self.layers:
            x = layer(x, key_padding_mask=key_padding_mask)
        return x


    def backward(self, dx):
        """dx: (B, T, C), the gradient of the hidden states; adds every parameter's gradient, layers in reverse."""
        for layer in reversed(self.layers):
            dx = layer.backward(dx)
        dx = self.emb_norm.backward(self.emb_drop.backward(dx))
        self.seg.backward(dx)
        self.tok.backward(self.pos.backward(dx))


class BertForMaskedLM(Module):
    """Encoder + masked-LM head whose output matrix is the token embedding. -> logits (B, T, V)."""

    def __init__(self, config):
        self.config = config
        self.bert = BERT(config)
        self.transform = Linear(config.n_embd, config.n_embd)
        self.act = GELU("none")
        self.transform_norm = LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.decoder_bias = Parameter(init.zeros((config.vocab_size,)))

    def forward(self, idx, segments=None, key_padding_mask=None):
        """idx: (B, T) ids -> logits (B, T, V) = LayerNorm(GELU(W h + b)) @ tok.weight^T + decoder_bias."""
        h = self.bert(idx, segments, key_padding_mask)
        h = self.transform_norm(self.act(self.transform(h)))
        logits, self.cache = linear_forward(h, self.bert.tok.weight.data, self.decoder_bias.data)
        return logits



    def backward(self, dlogits):
        """dlogits: (B, T, V). The tied embedding gets the head's share here and the lookup's share in BERT.backward."""
        dh, dtok, dbias = linear_backward(dlogits, self.pop_cache())
        self.bert.tok.weight.grad += dtok                           # tied: first share of the embedding's gradient
        self.decoder_bias.grad += dbias
        dh = self.transform.backward(self.act.backward(self.transform_norm.backward(dh)))
        self.bert.backward(dh)

    def config_dict(self):
        """The config as a plain dict (saved in checkpoints as JSON)."""
        return asdict(self.config)


class ClassifierCache(NamedTuple):
    """The pooled [CLS] vector tanh(W_p h[:, 0] + b_p) (B, C) and the encoder output's shape."""
    pooled: object
    hidden_shape: tuple


class BertForSequenceClassification(Module):
    """Encoder + pooler (tanh Linear on [CLS]) + Linear classifier. -> logits (B, num_labels)."""

    def __init__(self, config):
        self.config = config
        self.bert = BERT(config)
        self.pooler = Linear(config.n_embd, config.n_embd)
        self.drop = Dropout(config.dropout)
        self.classifier = Linear(config.n_embd, config.num_labels)

    def forward(self, idx, segments=None, key_padding_mask=None):
        """idx: (B, T) ids (position 0 is [CLS]) -> logits (B, num_labels) = W_c tanh(W_p h[:, 0] + b_p) + b_c."""
        h = self.bert(idx, segments, key_padding_mask)               # (B, T, C)
        xp = backend.get_array_module(h)
        pooled = xp.tanh(self.pooler(h[:, 0]))                        # [CLS] -> (B, C)
        self.cache = ClassifierCache(pooled, h.shape)
        return self.classifier(self.drop(pooled))

    def backward(self, dlogits):
        """dlogits: (B, num_labels). Gradient flows back through the classifier, the pooler's tanh and [CLS] only."""
        pooled, shape = self.pop_cache()
        dpooled = self.drop.backward(self.classifier.backward(dlogits))
        dcls = self.pooler.backward(dpooled * (1.0 - pooled * pooled))   # tanh' = 1 - tanh^2
        xp = backend.get_array_module(dcls)
        dh = xp.zeros(shape, dtype=dcls.dtype)
        dh[:, 0] = dcls                                              # only [CLS] feeds the head
        self.bert.backward(dh)

    def config_dict(self):
        """The config as a plain dict (saved in checkpoints as JSON)."""
        return asdict(self.config)
