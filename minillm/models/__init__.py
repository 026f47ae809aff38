"""The three models of the article: GPT (decoder), BERT (encoder), and the LSTM language model."""
from .bert import BERT, BertConfig, BertForMaskedLM, BertForSequenceClassification
from .gpt import GPT, GPTConfig
from .lstm_lm import LSTMLM, LSTMConfig

__all__ = ["GPT", "GPTConfig", "BERT", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
           "LSTMLM", "LSTMConfig"]
