"""Choosing the next token from the last position's logits.

logits: (B, V) -> next ids: (B,)

    temperature  p = softmax(logits / temperature): < 1 sharpens, > 1 flattens
    top_k        keep the k largest logits, drop the rest
    top_p        keep the smallest set of tokens whose probabilities add up to >= top_p
                 ("nucleus sampling", Holtzman et al. 2019)
    greedy       argmax (do_sample=False): deterministic, temperature is irrelevant
"""
import math
import numbers

import numpy as np

from .. import backend


def check_sampling_options(temperature, top_k, top_p):
    """ValueError or TypeError naming the option unless temperature is a finite number > 0, top_k an
    integer >= 1 and top_p a number in (0, 1] (None: unused). NaN fails every comparison, so each
    test is written to be true only for a good value."""
    if not (_is_number(temperature) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r} "
                         "(use greedy decoding for argmax)")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
            raise TypeError(f"top_k must be an integer >= 1 or None, got {top_k!r}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not (_is_number(top_p) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1], got {top_p!r}")


def check_generate_options(max_new_tokens, seed):
    """TypeError or ValueError naming the argument unless max_new_tokens is an integer >= 0 and
    seed an integer >= 0 or None."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral):
        raise TypeError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    backend.check_seed(seed, allow_none=True)


def _is_number(value):
    """A real number that is not a bool (True would pass as temperature 1)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def filter_logits(logits, top_k=None, top_p=None):
    """Set the logits outside the top-k / top-p set to -inf. logits: (B, V) float64."""
    logits = logits.copy()
    if top_k is not None and top_k < logits.shape[1]:
        kth = np.sort(logits, axis=1)[:, -top_k][:, None]
        logits[logits < kth] = -np.inf
    if top_p is not None and top_p < 1:
        order = np.argsort(-logits, axis=1)
        sorted_logits = np.take_along_axis(logits, order, axis=1)
        p = np.exp(sorted_logits - sorted_logits[:, :1])
        p /= p.sum(axis=1, keepdims=True)
        cum = np.cumsum(p, axis=1)
        drop_sorted = cum - p >= top_p           # tokens after the set already reached top_p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=1)
        logits[drop] = -np.inf
    return logits


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, do_sample=True, rng=None):
    """One id per row of logits (B, V)."""
    check_sampling_options(temperature, top_k, top_p)
    logits = np.asarray(logits, dtype=np.float64)
    if not do_sample:
        return logits.argmax(axis=1)
    # softmax(z / T) is unchanged by subtracting max z first; then z - max <= 0, so even a tiny T
    # gives -inf or 0 rather than inf - inf (NaN)
    with np.errstate(over="ignore"):                 # z - max < 0 over a tiny T is -inf: the right limit
        scaled = (logits - logits.max(axis=1, keepdims=True)) / temperature
    logits = filter_logits(scaled, top_k, top_p)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rng = rng or np.random.default_rng()
    return np.array([rng.choice(len(row), p=row) for row in p])
