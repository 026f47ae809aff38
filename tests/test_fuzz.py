"""Random and mutated input for every loader and for the command line (hypothesis).

Each fuzzer starts from a good file (or argument list) and changes it the way a damaged download,
a hand edit or an attacker would: a JSON value replaced by any other JSON value, a key removed,
bytes flipped, a file cut short, lines dropped, doubled or rewritten. The loader must then either
succeed, and the result must work, or raise ValueError/TypeError/OSError whose message names the
file it read. Never another exception type, never a message without the file's name, never a
change to the file it was given.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from minillm import hub  # noqa: E402
from minillm.cli import commands  # noqa: E402
from minillm.models import GPT, BertConfig, BertForMaskedLM, GPTConfig  # noqa: E402
from minillm.tokenizers import (ByteBPETokenizer, CharTokenizer, WordPieceTokenizer, load_tokenizer,  # noqa: E402
                                tokenizer_from_dict)
from minillm.training.checkpoint import save_checkpoint  # noqa: E402

# 60 cases per fuzzer keep the suite quick; MINILLM_FUZZ_EXAMPLES=5000 hunts longer
FUZZ = settings(max_examples=int(os.environ.get("MINILLM_FUZZ_EXAMPLES", 60)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLEAN = (ValueError, TypeError, OSError)

# any JSON document: what a hand edit or a broken tool could leave in a field
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


def json_paths(doc, prefix=()):
    """Every path (a tuple of keys and indexes) to a value inside doc, the root included."""
    paths = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            paths += json_paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):                       # the first few items of long lists
            paths += json_paths(v, prefix + (i,))
    return paths


@st.composite
def mutated_json(draw, doc):
    """doc with one value replaced by any JSON value, or one key or item deleted, or many times so."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(json_paths(doc)))
        if not path:
            doc = draw(json_values)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(json_values)
        else:
            del parent[path[-1]]
    return doc


@st.composite
def mutated_bytes(draw, data):
    """data cut short, or with a few bytes changed."""
    data = bytearray(data)
    if draw(st.booleans()):
        return bytes(data[:draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def mutated_lines(draw, text):
    """text with lines dropped, doubled, swapped or replaced by random text."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "double", "swap", "replace"]))
        if op == "drop":
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = draw(st.text(max_size=8))
        if not lines:
            lines = [""]
    return "\n".join(lines)


def expect_clean(call, names):
    """call() succeeds (its result is returned) or raises a CLEAN error naming one of ``names``."""
    try:
        return call()
    except CLEAN as e:
        message = str(e)
        assert any(n in message for n in names), f"{type(e).__name__} names none of {names}: {message}"
        assert "\n" not in message.strip(), f"not one line: {message!r}"
        return None


# ---------------------------------------------------------------------------- checkpoints
class Parts(tuple):
    """(arrays, meta, file bytes) of a good checkpoint, with a short repr for hypothesis' reports."""

    def __repr__(self):
        return "<a good tiny GPT checkpoint>"


@pytest.fixture(scope="module")
def checkpoint_parts(tmp_path_factory):
    """The members of a good tiny GPT checkpoint, as minillm train writes it: {name: array}, meta."""
    text = "hello world"
    tokenizer = CharTokenizer.train(text)
    config = {"vocab_size": tokenizer.vocab_size, "block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 8}
    model = GPT(GPTConfig(**config))
    meta = {"kind": "gpt", "model_config": config, "tokenizer": tokenizer.to_dict(), "step": 3}
    folder = tmp_path_factory.mktemp("ckpt")
    path = save_checkpoint(folder, model, meta)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
        meta = json.loads(z["__meta__"].tobytes())
    return Parts((arrays, meta, path.read_bytes()))


def load_and_generate(folder):
    """What `minillm generate --ckpt folder` does: load, then continue a prompt by a few tokens."""
    model, tokenizer, _ = commands.load_model(folder, ("gpt", "lstm"))
    idx = np.array([tokenizer.encode("he")], dtype=np.int64)
    return tokenizer.decode(model.generate(idx, 3, seed=0)[0].tolist())


def write_checkpoint(folder, arrays, meta):
    meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(Path(folder) / "ckpt.npz", __meta__=meta_bytes, **arrays)
    return (Path(folder) / "ckpt.npz").read_bytes()


@FUZZ
@given(data=st.data())
def test_mutated_checkpoint_metadata(checkpoint_parts, data):
    arrays, meta, _ = checkpoint_parts
    bad = data.draw(mutated_json(meta))
    with tempfile.TemporaryDirectory() as folder:
        before = write_checkpoint(folder, arrays, bad)
        expect_clean(lambda: load_and_generate(folder), ["ckpt.npz"])
        assert (Path(folder) / "ckpt.npz").read_bytes() == before


@FUZZ
@given(data=st.data())
def test_mutated_checkpoint_arrays(checkpoint_parts, data):
    arrays, meta, _ = checkpoint_parts
    arrays = dict(arrays)
    name = data.draw(st.sampled_from(sorted(arrays)))
    change = data.draw(st.sampled_from(["drop", "shape", "dtype", "extra"]))
    if change == "drop":
        del arrays[name]
    elif change == "shape":
        arrays[name] = np.zeros(data.draw(st.lists(st.integers(0, 9), max_size=3)), np.float32)
    elif change == "dtype":
        dtype = data.draw(st.sampled_from([np.float16, np.float64, np.int64, np.bool_, np.complex64, "U3", "V4"]))
        arrays[name] = np.zeros(arrays[name].shape, dtype)
    else:
        arrays["model/" + data.draw(st.text(max_size=5))] = np.zeros(3, np.float32)
    with tempfile.TemporaryDirectory() as folder:
        write_checkpoint(folder, arrays, meta)
        expect_clean(lambda: load_and_generate(folder), ["ckpt.npz"])


@FUZZ
@given(data=st.data())
def test_damaged_checkpoint_bytes(checkpoint_parts, data):
    *_, good = checkpoint_parts
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "ckpt.npz").write_bytes(data.draw(mutated_bytes(good)))
        expect_clean(lambda: load_and_generate(folder), ["ckpt.npz"])


@FUZZ
@given(data=st.data())
def test_damaged_tokenizer_files(data):
    good = json.dumps(ByteBPETokenizer.train("abab abab", 260, ["<|endoftext|>"]).to_dict()).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.json"
        path.write_bytes(data.draw(mutated_bytes(good)))
        expect_clean(lambda: load_tokenizer(path), ["tokenizer.json"])


@FUZZ
@given(data=st.data())
def test_mutated_tokenizer_descriptions(data):
    good = [CharTokenizer.train("hello", ["<s>"]).to_dict(),
            ByteBPETokenizer.train("abab abab", 260, ["<|endoftext|>"]).to_dict(),
            WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ab", "##ab"]).to_dict()]
    bad = data.draw(mutated_json(data.draw(st.sampled_from(good))))
    tokenizer = expect_clean(lambda: tokenizer_from_dict(bad), ["tokenizer"])
    if tokenizer is not None:                       # accepted: it must then encode and decode
        ids = expect_clean(lambda: tokenizer.encode("hello abab"), ["not in the vocabulary"])
        if ids is not None:
            tokenizer.decode(ids)


# ---------------------------------------------------------------------------- Hugging Face files
@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    pytest.importorskip("safetensors")
    gpt2 = tmp_path_factory.mktemp("gpt2")
    hub.save_gpt2(GPT(GPTConfig(vocab_size=261, block_size=16, n_layer=2, n_head=2, n_embd=16)), gpt2)
    ByteBPETokenizer.train("abab abab", 260, ["<|endoftext|>"]).save_gpt2_files(gpt2)
    bert = tmp_path_factory.mktemp("bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ab", "##ab", "a", "b"]
    hub.save_bert(BertForMaskedLM(BertConfig(vocab_size=len(vocab), max_position=16, n_layer=1, n_head=2, n_embd=8)), bert)
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return {"gpt2": gpt2, "bert": bert}


def edited_copy(source, name, content):
    """A temporary copy of the directory ``source`` with file ``name`` replaced by ``content`` (str or bytes)."""
    folder = Path(tempfile.mkdtemp())
    shutil.copytree(source, folder, dirs_exist_ok=True)
    (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


@FUZZ
@given(data=st.data(), which=st.sampled_from(["gpt2", "bert"]))
def test_mutated_hugging_face_config(hf_dirs, data, which):
    config = json.loads((hf_dirs[which] / "config.json").read_text())
    folder = edited_copy(hf_dirs[which], "config.json", json.dumps(data.draw(mutated_json(config))))
    try:
        load = hub.load_gpt2 if which == "gpt2" else hub.load_bert
        model = expect_clean(lambda: load(folder), ["config.json", "model.safetensors"])
        if model is not None:                       # accepted: it must then run
            model.forward(np.zeros((1, 2), dtype=np.int64))
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["model.safetensors", "config.json"]))
def test_damaged_hugging_face_bytes(hf_dirs, data, name):
    folder = edited_copy(hf_dirs["gpt2"], name, data.draw(mutated_bytes((hf_dirs["gpt2"] / name).read_bytes())))
    try:
        expect_clean(lambda: hub.load_gpt2(folder), [name])
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["vocab.json", "merges.txt"]))
def test_mutated_gpt2_tokenizer_files(hf_dirs, data, name):
    text = (hf_dirs["gpt2"] / name).read_text(encoding="utf-8")
    if name == "vocab.json":
        text = json.dumps(data.draw(mutated_json(json.loads(text))))
    else:
        text = data.draw(mutated_lines(text))
    folder = edited_copy(hf_dirs["gpt2"], name, text)
    try:
        tokenizer = expect_clean(lambda: ByteBPETokenizer.from_gpt2_files(folder / "vocab.json", folder / "merges.txt"),
                                 [name])
        if tokenizer is not None:
            assert tokenizer.decode(tokenizer.encode("abab b")) == "abab b"
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(data=st.data())
def test_mutated_bert_vocab_txt(hf_dirs, data):
    text = data.draw(mutated_lines((hf_dirs["bert"] / "vocab.txt").read_text()))
    folder = edited_copy(hf_dirs["bert"], "vocab.txt", text)
    try:
        tokenizer = expect_clean(lambda: WordPieceTokenizer.from_vocab_file(folder / "vocab.txt"), ["vocab.txt"])
        if tokenizer is not None:
            tokenizer.decode(tokenizer.encode("ab abab b"))
    finally:
        shutil.rmtree(folder)


def test_the_fuzz_helpers_change_what_they_are_given():
    """The mutators must produce something different most of the time, or the fuzzers test nothing."""
    doc = {"a": 1, "b": [1, 2], "c": {"d": "x"}}
    changed = set()

    @settings(max_examples=50, deadline=None)
    @given(new=mutated_json(doc), raw=mutated_bytes(b"0123456789"), text=mutated_lines("a\nb\nc"))
    def collect(new, raw, text):
        changed.add((new != doc, raw != b"0123456789", text != "a\nb\nc"))

    collect()
    assert any(c[0] for c in changed) and any(c[1] for c in changed) and any(c[2] for c in changed)
