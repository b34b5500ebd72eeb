"""What the consistency checks share about numbers: which values count as numbers and counts,
how far a stored value may be from the one recomputed, and the "k hits out of n" rule.

One home, so the results, rows and layers checks cannot drift apart on what a rate may be.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

# How far a stored rate, mean or std may be from the one recomputed (from per_seed, from the
# logged rows, or as a count of hits).
TOLERANCE = 1e-9

# How far a stored mean_curve point may be from the mean of the task curves: a looser bound than
# TOLERANCE, used by that check alone (each task curve's points are held to the hit grid, at
# TOLERANCE, on their own).
CURVE_TOLERANCE = 1e-6


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool (JSON's true is not 1 here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_count(value: Any) -> bool:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_curve(value: Any) -> bool:
    """A list of finite numbers (the schema says so; a hand-made file may not have passed it)."""
    return isinstance(value, list) and all(is_number(v) for v in value)


def on_grid(value: float, total: int) -> bool:
    """Whether `value` is k/total for a whole k (to TOLERANCE): a rate of hits in `total`."""
    return abs(value - round(value * total) / total) <= TOLERANCE


def on_some_grid(value: float, most: int) -> bool:
    """Whether `value` is k/m for some m up to `most`. The nearest fraction with a denominator
    up to `most` is the one to test: one search, however large `most` is."""
    return on_grid(value, Fraction(value).limit_denominator(most).denominator)
