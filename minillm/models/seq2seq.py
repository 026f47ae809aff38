"""The encoder-decoder Transformer of "Attention Is All You Need" (Vaswani et al. 2017).

Letters: B batch, S source positions, T target positions, C = d_model, V_s / V_t vocabularies.

    memory = LN_enc(EncoderBlock_Le(... EncoderBlock_1(emb_s(src) sqrt(C) + P[:S])))      (B, S, C)
    y      = LN_dec(DecoderBlock_Ld(... DecoderBlock_1(emb_t(tgt_in) sqrt(C) + P[:T], memory)))   (B, T, C)
    logits = y W_out^T + b_out                                                             (B, T, V_t)

Encoder blocks attend over the source (padding masked), decoder blocks causally over the target
and across to every source position (nn/decoder_block.py). P is the sinusoidal table, or learned.
tgt_in is the target shifted right (it starts with a begin token), and the loss compares the
logits with the target itself. The middle, between the embeddings and the output layer, has the
parameters and names of torch.nn.Transformer (with its final encoder and decoder norms).
"""
import math
from dataclasses import asdict, dataclass

from ..nn import (Dropout, Embedding, LayerNorm, LearnedPositionalEncoding, Linear, Module, ModuleList,
                  SinusoidalPositionalEncoding, TransformerBlock)
from ..nn.checks import check_token_ids
from ..nn.decoder_block import DecoderBlock
from ..nn.linear import embedding_backward, embedding_forward


@dataclass
class Seq2SeqConfig:
    """The sizes of an encoder-decoder Transformer (the paper's base model: 6 + 6 layers, 8 heads, 512, 2048)."""
    src_vocab_size: int = 256
    tgt_vocab_size: int = 256
    max_len: int = 128             # longest source or target sequence
    n_encoder_layer: int = 3
    n_decoder_layer: int = 3
    n_head: int = 4
    d_model: int = 128
    dim_feedforward: int = 512
    dropout: float = 0.0
    norm_first: bool = False       # post-LN as in the paper and torch.nn.Transformer; True: pre-LN
    share_embeddings: bool = False  # one table for source and target (their vocabularies must then match)
    learned_positions: bool = False


class Seq2SeqTransformer(Module):
    """forward(src (B, S), tgt_in (B, T), src_key_padding_mask, tgt_key_padding_mask) -> logits (B, T, V_t);
    backward(dlogits) fills every gradient, the encoder's through the cross-attentions."""

    def __init__(self, config):
        c = self.config = config
        if c.share_embeddings and c.src_vocab_size != c.tgt_vocab_size:
            raise ValueError(f"Seq2SeqConfig: share_embeddings needs one vocabulary, got src_vocab_size "
                             f"{c.src_vocab_size} and tgt_vocab_size {c.tgt_vocab_size}")
        self.src_embed = Embedding(c.src_vocab_size, c.d_model, std=c.d_model ** -0.5)
        self.tgt_embed = None if c.share_embeddings else Embedding(c.tgt_vocab_size, c.d_model, std=c.d_model ** -0.5)
        make_pos = ((lambda: LearnedPositionalEncoding(c.d_model, c.max_len)) if c.learned_positions
                    else (lambda: SinusoidalPositionalEncoding(c.d_model, c.max_len)))
        self.src_pos, self.tgt_pos = make_pos(), make_pos()
        self.src_drop, self.tgt_drop = Dropout(c.dropout), Dropout(c.dropout)
        self.encoder_layers = ModuleList(TransformerBlock(c.d_model, c.n_head, c.dim_feedforward, c.dropout, "relu",
                                                          norm_first=c.norm_first) for _ in range(c.n_encoder_layer))
        self.encoder_norm = LayerNorm(c.d_model)
        self.decoder_layers = ModuleList(DecoderBlock(c.d_model, c.n_head, c.dim_feedforward, c.dropout, "relu",
                                                      norm_first=c.norm_first) for _ in range(c.n_decoder_layer))
        self.decoder_norm = LayerNorm(c.d_model)
        self.generator = Linear(c.d_model, c.tgt_vocab_size)
        self.scale = math.sqrt(c.d_model)

    def _lookup_target(self, tgt_in):
        """The target's token vectors (B, T, C). A shared table is used twice, so the target's lookup
        keeps its own cache here rather than overwriting the source lookup's in the Embedding."""
        if self.tgt_embed is not None:
            return self.tgt_embed(tgt_in)
        out, self.tgt_lookup_cache = embedding_forward(tgt_in, self.src_embed.weight.data)
        return out

    def _lookup_target_backward(self, dout):
        if self.tgt_embed is not None:
            return self.tgt_embed.backward(dout)
        cache, self.tgt_lookup_cache = self.tgt_lookup_cache, None
        self.src_embed.weight.grad += embedding_backward(dout, cache)      # the shared table's second share

    # ------------------------------------------------------------------ the two halves
    def encode(self, src, src_key_padding_mask=None):
        """src: (B, S) ids -> memory (B, S, C)."""
        check_token_ids("src", src, self.config.src_vocab_size, "Seq2SeqTransformer")
        x = self.src_drop(self.src_pos(self.src_embed(src) * self.scale))
        for layer in self.encoder_layers:
            x = layer(x, key_padding_mask=src_key_padding_mask)
        return self.encoder_norm(x)

    def decode(self, tgt_in, memory, src_key_padding_mask=None, tgt_key_padding_mask=None):
        """tgt_in: (B, T) ids, memory: (B, S, C) -> logits (B, T, V_t)."""
        check_token_ids("tgt_in", tgt_in, self.config.tgt_vocab_size, "Seq2SeqTransformer")
        y = self.tgt_drop(self.tgt_pos(self._lookup_target(tgt_in) * self.scale))
        for layer in self.decoder_layers:
            y = layer(y, memory, tgt_key_padding_mask, src_key_padding_mask)
        return self.generator(self.decoder_norm(y))

    def forward(self, src, tgt_in, src_key_padding_mask=None, tgt_key_padding_mask=None):
        """src: (B, S), tgt_in: (B, T) ids -> logits (B, T, V_t)."""
        return self.decode(tgt_in, self.encode(src, src_key_padding_mask), src_key_padding_mask,
                           tgt_key_padding_mask)

    def backward(self, dlogits):
        """dlogits: (B, T, V_t). The decoder first; every block's dmemory is summed, then the encoder."""
        dy = self.decoder_norm.backward(self.generator.backward(dlogits))
        dmemory = 0
        for layer in reversed(self.decoder_layers):
            dy, dm = layer.backward(dy)
            dmemory = dmemory + dm
        self._lookup_target_backward(self.tgt_pos.backward(self.tgt_drop.backward(dy)) * self.scale)
        dx = self.encoder_norm.backward(dmemory)
        for layer in reversed(self.encoder_layers):
            dx = layer.backward(dx)
        self.src_embed.backward(self.src_pos.backward(self.src_drop.backward(dx)) * self.scale)

    def config_dict(self):
        """The config as a plain dict (saved in checkpoints as JSON)."""
        return asdict(self.config)
