"""Gradient checks: each hand-written backward against central finite differences, in float64.

    finite_differences.py  rel_error, check_pair (a forward/backward pair), check_module (a Module)
    suite.py               the cases behind `minillm gradcheck`: every layer, option and model
"""
from .finite_differences import (TOLERANCE, check_arrays, check_module, check_pair, numerical_gradient, random_like,
                                 rel_error)

__all__ = ["TOLERANCE", "check_arrays", "check_module", "check_pair", "numerical_gradient", "random_like", "rel_error"]
