"""How the report writes numbers, shares and names: in markdown tables, code spans and plain text."""

from __future__ import annotations

import math
from typing import Any


def count(x: Any) -> str:
    """1234 -> '1,234'; None/NaN -> 'n/a'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{int(x):,}"


def percent(x: float) -> str:
    """A share as a percentage with two decimals ('99.50%'); tiny positive shares as '<0.01%'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if 0 < x < 0.0001:
        return "<0.01%"
    return f"{x * 100:.2f}%"


def number(x: Any) -> str:
    """A gain: four significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{float(x):.4g}"


def seconds(x: Any) -> str:
    """Seconds with one decimal ('1,234.5')."""
    return f"{float(x):,.1f}"


def cell(text: Any) -> str:
    """Escape a cell for a markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def code(text: Any) -> str:
    """``text`` as a markdown code span that survives backticks, pipes and newlines in task names
    (safe inside table cells too)."""
    s = cell(text)
    if "`" not in s:
        return f"`{s}`"
    return f"`` {s} ``"
