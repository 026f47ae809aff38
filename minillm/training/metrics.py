"""Scores of predicted sequences against references: exact match and subtoken F1 (code2seq).

For names split into subtokens (``read config file``), per example

    true positives = subtokens of the prediction that are in the reference (each counted as often
                     as it appears in both), false positives = the prediction's others,
    false negatives = the reference's subtokens the prediction missed,

summed over the whole set ("micro" averaging, as Alon et al. 2019), then
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 P R / (P + R).
"""
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


def _check(predictions, references):
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
