"""WordPiece (minillm/tokenizers/wordpiece.py): the basic word split, greedy longest-match pieces, special
tokens, decode and the dict round trip. Parity with transformers' BertTokenizer is in
test_pretrained.py (it needs transformers)."""
import pytest

from minillm.tokenizers import tokenizer_from_dict
from minillm.tokenizers.wordpiece import WordPieceTokenizer, basic_words

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "un", "##aff", "##able", "##a", "list",
         "of", ".", ",", "!", "[", "]", "mask", "hello", "world", "cafe", "我", "爱", "python", "##s", "re",
         "##turn", "return", "Cafe", "'", "t", "don"]


@pytest.fixture
def tok():
    return WordPieceTokenizer(VOCAB)


def test_basic_words_lowercase_strip_accents_and_split_punctuation():
    assert basic_words("Hello, World!") == ["hello", ",", "world", "!"]
    assert basic_words("Café naïve") == ["cafe", "naive"]
    assert basic_words("don't") == ["don", "'", "t"]
    assert basic_words("x$y^z") == ["x", "$", "y", "^", "z"]                 # ASCII symbols split too


def test_basic_words_cjk_whitespace_and_control_characters():
    assert basic_words("我爱Python") == ["我", "爱", "python"]
    assert basic_words("a\tb\u00a0c\nd") == ["a", "b", "c", "d"]             # NBSP is whitespace
    assert basic_words("d\u200be\x00f\ufffdg") == ["defg"]                   # zero-width space, NUL, U+FFFD dropped
    assert basic_words("Café", do_lower_case=False) == ["Café"]


def test_word_pieces_greedy_longest_match_first(tok):
    assert tok.word_pieces("unaffable") == ["un", "##aff", "##able"]
    assert tok.word_pieces("returns") == ["return", "##s"]                  # "return" beats "re" + "##turn"
    assert tok.word_pieces("unx") == ["[UNK]"]                              # a piece that cannot be covered
    assert tok.word_pieces("zzz") == ["[UNK]"]
    assert tok.word_pieces("un" * 51) == ["[UNK]"]                          # over 100 characters


def test_encode_special_tokens_only_when_allowed(tok):
    ids = tok.encode("The [MASK] of lists.", allowed_special=True)
    assert [tok.vocab[i] for i in ids] == ["the", "[MASK]", "of", "list", "##s", "."]
    ids = tok.encode("The [MASK] of lists.")
    assert [tok.vocab[i] for i in ids] == ["the", "[", "mask", "]", "of", "list", "##s", "."]


def test_decode_glues_continuations(tok):
    ids = tok.encode("Hello, unaffable lists!")
    assert tok.decode(ids) == "hello, unaffable lists!"
    assert tok.decode(ids, clean_up_spaces=False) == "hello , unaffable lists !"
    assert tok.decode([tok.token_to_id("##s")]) == "##s"


def test_cased_vocabulary_keeps_case(tok):
    cased = WordPieceTokenizer(VOCAB, do_lower_case=False)
    assert [cased.vocab[i] for i in cased.encode("Cafe cafe")] == ["Cafe", "cafe"]
    assert [tok.vocab[i] for i in tok.encode("Cafe cafe")] == ["cafe", "cafe"]


def test_dict_round_trip_and_vocab_file(tok, tmp_path):
    again = tokenizer_from_dict(tok.to_dict())
    text = "我爱 Python, the unaffable [MASK]!"
    assert again.encode(text, allowed_special=True) == tok.encode(text, allowed_special=True)
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    from_file = WordPieceTokenizer.from_vocab_file(tmp_path / "vocab.txt")
    assert from_file.vocab == VOCAB and from_file.vocab_size == len(VOCAB)
    assert from_file.special_tokens == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}


def test_vocabulary_without_unk_is_refused():
    with pytest.raises(ValueError, match=r"\[UNK\]"):
        WordPieceTokenizer(["a", "b"])
    with pytest.raises(KeyError, match="not in the WordPiece vocabulary"):
        WordPieceTokenizer(VOCAB).token_to_id("nope")
