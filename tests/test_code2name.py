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
