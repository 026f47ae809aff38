"""The three models of the article, GPT (decoder), BERT (encoder) and the LSTM language model; Llama; the
encoder-decoder Transformer."""
from .bert import BERT, BertConfig, BertForMaskedLM, BertForSequenceClassification
from .gpt import GPT, GPTConfig
from .lstm_lm import LSTMLM, LSTMConfig
from .llama import Llama, LlamaConfig
from .seq2seq import Seq2SeqConfig, Seq2SeqTransformer

__all__ = ["GPT", "GPTConfig", "BERT", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
           "LSTMLM", "LSTMConfig", "Llama", "LlamaConfig",
           "Seq2SeqTransformer", "Seq2SeqConfig"]
