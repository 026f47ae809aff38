"""The exercises, in course order: what each asks, which library function it re-derives, what it needs.

Each exercise is one file of a workspace, ``<name>.py``, holding functions with the exact names
and signatures of their twins in minillm (``lesson``: module and qualified name). The statement
gives the forward formula, the shapes and a hint, never the derivative: that is the exercise.
"""
from typing import NamedTuple

from . import grade_activations, grade_attention, grade_layers, grade_recurrent, grade_training
from .statements import STATEMENTS


class Exercise(NamedTuple):
    """One exercise: its file name, title, the library functions it mirrors, and its tests."""
    name: str            # the workspace file <name>.py and the --only name
    title: str
    lesson: tuple        # ("minillm.nn.linear", "linear_backward"), ...: the reference solution, in order
    needs: tuple         # earlier exercises whose ideas this one uses
    imports: str         # the starter's import lines (the cache types and helpers it may use)
    tests: object        # tests(student module) -> [(test name, test)]

    @property
    def functions(self):
        """The names the student's file must define (a method's name, like backward, for a method)."""
        return tuple(qualname.split(".")[-1] for _, qualname in self.lesson)

    @property
    def statement(self):
        """The Markdown statement: formula, shapes, cache fields, hint."""
        return STATEMENTS[self.name]


def _e(name, title, lesson, needs, imports, tests):
    return Exercise(name, title, tuple(lesson), tuple(needs), imports.strip(), tests)


NN, MODELS = "minillm.nn", "minillm.models"
EXERCISES = (
    _e("linear", "Linear layer backward", [(f"{NN}.linear", "linear_backward")], [],
       "from minillm.nn.linear import LinearCache", grade_layers.tests_linear),
    _e("embedding", "Embedding backward (repeated ids, padding)", [(f"{NN}.linear", "embedding_backward")], ["linear"],
       "from minillm import backend\nfrom minillm.nn.linear import EmbeddingCache", grade_layers.tests_embedding),
    _e("softmax", "Softmax and log-softmax backward", [(f"{NN}.activations", "softmax_backward"),
                                                       (f"{NN}.activations", "log_softmax_backward")], [],
       "from minillm import backend\nfrom minillm.nn.activations import SoftmaxCache", grade_activations.tests_softmax),
    _e("cross_entropy", "Cross-entropy backward (ignore_index, label smoothing)",
       [(f"{NN}.loss", "cross_entropy_backward")], ["softmax"],
       "from minillm import backend\nfrom minillm.nn.loss import CrossEntropyCache",
       grade_activations.tests_cross_entropy),
    _e("gelu", "GELU backward (tanh and exact)", [(f"{NN}.activations", "gelu_backward")], [],
       "from minillm import backend\nfrom minillm.nn.activations import GELU_CUBIC, INV_SQRT_2PI, SQRT_2_OVER_PI, "
       "GELUCache", grade_activations.tests_gelu),
    _e("layer_norm", "LayerNorm backward", [(f"{NN}.norm", "layer_norm_backward")], ["linear"],
       "from minillm.nn.norm import LayerNormCache", grade_layers.tests_layer_norm),
    _e("dropout", "Dropout forward and backward", [(f"{NN}.dropout", "dropout_forward"),
                                                  (f"{NN}.dropout", "dropout_backward")], [],
       "from minillm.nn.dropout import DropoutCache", grade_layers.tests_dropout),
    _e("positional", "Sinusoidal positional encoding", [(f"{NN}.positional", "sinusoidal_table"),
                                                       (f"{NN}.positional", "positional_backward")], [],
       "import numpy as np\n\nfrom minillm import backend", grade_layers.tests_positional),
    _e("attention", "Scaled dot-product attention with masks, forward and backward",
       [(f"{NN}.attention", "scaled_dot_product_attention"),
        (f"{NN}.attention", "scaled_dot_product_attention_backward")],
       ["softmax", "dropout"], "import math\n\nfrom minillm import backend\n"
       "from minillm.nn.attention import AttentionCache, build_mask, check_masks", grade_attention.tests_attention),
    _e("multi_head", "Multi-head split and merge", [(f"{NN}.attention", "split_heads"),
                                                   (f"{NN}.attention", "merge_heads")], ["attention"], "",
       grade_attention.tests_multi_head),
    _e("transformer_block", "Transformer block backward (residuals, pre- and post-LN)",
       [(f"{NN}.transformer", "TransformerBlock.backward")], ["layer_norm", "multi_head", "gelu"], "",
       grade_attention.tests_transformer_block),
    _e("gpt_backward", "GPT backward (a tied weight)", [(f"{MODELS}.gpt", "GPT.backward")],
       ["transformer_block", "embedding"], "from minillm.nn.linear import linear_backward",
       grade_training.tests_gpt_backward),
    _e("lstm_cell", "LSTM cell backward", [(f"{NN}.lstm", "lstm_cell_backward")], ["linear"],
       "from minillm import backend\nfrom minillm.nn.lstm import LSTMCellCache", grade_recurrent.tests_lstm_cell),
    _e("bptt", "Backpropagation through time", [(f"{NN}.lstm", "lstm_backward")], ["lstm_cell"],
       "from minillm import backend\nfrom minillm.nn.lstm import LSTMCache, lstm_cell_backward",
       grade_recurrent.tests_bptt),
    _e("adamw", "One Adam / AdamW step", [("minillm.training.optim", "Adam.update")], [],
       "import math\n\nfrom minillm import backend", grade_training.tests_adamw),
    _e("bpe_merge", "One BPE merge", [("minillm.tokenizers.bpe", "merge_pair")], [], "",
       grade_training.tests_bpe_merge),
    _e("top_p", "Top-k and top-p (nucleus) filtering", [(f"{MODELS}.sampling", "filter_logits")], ["softmax"],
       "import numpy as np", grade_training.tests_top_p),
    _e("kv_cache", "A KV-cache decode step", [(f"{NN}.attention", "use_kv_cache")], ["attention"],
       "from minillm import backend", grade_attention.tests_kv_cache),
)
BY_NAME = {e.name: e for e in EXERCISES}


def select(only=None):
    """The exercises named in ``only`` (a list, or a comma-separated string), in course order; all if None.
    An unknown name is a ValueError listing the known ones."""
    if only is None:
        return list(EXERCISES)
    names = [n.strip() for n in only.split(",")] if isinstance(only, str) else list(only)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        raise ValueError(f"--only: unknown exercise {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"the exercises are {', '.join(BY_NAME)}")
    return [e for e in EXERCISES if e.name in names]
