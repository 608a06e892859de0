"""Markdown tables: the one writer every table in the suite (metrics.md, benchmarks, summaries) goes through."""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["to_markdown"]


def to_markdown(table: pd.DataFrame, decimals: int | None = 3, missing: str = "n/a") -> str:
    """A GitHub-flavoured Markdown table (no ``tabulate`` needed).

    Args:
        table: the rows; the index is left out.
        decimals: places shown for floats; None shows 4 significant digits
            (3 below 0.01), for columns of very different scales.
        missing: what NaN and None show.

    Returns:
        The table, one line per row, ending in a newline. Numeric columns are right-aligned.
    """
    header = [str(column) for column in table.columns]
    numeric = [pd.api.types.is_numeric_dtype(table[column]) and
               not pd.api.types.is_bool_dtype(table[column]) for column in table.columns]
    lines = [_markdown_row(header),
             _markdown_row(["---:" if right else "---" for right in numeric])]
    for values in table.itertuples(index=False, name=None):
        lines.append(_markdown_row([_cell(value, decimals, missing) for value in values]))
    return "\n".join(lines) + "\n"


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def _cell(value: Any, decimals: int | None, missing: str) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return missing
        if decimals is None:
            return f"{value:.3g}" if abs(value) < 0.01 else f"{value:.4g}"
        return f"{value:.{decimals}f}"
    if value is None or value is pd.NA:
        return missing
    return str(value)
