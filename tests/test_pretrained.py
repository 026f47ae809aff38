"""Hugging Face interoperability: tiny random GPT-2 and BERT models made locally with `transformers`
(no network), saved with save_pretrained, loaded into minillm, compared; and the reverse direction.
The GPT-2 tokenizer files are checked against transformers' own GPT2Tokenizer.
Skipped when transformers (or torch, which its models need) is not installed."""
import json

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

import minillm  # noqa: E402
from minillm import hub  # noqa: E402
from minillm.cli import main  # noqa: E402
from minillm.models import GPT, GPTConfig  # noqa: E402
from minillm.tokenizers import ByteBPETokenizer  # noqa: E402

MIXED = "Hello world, it's 2026! 你好，世界。Emoji: 🙂🚀 and   spaces\nnew line's end."


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=97, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():                        # non-trivial LayerNorm and bias values
        for name, p in model.named_parameters():
            if name.endswith(("bias", "ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(path, safe_serialization=True)
    return model, path


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory):
    torch.manual_seed(1)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=24, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0)
    model = transformers.BertForMaskedLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("bert")
    model.save_pretrained(path, safe_serialization=True)
    return model, path


def ids(shape, high, seed=0):
    return np.random.default_rng(seed).integers(0, high, shape)


def hf_logits(ref, x, **kwargs):
    """The transformers model's logits for NumPy ids x, as a NumPy array."""
    with torch.no_grad():
        return ref(torch.from_numpy(x), **kwargs).logits.numpy()


def test_gpt2_logits_and_greedy_generation_match_transformers(hf_gpt2):
    ref, path = hf_gpt2
    model = hub.load_gpt2(path)
    x = ids((2, 10), 97)
    want = hf_logits(ref, x)
    got = model(x)
    model.cache = None
    assert np.abs(got - want).max() <= 1e-4
    prompt = ids((1, 5), 97, seed=1)
    ours = model.generate(prompt, 12, do_sample=False)
    with torch.no_grad():
        theirs = ref.generate(torch.from_numpy(prompt), max_new_tokens=12, do_sample=False,
                              pad_token_id=0).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_minillm_gpt_round_trips_through_transformers(tmp_path):
    minillm.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=61, block_size=16, n_layer=2, n_head=2, n_embd=16))
    hub.save_gpt2(model, tmp_path)
    ref = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    x = ids((2, 9), 61)
    want = hf_logits(ref, x)
    assert np.abs(model(x) - want).max() <= 1e-4
    again = hub.load_gpt2(tmp_path)
    for (name, a), (_, b) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_bert_logits_match_transformers_with_padding(hf_bert):
    ref, path = hf_bert
    model = hub.load_bert(path)
    x = ids((2, 12), 50)
    pad = np.zeros((2, 12), dtype=bool)
    pad[1, 8:] = True
    want = hf_logits(ref, x, attention_mask=torch.from_numpy(~pad).long())
    got = model(x, key_padding_mask=pad)
    assert np.abs(got - want)[~pad].max() <= 1e-4              # pad positions' outputs are not used
    encoder = hub.load_bert(path, with_mlm_head=False)
    with torch.no_grad():
        hidden = ref.bert(torch.from_numpy(x)).last_hidden_state.numpy()
    assert np.abs(encoder(x) - hidden).max() <= 1e-4


def test_minillm_bert_round_trips_through_transformers(hf_bert, tmp_path):
    _, path = hf_bert
    model = hub.load_bert(path)
    hub.save_bert(model, tmp_path)
    ref = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    x = ids((1, 7), 50)
    want = hf_logits(ref, x)
    assert np.abs(model(x) - want).max() <= 1e-4


def test_gpt2_tokenizer_files_give_the_reference_ids(tmp_path):
    text = ("The quick brown fox's jumps; 你好世界，你好！ 🙂🙂 numbers 12345 and 2026.\n" * 30)
    ours = ByteBPETokenizer.train(text, 400, special_tokens=("<|endoftext|>",))
    ours.save_gpt2_files(tmp_path)
    ref = transformers.GPT2Tokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    loaded = ByteBPETokenizer.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    for sample in (MIXED, text[:200], " leading space", "tabs\tand\r\nCRLF"):
        want = ref.encode(sample)
        assert loaded.encode(sample) == want, sample
        assert loaded.decode(want) == sample


def test_tokenizer_with_gpt2_style_renumbered_vocab(tmp_path):
    """vocab.json ids in GPT-2's order (printable bytes first) are not minillm's internal order."""
    ours = ByteBPETokenizer.train("aaabbbaaabbb abab", 260)
    ours.save_gpt2_files(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    shuffled = {t: i for i, t in enumerate(sorted(vocab, key=lambda t: (len(t), t)))}   # another numbering
    (tmp_path / "vocab.json").write_text(json.dumps(shuffled), encoding="utf-8")
    tok = ByteBPETokenizer.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    ref = transformers.GPT2Tokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    assert tok.encode(MIXED) == ref.encode(MIXED)
    assert tok.decode(tok.encode(MIXED)) == MIXED


def test_cli_generate_with_a_pretrained_directory(tmp_path, capsys):
    tok = ByteBPETokenizer.train("abc abd abe " * 20, 260, special_tokens=("<|endoftext|>",))
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=tok.vocab_size, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    path = tmp_path / "gpt2"
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path, safe_serialization=True)
    tok.save_gpt2_files(path)
    assert main(["generate", "--pretrained", str(path), "--prompt", "ab", "--max-new-tokens", "5", "--greedy"]) == 0
    assert capsys.readouterr().out.startswith("ab")
    assert main(["generate", "--pretrained", str(tmp_path), "--prompt", "ab"]) == 2   # not a model directory
    assert "is missing" in capsys.readouterr().err


WORDPIECE_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
                   + [c for c in "abcdefghijklmnoprstuvwxyz0123456789"] + ["##" + c for c in "abcdefghijklmnoprstuvwxyz"]
                   + ["the", "quick", "brown", "fox", "##es", "jump", "##s", "##ing", "##ed", "un", "##aff", "##able",
                      "cafe", "naive", "resume", "hello", "world", "stop", "don", "Cafe", "Hello", "你", "好", "世", "界"])
WORDPIECE_TEXTS = ("The quick brown foxes jumped, unaffable!", "Café NAÏVE résumé", "don't stop-believing",
                   "[MASK] is the [MASK].", "  leading and trailing  ", "tab\tnew\nline\r\nend", "Qatar queue",
                   "a" * 120, "x\u200by zero width", "a\u0085b\u2028c\u00add\ue000e\u0378f\u3000g", "emoji 🙂 here", "你好，世界！Hello World", MIXED)


@pytest.mark.parametrize("lower", [True, False])
def test_wordpiece_gives_bert_tokenizer_ids(tmp_path, lower):
    from minillm.tokenizers.wordpiece import WordPieceTokenizer
    (tmp_path / "vocab.txt").write_text("\n".join(WORDPIECE_VOCAB) + "\n", encoding="utf-8")
    ref = transformers.BertTokenizer(str(tmp_path / "vocab.txt"), do_lower_case=lower)
    ours = WordPieceTokenizer.from_vocab_file(tmp_path / "vocab.txt", do_lower_case=lower)
    for text in WORDPIECE_TEXTS:
        want = ref(text, add_special_tokens=False)["input_ids"]
        assert ours.encode(text, allowed_special=True) == want, text
        assert ours.decode(want) == ref.decode(want), text


def test_cli_fill_mask_with_a_pretrained_bert_directory(hf_bert, tmp_path, capsys):
    import shutil
    ref, path = hf_bert
    shutil.copytree(path, tmp_path / "bert")
    vocab = WORDPIECE_VOCAB[:ref.config.vocab_size]                   # one token per row of the embedding
    (tmp_path / "bert" / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    assert main(["fill-mask", "--pretrained", str(tmp_path / "bert"), "a [MASK] b.", "--top", "3"]) == 0
    line = capsys.readouterr().out.strip()
    ids = [vocab.index(t) for t in ("[CLS]", "a", "[MASK]", "b", ".")]
    best = int(hf_logits(ref, np.array([ids]))[0, 2].argmax())
    assert line.startswith("mask at token 2: " + repr(vocab[best])), line
    assert line.endswith(f"->  a [{vocab[best]}] b."), line
    assert main(["fill-mask", "--pretrained", str(path), "a [MASK] b."]) == 2         # no vocab.txt
    assert "vocab.txt is missing" in capsys.readouterr().err
