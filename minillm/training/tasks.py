"""Tasks: what a batch is and how its loss is computed, for each kind of training.

A task has ``batch(split, rng)``, ``loss(model, batch) -> float`` (forward + loss, keeping the
caches) and ``backward(model)`` (the loss seed dL/dlogits, then the model's backward), plus
``tokens_per_batch`` for the tokens/s figure. The Trainer only calls these four.

LMTask         next-token prediction (GPT, LSTM LM): x = tokens[t..t+T-1], y = tokens[t+1..t+T]
MLMTask        BERT masked-LM: 15 % of tokens corrupted, loss only on those positions
ClassifyTask   BERT sequence classification on [CLS], padded batches with a key-padding mask
"""
import numpy as np

from .. import backend
from .data import get_batch, mask_tokens
from ..nn import CrossEntropyLoss


class LMTask:
    """Next-token prediction (GPT, LSTM LM): random windows of a token stream, cross-entropy of the next token."""

    def __init__(self, train_ids, val_ids, block_size, batch_size):
        self.data = {"train": train_ids, "val": val_ids}
        self.block_size, self.batch_size = block_size, batch_size
        self.loss_fn = CrossEntropyLoss()
        for split, ids in self.data.items():
            if len(ids) <= block_size:
                raise ValueError(f"the {split} split has {len(ids)} tokens, fewer than block_size + 1 = "
                                 f"{block_size + 1}; use a longer text or a smaller --block-size")

    @property
    def tokens_per_batch(self):
        """Tokens that one batch feeds the model: block_size * batch_size."""
        return self.block_size * self.batch_size

    def batch(self, split, rng):
        """batch_size random windows of the split: x (B, T) and y = x shifted left by one token."""
        return get_batch(self.data[split], self.block_size, self.batch_size, rng)

    def loss(self, model, batch):
        """Mean next-token cross-entropy of x (B, T) against y (B, T) as a Python float."""
        x, y = batch
        return float(self.loss_fn(model(x), y))

    def backward(self, model):
        """Run the model's backward from dL/dlogits = (softmax - one_hot) / (B*T) of the last loss()."""
        model.backward(self.loss_fn.backward())


class MLMTask(LMTask):
    """Windows of the token stream after [CLS]; 15 % of the rest masked (80/10/10)."""

    def __init__(self, train_ids, val_ids, block_size, batch_size, tokenizer):
        super().__init__(train_ids, val_ids, block_size, batch_size)
        self.cls_id, self.mask_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[MASK]")
        self.special = list(tokenizer.special_tokens.values())
        self.vocab_size = tokenizer.vocab_size
        self.loss_fn = CrossEntropyLoss(ignore_index=-100)

    def batch(self, split, rng):
        """[CLS] + block_size - 1 tokens, masked: inputs (B, block_size), labels (B, block_size),
        -100 at the positions that are not predicted."""
        x, _ = get_batch(self.data[split], self.block_size - 1, self.batch_size, rng)
        ids = np.concatenate([np.full((self.batch_size, 1), self.cls_id), backend.to_numpy(x)], axis=1)
        inputs, labels = mask_tokens(ids, rng, self.mask_id, self.vocab_size, self.special)
        return backend.to_device(inputs), backend.to_device(labels)


def encode_examples(examples, tokenizer, max_len):
    """[(text, label)] -> ids (N, max_len) as [CLS] text [PAD]..., key-padding mask (N, max_len), labels (N,)."""
    cls_id, pad_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[PAD]")
    ids = np.full((len(examples), max_len), pad_id, dtype=np.int64)
    for i, (text, _) in enumerate(examples):
        toks = [cls_id] + tokenizer.encode(text)[: max_len - 1]
        ids[i, :len(toks)] = toks
    return ids, ids == pad_id, np.array([label for _, label in examples], dtype=np.int64)


class ClassifyTask:
    """Sequence classification: random batches for training, the whole split in order for evaluation."""

    def __init__(self, train_examples, test_examples, tokenizer, max_len, batch_size):
        self.data = {"train": encode_examples(train_examples, tokenizer, max_len),
                     "val": encode_examples(test_examples, tokenizer, max_len)}
        self.batch_size, self.max_len = batch_size, max_len
        self.loss_fn = CrossEntropyLoss()

    @property
    def tokens_per_batch(self):
        """Tokens (padding included) that one batch feeds the model."""
        return self.batch_size * self.max_len

    def batch(self, split, rng):
        """batch_size random examples of the split: ids (B, max_len), padding mask (B, max_len), labels (B,)."""
        ids, pad, labels = self.data[split]
        pick = rng.integers(0, len(ids), size=self.batch_size)
        return backend.to_device(ids[pick]), backend.to_device(pad[pick]), backend.to_device(labels[pick])

    def loss(self, model, batch):
        """Mean cross-entropy of the batch's labels from the logits (B, num_labels) of the [CLS] head."""
        ids, pad, labels = batch
        return float(self.loss_fn(model(ids, key_padding_mask=pad), labels))

    def backward(self, model):
        """Run the model's backward from dL/dlogits (B, num_labels) of the last loss()."""
        model.backward(self.loss_fn.backward())

    def accuracy(self, model, split="val"):
        """Fraction of the split classified correctly (eval mode, in batches)."""
        ids, pad, labels = self.data[split]
        was_training = model.training
        model.eval()
        correct = 0
        for s in range(0, len(ids), 64):
            logits = model(backend.to_device(ids[s:s + 64]), key_padding_mask=backend.to_device(pad[s:s + 64]))
            correct += int((backend.to_numpy(logits).argmax(axis=1) == labels[s:s + 64]).sum())
        model.cache = None
        model.train(was_training)
        return correct / len(ids)
