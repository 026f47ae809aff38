"""The encoder-decoder Transformer: the decoder block and the whole model gradient-checked in float64
(post-LN, pre-LN with learned positions, shared embeddings, source padding), and the middle of
the model against torch.nn.Transformer with the same weights."""
import re

import numpy as np
import pytest

from minillm import backend
from minillm.gradcheck import TOLERANCE, check_module
from minillm.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from minillm.nn.decoder_block import DecoderBlock

RNG = np.random.default_rng(0)
SRC, TGT = RNG.integers(0, 11, (2, 5)), RNG.integers(0, 11, (2, 4))
PAD = np.zeros((2, 5), dtype=bool)
PAD[1, 3:] = True


def tiny(**changes):
    backend.manual_seed(0)
    fields = dict(src_vocab_size=11, tgt_vocab_size=11, max_len=8, n_encoder_layer=2, n_decoder_layer=2, n_head=2,
                  d_model=8, dim_feedforward=16)
    return Seq2SeqTransformer(Seq2SeqConfig(**{**fields, **changes})).to(dtype=np.float64)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_gradients_reach_x_and_the_memory(norm_first):
    backend.manual_seed(0)
    block = DecoderBlock(8, 2, 16, norm_first=norm_first).to(dtype=np.float64)
    x, memory = np.random.default_rng(1).standard_normal((2, 4, 8)), np.random.default_rng(2).standard_normal((2, 5, 8))
    errors = check_module(block, x, memory, backward=lambda m, d: m.backward(d[0]), memory_key_padding_mask=PAD)
    assert {"input0", "input1"} <= set(errors) and max(errors.values()) < TOLERANCE


@pytest.mark.parametrize("changes", [{}, {"norm_first": True, "learned_positions": True}, {"share_embeddings": True}],
                         ids=["post-LN", "pre-LN, learned positions", "shared embeddings"])
def test_whole_model_gradient_including_the_encoder_through_cross_attention(changes):
    model = tiny(**changes)
    errors = check_module(model, SRC, TGT, backward=lambda m, d: (m.backward(d[0]),), src_key_padding_mask=PAD)
    assert max(errors.values()) < TOLERANCE
    assert any(name.startswith("encoder_layers.0.") for name in errors)


def test_a_shared_table_needs_one_vocabulary():
    with pytest.raises(ValueError, match="share_embeddings needs one vocabulary, got src_vocab_size 11 and "
                                         "tgt_vocab_size 9"):
        tiny(share_embeddings=True, tgt_vocab_size=9)


def test_the_middle_matches_torch_nn_transformer():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.Transformer(8, 2, 2, 2, 16, dropout=0.0, batch_first=True, dtype=torch.float64).eval()
    model = tiny()

    def ours_name(name):
        for theirs, mine in (("encoder.layers.", "encoder_layers."), ("decoder.layers.", "decoder_layers."),
                             ("encoder.norm.", "encoder_norm."), ("decoder.norm.", "decoder_norm.")):
            name = name.replace(theirs, mine)
        return re.sub(r"\.(linear[12])\.", r".ff.\1.", name)

    state = model.state_dict()
    state.update({ours_name(k): v.numpy() for k, v in ref.state_dict().items()})
    model.load_state_dict(state)
    xs, xt = np.random.default_rng(3).standard_normal((2, 5, 8)), np.random.default_rng(4).standard_normal((2, 4, 8))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    with torch.no_grad():
        want = ref(torch.tensor(xs), torch.tensor(xt), tgt_mask=mask, tgt_is_causal=True,
                   src_key_padding_mask=torch.tensor(PAD), memory_key_padding_mask=torch.tensor(PAD)).numpy()
    x = xs
    for layer in model.encoder_layers:
        x = layer(x, key_padding_mask=PAD)
    memory, y = model.encoder_norm(x), xt
    for layer in model.decoder_layers:
        y = layer(y, memory, None, PAD)
    np.testing.assert_allclose(model.decoder_norm(y), want, atol=1e-12)


def greedy_without_cache(model, src, bos, eos, max_len):
    """Greedy decoding by running the whole model on the growing target at every step."""
    outputs = []
    for row in src:
        tokens = [bos]
        while len(tokens) < max_len:
            token = int(model(row[None], np.array([tokens]))[0, -1].argmax())
            if token == eos:
                break
            tokens.append(token)
        outputs.append(tokens[1:])
    return outputs


@pytest.mark.parametrize("changes", [{}, {"norm_first": True, "learned_positions": True}, {"share_embeddings": True}],
                         ids=["post-LN", "pre-LN, learned positions", "shared embeddings"])
def test_cached_greedy_equals_uncached_greedy_and_beam_width_one(changes):
    from minillm.models.seq2seq_decoding import beam_search, generate
    model = tiny(max_len=12, **changes)
    src = np.random.default_rng(5).integers(3, 11, (3, 6))
    greedy = generate(model, src, 1, 2, 12)
    assert greedy == greedy_without_cache(model, src, 1, 2, 12)
    assert [nbest[0][0] for nbest in beam_search(model, src, 1, 2, 12, beam=1, early_stopping=True)] == greedy


def test_beam_search_returns_sorted_n_best_lists_scored_as_the_model_scores_them():
    from minillm.models.seq2seq_decoding import beam_search
    model = tiny(max_len=12)
    src = np.random.default_rng(6).integers(3, 11, (2, 5))
    for row, nbest in zip(src, beam_search(model, src, 1, 2, 12, beam=4, length_penalty=0.0)):
        assert len(nbest) == 4 and [s for _, s in nbest] == sorted((s for _, s in nbest), reverse=True)
        for ids, score in nbest:     # alpha = 0: log p(ids, eos | source); without eos if the length limit ended it
            want = sequence_log_prob(model, row[None], ids, with_eos=len(ids) < 11)
            assert score == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_searching_on_after_beam_finished_hypotheses_never_finds_a_worse_best(alpha):
    from minillm.models.seq2seq_decoding import beam_search
    model = tiny(max_len=10)
    src = np.random.default_rng(7).integers(3, 11, (6, 5))
    exact = beam_search(model, src, 1, 2, 10, beam=3, length_penalty=alpha)
    early = beam_search(model, src, 1, 2, 10, beam=3, length_penalty=alpha, early_stopping=True)
    for a, b in zip(exact, early):
        assert a[0][1] >= b[0][1] - 1e-12 and len(a) == 3


def test_a_long_output_that_wins_after_the_first_finished_ones_is_found():
    """Every step: token 3 with p = 0.88, </s> (id 2) with 0.12. Three outputs end early, but with
    alpha = 1 the longest, nine 3s cut by the length limit, scores best."""
    from minillm.models.seq2seq_decoding import beam_search
    model = tiny(max_len=10)
    model.generator.weight.data[:] = 0.0
    model.generator.bias.data[:] = 0.0
    model.generator.bias.data[[2, 3]] = [8.0, 10.0]
    src = np.array([[4, 5, 6]])
    exact = beam_search(model, src, 1, 2, 10, beam=3, length_penalty=1.0)[0]
    early = beam_search(model, src, 1, 2, 10, beam=3, length_penalty=1.0, early_stopping=True)[0]
    assert exact[0][0] == [3] * 9 and len(early[0][0]) < 9 and exact[0][1] > early[0][1]


def sequence_log_prob(model, src, ids, bos=1, eos=2, with_eos=True):
    logits = model(src, np.array([[bos] + ids]))[0][:len(ids) + with_eos]
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(
        -1, keepdims=True)
    return float(sum(logp[i, t] for i, t in enumerate(ids + [eos] * with_eos)))


@pytest.mark.parametrize("beam, words", [(0, "beam width must be an integer in [1, 11]"), (12, "got 12")])
def test_bad_beam_widths_are_refused(beam, words):
    from minillm.models.seq2seq_decoding import beam_search
    with pytest.raises(ValueError, match=re.escape(words)):
        beam_search(tiny(), SRC, 1, 2, 8, beam=beam)


@pytest.mark.parametrize("share, src_vocab, tgt_vocab", [(True, 500, 500), (False, 500, 300), (False, 300, 500)])
def test_the_size_check_counts_the_encoder_decoders_matrices(share, src_vocab, tgt_vocab):
    from minillm.models.config_checks import parameter_count
    config = Seq2SeqConfig(src_vocab, tgt_vocab, 16, 2, 2, 4, 64, 256, share_embeddings=share)
    actual = Seq2SeqTransformer(config).num_parameters()
    assert 0.97 * actual <= parameter_count(config) <= actual        # the matrices; biases and norms left out
