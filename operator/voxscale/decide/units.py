"""Turning a request rate into a whole number of replicas without float surprises."""

from __future__ import annotations

import math

# 0.7 × 20 is 13.999999999999998 in binary floating point, so 28 rps / 14 rps would need
# ceil(2.0000000000000004) = 3 replicas. Rounding the quotient to 9 places first gives 2.
_DIGITS = 9


def ceil_ratio(numerator: float, denominator: float) -> int:
    """ceil(numerator / denominator), robust to binary rounding; negative numerators give 0."""
    if numerator <= 0:
        return 0
    return math.ceil(round(numerator / denominator, _DIGITS))
