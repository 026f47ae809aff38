"""The LSTM language model of the article's part 2: Embedding -> LSTM -> Linear.

Letters: B batch, T time, V vocabulary, E embedding size, H hidden size.

    e = Embedding(idx)          (B, T) -> (B, T, E)
    h = LSTM(e)                 (B, T, E) -> (B, T, H)
    logits = Linear(h)          (B, T, H) -> (B, T, V)
    loss = CrossEntropy(logits, next tokens)

Unlike GPT, the context is not a window: the LSTM's state (h, c) carries everything
seen so far, so generation passes the state on and needs no cache.
"""
from dataclasses import asdict, dataclass

import numpy as np

from .. import backend
from ..kernels import dispatch
from ..nn import LSTM, Dropout, Embedding, Linear, Module
from ..nn.checks import check_sequences, check_token_ids
from .sampling import check_generate_options, check_sampling_options, sample_next


@dataclass
class LSTMConfig:
    """The sizes of the LSTM language model: Embedding(V, E) -> LSTM(E, H) x num_layers -> Linear(H, V)."""
    vocab_size: int = 256
    embed_dim: int = 128      # E
    hidden_size: int = 256    # H
    num_layers: int = 1
    dropout: float = 0.0      # on the embeddings and the LSTM output
    block_size: int = 64      # training window (BPTT length); generation is not limited by it


class LSTMLM(Module):
    """forward(idx (B, T)) -> logits (B, T, V); backward(dlogits)."""

    def __init__(self, config):
        self.config = config
        self.embedding = Embedding(config.vocab_size, config.embed_dim)
        self.drop_in = Dropout(config.dropout)
        self.lstm = LSTM(config.embed_dim, config.hidden_size, config.num_layers, batch_first=True,
                         dropout=config.dropout)
        self.drop_out = Dropout(config.dropout)
        self.fc = Linear(config.hidden_size, config.vocab_size)

    def forward(self, idx, state=None):
        """idx: (B, T) ids, state (h, c): (num_layers, B, H) or None -> logits (B, T, V).
        The final (h, c) is kept in self.state, so generation can go on from it."""
        check_token_ids("idx", idx, self.config.vocab_size, "LSTMLM")
        check_sequences("idx", idx, "LSTMLM")
        kernel = dispatch.find("embedding_lstm", idx, self)
        if kernel is not None:                      # the engine: the same sums, with E folded into W_ih
            h, self.state, self.cache = kernel.forward(idx, self, state)
            return self.fc(self.drop_out(h))
        self.cache = None
        x = self.drop_in(self.embedding(idx))
        h, self.state = self.lstm(x, state)         # the final (h, c), for generation
        return self.fc(self.drop_out(h))

    def backward(self, dlogits):
        """dlogits: (B, T, V). Adds every parameter's gradient: fc, then the LSTM through time, then the embedding."""
        dh = self.drop_out.backward(self.fc.backward(dlogits))
        if self.cache is not None:                  # the engine's forward made it
            return dispatch.backward("embedding_lstm", dh, self.pop_cache(), self)
        dx = self.lstm.backward(dh)
        self.embedding.backward(self.drop_in.backward(dx))

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, do_sample=True, seed=None):
        """Feed the prompt once, then one token at a time, carrying the LSTM state. Returns (B, T + new) ids."""
        check_sequences("idx", idx, "LSTMLM.generate")
        check_generate_options(max_new_tokens, seed)
        check_sampling_options(temperature, top_k, top_p)
        was_training = self.training
        self.eval()
        rng = np.random.default_rng(seed)
        idx = backend.to_numpy(idx).astype(np.int64)
        logits = self.forward(backend.to_device(idx))[:, -1]
        for _ in range(max_new_tokens):
            nxt = sample_next(backend.to_numpy(logits), temperature, top_k, top_p, do_sample, rng)
            idx = np.concatenate([idx, nxt[:, None]], axis=1)
            logits = self.forward(backend.to_device(nxt[:, None]), self.state)[:, -1]
        self.train(was_training)
        self.cache = None
        return idx

    def config_dict(self):
        """The config as a plain dict (saved in checkpoints as JSON)."""
        return asdict(self.config)
