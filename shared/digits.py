"""Whole numbers as our protocols and settings spell them: ASCII digits only.

`str.isdigit` also says yes to '¹' (which `int` then refuses: a 500) and to other scripts'
digits, and `int` takes those and `_` separators too; neither OSS nor we mean any of them. Every
number read from a request, a reply, a callback body or a setting goes through here.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")


def is_digits(text: str) -> bool:
    """One or more ASCII digits, nothing else."""
    return _DIGITS.fullmatch(text) is not None


def whole_number(text: str | None, *, max_digits: int = 19) -> int | None:
    """`text` as an int when it is 1 to `max_digits` ASCII digits, else None."""
    if text is None or len(text) > max_digits or not is_digits(text):
        return None
    return int(text)


def in_range(text: str | None, low: int, high: int, *, max_digits: int = 19) -> int | None:
    """`whole_number(text)` when it lies in [low, high], else None."""
    value = whole_number(text, max_digits=max_digits)
    return value if value is not None and low <= value <= high else None
