"""Turning a request rate into a whole number of replicas without float surprises."""

from __future__ import annotations

import math

# 0.7 × 20 is 13.999999999999998 in binary floating point, so 28 rps / 14 rps would need
# ceil(2.0000000000000004) = 3 replicas. Rounding the quotient to 9 places first gives 2.
_DIGITS = 9


_CLEAR = 1e-6
"""A quotient at least this far from a whole number keeps its ceiling through the rounding."""


def ceil_ratio(numerator: float, denominator: float) -> int:
    """ceil(numerator / denominator), robust to binary rounding; negative numerators give 0."""
    if numerator <= 0:
        return 0
    q = numerator / denominator
    if 0.0 <= q < 1e9:
        # round(q, 9) is the double nearest a decimal within 5e-10 of q, so it moves q by less
        # than 1e-9: a q more than 1e-6 from a whole number has the same ceiling either way,
        # and only near-whole quotients pay for round() (~0.4 µs, 3-4 times a tick).
        whole = math.floor(q)
        if _CLEAR < q - whole < 1.0 - _CLEAR:
            return whole + 1
    return math.ceil(round(q, _DIGITS))
