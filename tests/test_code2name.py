"""The function-body -> name corpus and its metrics."""
import pytest

from minillm.training import code2name
from minillm.training.metrics import exact_match, subtoken_scores


def test_subtokens_split_snake_and_camel_case():
    assert code2name.subtokens("read_config_file") == ["read", "config", "file"]
    assert code2name.subtokens("getHTTPResponse2") == ["get", "httpresponse2"]
    assert code2name.subtokens("_private__name") == ["private", "name"]


def test_a_body_hides_its_own_name_and_docstring(tmp_path):
    (tmp_path / "m.py").write_text('def fact_rec(n):\n    """Factorial."""\n    if n < 2:\n        return 1\n'
                                   '    return n * fact_rec(n - 1)\n\ndef __init__(self):\n    self.x = 1\n')
    assert code2name.examples_of_file(tmp_path / "m.py") == [("if n < 2: return 1 return n * _(n - 1)", "fact rec")]


@pytest.fixture(scope="module")
def corpus():
    return code2name.build()


def test_the_split_is_by_module_and_no_body_is_in_two_splits(corpus):
    assert len(corpus["train"]) > 5000 and len(corpus["val"]) > 200 and len(corpus["test"]) > 200
    train = {source for source, _ in corpus["train"]}
    assert not train & {source for source, _ in corpus["test"]} and not train & {s for s, _ in corpus["val"]}
    assert code2name.split_of("json/decoder.py") == code2name.split_of("json/decoder.py")


def test_metrics_on_known_cases():
    assert exact_match(["a b", "c"], ["a b", "d"]) == 0.5
    p, r, f = subtoken_scores(["get config", "read file name"], ["get config value", "read name"])
    assert (p, r) == (4 / 5, 4 / 5) and f == pytest.approx(0.8)
    assert subtoken_scores([""], ["x"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        exact_match(["a", "b"], ["a"])


def test_bleu_of_a_small_case_by_hand():
    from minillm.training.metrics import corpus_bleu
    # "the cat sat on the mat" vs itself: every p_n = 1, BP = 1
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    # 2 of 3 unigrams, 1 of 2 bigrams, no trigram (the first order with no match: 1 / (2 * 1)), no 4-gram
    # (totals 0: BLEU 0); shorter than the reference: BP = exp(1 - 4 / 3)
    assert corpus_bleu(["a b x"], ["a b c d"]) == 0.0
    import math
    want = 100 * math.exp(1 - 5 / 4) * math.exp((math.log(3 / 4) + math.log(1 / 3) + math.log(1 / 4)
                                                 + math.log(1 / 4 / 1)) / 4)
    assert corpus_bleu(["a b c x"], ["a b y c d"]) == pytest.approx(want)


def test_bleu_equals_sacrebleu_on_random_sentences():
    sacrebleu = pytest.importorskip("sacrebleu")
    import numpy as np
    from minillm.training.metrics import corpus_bleu
    rng = np.random.default_rng(0)
    words = "a b c d e f g".split()
    for trial in range(30):
        refs = [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(int(rng.integers(1, 20)))]
        hyps = [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in refs]
        want = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score
        assert corpus_bleu(hyps, refs) == pytest.approx(want, abs=1e-9), (trial, hyps, refs)
