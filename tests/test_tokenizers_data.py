"""Tokenizers round-trip any text; the data helpers split, batch and mask as documented."""
import re

import numpy as np
import pytest

from minillm.training import data
from minillm.tokenizers import ByteBPETokenizer, CharTokenizer, load_tokenizer, save_tokenizer

MIXED = "Hello, wörld! 你好，世界。 😀👍🏽 it's  tabs\tand\nnewlines  x=1_000 ¿qué?"
TRAIN = ("the quick brown fox jumps over the lazy dog. " * 20) + "数据 数据 模型 模型 " * 10


def test_bpe_round_trip_unicode_and_specials(tmp_path):
    tok = ByteBPETokenizer.train(TRAIN, 256 + 40 + 2, special_tokens=("<|endoftext|>", "[MASK]"))
    assert tok.vocab_size == 298 and len(tok.merges) == 40
    for text in (MIXED, "", " ", "数据模型", TRAIN):
        assert tok.decode(tok.encode(text)) == text
    ids = tok.encode("a<|endoftext|>b", allowed_special=True)
    assert tok.special_tokens["<|endoftext|>"] in ids
    assert tok.special_tokens["<|endoftext|>"] not in tok.encode("a<|endoftext|>b")   # plain text by default
    save_tokenizer(tok, tmp_path / "tok.json")
    again = load_tokenizer(tmp_path / "tok.json")
    assert again.encode(MIXED) == tok.encode(MIXED)


def test_bpe_merges_compress_frequent_text():
    tok = ByteBPETokenizer.train(TRAIN, 256 + 50)
    assert len(tok.encode(TRAIN)) < 0.5 * len(TRAIN.encode("utf-8"))
    assert len(tok.encode("the")) == 1                          # a frequent word became one token


def _slow_bpe_merges(text, n_merges):
    """The definition, with nothing kept between merges: count every adjacent pair from scratch,
    merge the most frequent (ties: the smallest ids), repeat."""
    from minillm.tokenizers.bpe import SPLIT_PATTERN, merge_pair
    words = [list(w.encode("utf-8")) for w in SPLIT_PATTERN.findall(text)]
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w in words:
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts or max(counts.values()) < 2:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        words = [merge_pair(w, best, 255 + len(merges)) for w in words]
    return merges


@pytest.mark.parametrize("text", [TRAIN, MIXED * 3 + "aaaa aaa aa abab ababab " * 4], ids=["repeated", "mixed"])
def test_bpe_training_equals_recounting_from_scratch(text):
    # train() keeps counts per distinct word, updates only the words holding the merged pair, and
    # finds the top pair in a heap; all of that must give exactly the merges of the plain definition.
    n = 80
    assert ByteBPETokenizer.train(text, 256 + n).merges == _slow_bpe_merges(text, n)


def test_bpe_token_to_id_for_specials_and_single_tokens():
    tok = ByteBPETokenizer.train("the cat the hat the bat " * 20, 270, special_tokens=("[CLS]", "[MASK]"))
    assert tok.token_to_id("[MASK]") == tok.vocab_size - 1
    assert tok.decode([tok.token_to_id("a")]) == "a"
    with pytest.raises(KeyError, match="not a single token"):
        tok.token_to_id("the cat the hat")


def test_bpe_vocab_size_too_small():
    with pytest.raises(ValueError, match="vocab_size must be at least 256 \\+ 1 special tokens, got 200"):
        ByteBPETokenizer.train("abc", 200, ("[PAD]",))


def test_char_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer.train("hello world")
    assert tok.decode(tok.encode("hello")) == "hello"
    with pytest.raises(ValueError, match=r"1 character\(s\) not in the vocabulary: 'z'"):
        tok.encode("hez")
    bert = CharTokenizer.train("hello", ("[PAD]", "[UNK]", "[MASK]"))
    assert bert.encode("hz")[1] == bert.token_to_id("[UNK]")
    assert bert.encode("h[MASK]", allowed_special=True) == [bert.stoi["h"], bert.token_to_id("[MASK]")]


def test_builtin_corpus_is_cached_and_labelled_set_is_balanced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINILLM_CACHE", str(tmp_path))
    text = data.builtin_corpus()
    assert len(text) > 500_000 and (tmp_path / "stdlib_docstrings.txt").exists()
    assert "sha256" in capsys.readouterr().out
    train, test, names = data.labelled_docstrings()
    counts = np.bincount([label for _, label in train + test])
    assert len(names) == len(counts) and counts.min() == counts.max() >= 50
    assert not {t for t, _ in train} & {t for t, _ in test}      # no docstring in both splits
    few = data.first_per_class(train, 30)                       # scarce labels: 7 per class, still balanced
    assert np.bincount([label for _, label in few]).tolist() == [7] * len(names)
    assert few == [ex for ex in train if ex in few]             # a prefix of each class, order kept
    with pytest.raises(ValueError, match=r"train examples must lie in \[4, "):
        data.first_per_class(train, 3)


def test_split_batches_and_masking():
    ids = np.arange(1000)
    tr, va = data.train_val_split(ids)
    assert tr[-1] + 1 == va[0] and len(va) == 100
    x, y = data.get_batch(tr, 16, 4, np.random.default_rng(0))
    assert x.shape == (4, 16) and np.array_equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="fewer than block_size \\+ 1 = 65"):
        data.get_batch(np.arange(40), 64, 2, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    toks = rng.integers(5, 100, (200, 50))
    toks[:, 0] = 1                                              # a special token ([CLS]) never masked
    inp, lab = data.mask_tokens(toks, rng, mask_id=3, vocab_size=100, special_ids=[1])
    chosen = lab != -100
    assert abs(chosen.mean() - 0.15 * 49 / 50) < 0.01 and not chosen[:, 0].any()
    assert abs((inp[chosen] == 3).mean() - 0.8) < 0.03
    assert abs((inp[chosen] == toks[chosen]).mean() - 0.1) < 0.03   # (plus random hits, ~1 %)
    assert np.array_equal(inp[~chosen], toks[~chosen])


def test_bad_data_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.read_text_file(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        data.read_text_file(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="is not valid UTF-8"):
        data.read_text_file(tmp_path / "latin1.txt")


def test_builtin_corpus_without_a_writable_cache_is_made_in_memory(tmp_path, monkeypatch, capsys):
    # a cache folder that cannot be created (its parent is a file): a read-only home, in effect
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv("MINILLM_CACHE", str(tmp_path / "a_file" / "cache"))
    real = data._stdlib_files
    monkeypatch.setattr(data, "_stdlib_files", lambda: real()[:20])   # a small corpus: a fast test
    text = data.builtin_corpus()
    out = capsys.readouterr().out
    assert "cannot be cached" in out and "MINILLM_CACHE" in out and "made in memory" in out
    monkeypatch.setenv("MINILLM_CACHE", str(tmp_path / "ok"))
    assert data.builtin_corpus(verbose=False) == text                 # the same text as the cached one
    assert not list((tmp_path / "ok").glob("*.tmp*"))


def test_user_file_byte_order_mark_is_not_text(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeff数据 data".encode("utf-8"))
    assert data.read_text_file(tmp_path / "bom.txt") == "数据 data"


@pytest.mark.parametrize("kind", ["char", "bpe", "wordpiece"])
def test_decode_refuses_ids_outside_the_vocabulary(kind):
    from minillm.tokenizers import WordPieceTokenizer
    tok = {"char": lambda: CharTokenizer.train("abc", ["[SEP]"]),
           "bpe": lambda: ByteBPETokenizer.train("abab abab", 260, ["<|endoftext|>"]),
           "wordpiece": lambda: WordPieceTokenizer(["[PAD]", "[UNK]", "a", "##b"])}[kind]()
    assert tok.decode(tok.encode("ab")) in ("ab", "a b", "ab")
    for bad in (-1, tok.vocab_size, 10 ** 9):
        with pytest.raises(ValueError, match=f"id {bad} at position 1 is not in the vocabulary"):
            tok.decode([0, bad])
    with pytest.raises(ValueError, match="ids must be integers, got 1.5"):
        tok.decode([1.5])


@pytest.mark.parametrize("merges,message", [
    ([[0, 1], [256, 300]], "BPE merge 1 refers to token 300, which does not exist before it (ids 0..256)"),
    ([[0, -1]], "BPE merge 0 refers to token -1"),
    ([[0, 1, 2]], "BPE merge 0 must be a pair of token ids"),
    ([["a", "b"]], "BPE merge 0 refers to token 'a'"),
])
def test_bpe_merges_that_refer_to_unknown_tokens_are_refused(merges, message):
    from minillm.tokenizers import tokenizer_from_dict
    with pytest.raises(ValueError, match=re.escape(message)):
        tokenizer_from_dict({"type": "bpe", "merges": merges})
