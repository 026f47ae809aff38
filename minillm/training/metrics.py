"""Scores of predicted sequences against references: exact match, subtoken F1 (code2seq) and BLEU.

For names split into subtokens (``read config file``), per example

    true positives = subtokens of the prediction that are in the reference (each counted as often
                     as it appears in both), false positives = the prediction's others,
    false negatives = the reference's subtokens the prediction missed,

summed over the whole set ("micro" averaging, as Alon et al. 2019), then
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 P R / (P + R).

For sentences, corpus BLEU (Papineni et al. 2002) over whitespace-separated words, one reference
per prediction, n = 1..4:

    p_n  = clipped n-gram matches / n-grams of the predictions, both summed over the corpus
           (a match counts at most as often as the n-gram occurs in the reference)
    BP   = exp(1 - r / c) if c < r else 1    (c, r: the predictions' and references' total words)
    BLEU = 100 * BP * exp(mean_n log p_n)

with sacrebleu's default "exp" smoothing: the k-th order with no match at all gets
p_n = 1 / (2^k * n-grams) instead of 0. It equals sacrebleu.corpus_bleu(..., tokenize="none").
"""
import math
from collections import Counter


def exact_match(predictions, references):
    """The fraction of predictions equal to their reference (strings or token lists)."""
    _check(predictions, references)
    return sum(p == r for p, r in zip(predictions, references)) / max(len(references), 1)


def subtoken_scores(predictions, references):
    """(precision, recall, F1) over subtokens; predictions and references are space-separated strings."""
    _check(predictions, references)
    tp = fp = fn = 0
    for p, r in zip(predictions, references):
        pc, rc = Counter(p.split()), Counter(r.split())
        common = sum((pc & rc).values())
        tp, fp, fn = tp + common, fp + sum(pc.values()) - common, fn + sum(rc.values()) - common
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def ngrams(words, n):
    """The n-grams of a word list, counted: Counter of tuples."""
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(predictions, references, max_order=4):
    """BLEU (0-100) of space-separated predictions against one reference each, as above."""
    _check(predictions, references)
    matches, totals, c, r = [0] * max_order, [0] * max_order, 0, 0
    for p, ref in zip(predictions, references):
        pw, rw = p.split(), ref.split()
        c, r = c + len(pw), r + len(rw)
        for n in range(1, max_order + 1):
            hyp = ngrams(pw, n)
            matches[n - 1] += sum((hyp & ngrams(rw, n)).values())
            totals[n - 1] += sum(hyp.values())
    if not any(matches):
        return 0.0
    log_p, unmatched = [], 0
    for n in range(max_order):
        if totals[n] == 0:                     # no prediction is that long: that order scores 0
            return 0.0
        if matches[n] == 0:
            unmatched += 1
            log_p.append(math.log(1 / (2 ** unmatched * totals[n])))
        else:
            log_p.append(math.log(matches[n] / totals[n]))
    brevity = 1.0 if c >= r else math.exp(1 - r / c)
    return 100 * brevity * math.exp(sum(log_p) / max_order)


def _check(predictions, references):
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
