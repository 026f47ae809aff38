"""Training and running the encoder-decoder: the word tokenizer, the padded batches, the paper's
schedule, translate() on padded batches, and a tiny model that learns to reverse words."""
import numpy as np
import pytest

from minillm import backend
from minillm.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from minillm.tokenizers import WordTokenizer, tokenizer_from_dict
from minillm.tokenizers.word import code_words
from minillm.training.optim import AdamW, noam_schedule
from minillm.training.seq2seq_task import BOS, EOS, PAD, Seq2SeqTask, translate
from minillm.training.trainer import TrainConfig, Trainer

WORDS = "ant bee cat dog eel fox gnu hen".split()


def reverse_pairs(n, seed):
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        pairs.append((" ".join(words), " ".join(reversed(words))))
    return pairs


def test_word_tokenizer_counts_words_and_maps_the_unseen_to_unk():
    tok = WordTokenizer.train(["b a b", "c b a"], min_count=2, special_tokens=(PAD, BOS, EOS))
    assert tok.words == ["<unk>", "b", "a"] and tok.vocab_size == 6
    assert tok.encode("a  b\tzebra") == [2, 1, 0] and tok.decode([2, 1, 3, 5]) == "a b <pad> </s>"
    again = tokenizer_from_dict(tok.to_dict())
    assert again.encode("a b c") == tok.encode("a b c") and again.special_tokens == tok.special_tokens


def test_code_words_cut_identifiers_into_the_subtokens_of_names():
    assert code_words("return self._readConfig(path, 10)") == [
        "return", "self", ".", "read", "config", "(", "path", ",", "10", ")"]
    tok = WordTokenizer.train(["x = read_file(f)", "read file"], split="code")
    assert tok.encode("read file") == [tok.token_to_id("read"), tok.token_to_id("file")]
    assert tokenizer_from_dict(tok.to_dict()).split == "code"


@pytest.mark.parametrize("words, specials, split, message", [
    (["a b", "<unk>"], (), "whitespace", "a word cannot hold whitespace, got 'a b'"),
    (["a"], (), "whitespace", "words must include '<unk>'"),
    (["<unk>"], (), "lines", "split must be 'whitespace' or 'code', got 'lines'"),
])
def test_word_tokenizer_refuses_bad_vocabularies(words, specials, split, message):
    with pytest.raises(ValueError, match=message):
        WordTokenizer(words, specials, split)


def tokenizer():
    return WordTokenizer.train(WORDS, special_tokens=(PAD, BOS, EOS))


def test_a_batch_shifts_the_target_right_and_pads_each_side():
    tok = tokenizer()
    task = Seq2SeqTask([("ant bee cat", "cat"), ("dog", "eel fox")], [("gnu", "hen")], tok, tok, 8, 8, 2)
    src, src_pad, tgt_in, tgt_out = task.collate(task.data["train"])
    bos, eos, pad, ant, cat = (tok.token_to_id(t) for t in (BOS, EOS, PAD, "ant", "cat"))
    assert src.tolist()[0][:1] == [ant] and src_pad.tolist() == [[False] * 3, [False, True, True]]
    assert tgt_in.tolist()[0] == [bos, cat, pad] and tgt_out.tolist()[0] == [cat, eos, -100]
    assert tgt_out[1, -1] == eos and task.tokens_per_batch == 4 + 5


def test_a_batch_holds_neighbours_in_source_length():
    tok = tokenizer()
    pairs = [(" ".join(["ant"] * n), "bee") for n in range(1, 41)]
    task = Seq2SeqTask(pairs, pairs[:2], tok, tok, 64, 4, 4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        src, pad, _, _ = task.batch("train", rng)
        lengths = (~pad).sum(axis=1)
        assert lengths.max() - lengths.min() == 3          # four consecutive lengths: no row mostly padding


def test_noam_schedule_is_the_papers_formula():
    d, warmup = 512, 4000
    peak = d ** -0.5 * warmup ** -0.5
    for step in (0, 99, 3999, 4000, 50000):
        n = step + 1
        assert noam_schedule(step, peak, warmup) == pytest.approx(d ** -0.5 * min(n ** -0.5, n * warmup ** -1.5))
    assert max(noam_schedule(s, peak, warmup) for s in range(8000)) == pytest.approx(peak)
    with pytest.raises(ValueError, match="schedule must be 'cosine' or 'noam', got 'step'"):
        TrainConfig(schedule="step")


def tiny_model(tok, **changes):
    backend.manual_seed(0)
    fields = dict(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, max_len=12, n_encoder_layer=1,
                  n_decoder_layer=1, n_head=2, d_model=32, dim_feedforward=64, share_embeddings=True)
    return Seq2SeqTransformer(Seq2SeqConfig(**{**fields, **changes}))


def test_translate_gives_a_padded_batch_the_outputs_of_each_source_alone():
    tok = tokenizer()
    model = tiny_model(tok).to(dtype=np.float64)
    texts = ["ant", "bee cat dog eel fox gnu", "hen hen"]
    for beam in (1, 3):
        together = translate(model, texts, tok, tok, beam, max_len=8)
        alone = [translate(model, [t], tok, tok, beam, max_len=8)[0] for t in texts]
        if beam == 1:
            assert together == alone
        else:
            assert [[h for h, _ in n] for n in together] == [[h for h, _ in n] for n in alone]
            np.testing.assert_allclose([[s for _, s in n] for n in together], [[s for _, s in n] for n in alone],
                                       atol=1e-9)


def test_translate_never_produces_the_suppressed_tokens():
    tok = tokenizer()
    model = tiny_model(tok)
    model.generator.bias.data[[tok.token_to_id(t) for t in ("<unk>", PAD, BOS)]] = 50.0   # the model's favourites
    for out in translate(model, ["ant bee"], tok, tok, 1, max_len=6) + \
            [h for h, _ in translate(model, ["ant bee"], tok, tok, 3, max_len=6)[0]]:
        assert not {"<unk>", PAD, BOS} & set(out.split())


def test_an_empty_source_is_refused_by_name():
    tok = tokenizer()
    with pytest.raises(ValueError, match="source 2 is empty"):
        translate(tiny_model(tok), ["ant", ""], tok, tok)


def test_a_tiny_model_learns_to_reverse_words_with_label_smoothing_and_the_noam_schedule(tmp_path):
    tok = tokenizer()
    model = tiny_model(tok)
    task = Seq2SeqTask(reverse_pairs(2000, 0), reverse_pairs(50, 1), tok, tok, 12, 8, 32, label_smoothing=0.1)
    config = TrainConfig(max_steps=500, lr=3e-3, warmup_steps=50, schedule="noam", eval_interval=500, eval_batches=2,
                         threads=1)
    Trainer(model, task, AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98)), config, tmp_path,
            {"kind": "seq2seq"}, quiet=True).run()
    test = reverse_pairs(40, 2)
    greedy = translate(model, [s for s, _ in test], tok, tok)
    beam = [n[0][0] for n in translate(model, [s for s, _ in test], tok, tok, beam=4)]
    for outputs in (greedy, beam):
        assert sum(o == t for o, (_, t) in zip(outputs, test)) >= 36, list(zip(outputs, test))
