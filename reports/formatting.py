"""How the reports write numbers: one place, so the page, captions, leaderboard and console agree.

Accuracies and confidences as percentages with one decimal ("3.0%"), ECE and AURC with three
decimals (two significant digits below 0.001), AUROC with two, uncertainty in nats with three,
eps with three significant digits. Undefined numbers (None, NaN, non-numeric) read "n/a"
("undefined" for an AUROC).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["auroc", "fmt_eps", "nats", "num", "pct", "three"]


def num(value: Any) -> float:
    """A summary value as a float: NaN for None, missing, non-numeric or non-finite values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def fmt_eps(eps: float) -> str:
    """An eps as people write it: 0.1, 0.031, 0."""
    return f"{eps:.3g}"


def pct(value: Any) -> str:
    """A fraction as a percentage, "n/a" when undefined: 0.0312 -> "3.1%"."""
    value = num(value)
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def three(value: Any) -> str:
    """Three decimals ("0.173"); below 0.001 two significant digits ("2.3e-04"), not "0.000"."""
    value = num(value)
    if math.isnan(value):
        return "n/a"
    return f"{value:.1e}" if 0 < abs(value) < 0.001 else f"{value:.3f}"


def auroc(value: Any) -> str:
    """An AUROC with two decimals ("0.87"), "undefined" when it is not defined."""
    value = num(value)
    return "undefined" if math.isnan(value) else f"{value:.2f}"


def nats(value: Any) -> str:
    """An uncertainty in nats with three decimals ("0.173 nats")."""
    value = num(value)
    return "n/a" if math.isnan(value) else f"{value:.3f} nats"
