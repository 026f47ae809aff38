"""Tokenizers: text -> integer ids -> text.

    base.py       split_specials: special-token strings cut out of a text
    char.py       CharTokenizer: one id per character
    bpe.py        ByteBPETokenizer: byte-level BPE (GPT-2), trained here or read from GPT-2's files
    hf_json.py    load_tokenizer_json: byte-level BPE from Hugging Face's tokenizer.json
    pretokenizers.py  the tokenizer.json pre-tokenizers (ByteLevel, Split, Digits, Sequence)
    wordpiece.py  WordPieceTokenizer: BERT's, read from a Hugging Face vocab.txt
    word.py       WordTokenizer: one id per whitespace-separated word (a seq2seq model's target names)
    saving.py     to and from JSON
"""
from .base import split_specials
from .bpe import ByteBPETokenizer, gpt2_byte_chars, merge_pair
from .char import CharTokenizer
from .hf_json import load_tokenizer_json
from .saving import load_tokenizer, save_tokenizer, tokenizer_from_dict
from .word import WordTokenizer
from .wordpiece import SPECIAL_TOKENS, WordPieceTokenizer, join_pieces

__all__ = ["split_specials", "CharTokenizer", "ByteBPETokenizer", "WordPieceTokenizer", "WordTokenizer", "merge_pair",
           "gpt2_byte_chars", "tokenizer_from_dict", "save_tokenizer", "load_tokenizer", "load_tokenizer_json", "SPECIAL_TOKENS",
           "join_pieces"]
