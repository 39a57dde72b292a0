"""One scale for every expert: a p-value turned into the normal z it corresponds to.

Metric deviations are robust z-scores already; the log, code-region and trace experts test
counts and distributions and report how surprising the result is on the same scale, capped at
MAX_Z (norm.isf of the smallest double: beyond it, every surprise is "certain").
"""

from __future__ import annotations

from scipy.stats import norm

MAX_Z = 37.0


def z_from_p(p_value: float) -> float:
    """The one-sided normal z of a p-value, capped at MAX_Z."""
    return float(min(MAX_Z, norm.isf(max(p_value, 1e-300))))
