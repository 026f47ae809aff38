"""tokenizer.json: minillm gives the ids of Hugging Face's tokenizers library on English, code,
Chinese and emoji, for GPT-2's, Llama 3's and SmolLM's pre-tokenizers; a Llama directory then
generates from the command line. The tokenizers are trained here (no network)."""
import json

import pytest

from minillm.tokenizers import load_tokenizer_json, tokenizer_from_dict

tokenizers = pytest.importorskip("tokenizers")
pytest.importorskip("regex")
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

SAMPLES = ["Hello world! It's 2026, isn't it?  Spaces   and\ttabs\n\nnew lines",
           "def f(x):\n    return x ** 2  # 12345 squares\n", "中文的分词测试，还有标点。",
           "emoji 🎉🚀 and ñ, é, ß; ¾ ² Ⅻ", "   leading spaces", "mixed123abc 4.5e-3 <|endoftext|>"]
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
PRE = {
    "gpt2": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False),
    "gpt2, prefix space": lambda: pre_tokenizers.ByteLevel(add_prefix_space=True),
    "llama3": lambda: pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated"),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
    "smollm": lambda: pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
}
TEXT = "".join(SAMPLES[:2]) * 50 + " ".join(f"word{i} and the {i * 7} others" for i in range(3000))


def trained(tmp_path, pre, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = PRE[pre]()
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=500, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return tok, path


@pytest.mark.parametrize("pre", list(PRE))
@pytest.mark.parametrize("ignore_merges", [False, True])
def test_same_ids_as_the_tokenizers_library(tmp_path, pre, ignore_merges):
    theirs, path = trained(tmp_path, pre, ignore_merges)
    ours = load_tokenizer_json(path)
    for text in SAMPLES:
        assert ours.encode(text, allowed_special=True) == theirs.encode(text).ids, text
        assert ours.decode(ours.encode(text)) == theirs.decode(theirs.encode(text).ids, skip_special_tokens=False)
    again = tokenizer_from_dict(json.loads(json.dumps(ours.to_dict())))         # as a checkpoint keeps it
    assert again.encode(SAMPLES[3]) == ours.encode(SAMPLES[3])


@pytest.mark.parametrize("change, words", [
    (lambda d: d["model"].update(type="Unigram"), "model type 'Unigram' is not supported"),
    (lambda d: d.update(normalizer={"type": "NFKC"}), "normalizer 'NFKC' is not supported"),
    (lambda d: d.update(pre_tokenizer={"type": "Metaspace"}), "pre_tokenizer type 'Metaspace' is not supported"),
    (lambda d: d["model"].update(byte_fallback=True), "model.byte_fallback = True is not supported"),
    (lambda d: d["model"]["merges"].insert(0, "zz@ q"), "merges entry 0 merges 'zz@' and 'q', which are not tokens"),
])
def test_unsupported_or_damaged_files_are_refused_by_name(tmp_path, change, words):
    _, path = trained(tmp_path, "gpt2")
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="tokenizer.json") as e:
        load_tokenizer_json(path)
    assert words in str(e.value)


def test_generate_pretrained_reads_a_llama_directory(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from minillm.cli import main
    theirs, _ = trained(tmp_path, "llama3")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=500, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    ref = transformers.LlamaForCausalLM(config).eval()
    ref.save_pretrained(tmp_path)
    prompt = "def f(x):"
    with torch.no_grad():
        want = ref.generate(torch.tensor([theirs.encode(prompt).ids]), max_new_tokens=8, do_sample=False)[0].tolist()
    assert main(["generate", "--pretrained", str(tmp_path), "--prompt", prompt, "--max-new-tokens", "8",
                 "--greedy"]) == 0
    out = capsys.readouterr()
    assert "loaded llama from" in out.err
    assert out.out.rstrip("\n") == theirs.decode(want, skip_special_tokens=False)

