"""The three models of the article, GPT (decoder), BERT (encoder) and the LSTM language model, and Llama."""
from .bert import BERT, BertConfig, BertForMaskedLM, BertForSequenceClassification
from .gpt import GPT, GPTConfig
from .lstm_lm import LSTMLM, LSTMConfig
from .llama import Llama, LlamaConfig

__all__ = ["GPT", "GPTConfig", "BERT", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
           "LSTMLM", "LSTMConfig", "Llama", "LlamaConfig"]
