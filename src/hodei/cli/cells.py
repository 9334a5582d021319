"""How wide text is on a terminal, and cutting it to fit: for tables and the spinner.

A terminal counts cells, not characters: East Asian wide and full-width characters take
two (Unicode UAX #11, ``east_asian_width`` W/F), combining marks none. Lines that are
measured in characters overflow a narrow terminal and wrap, which breaks both a table's
columns and a spinner's ``\\r`` redraw.
"""

from __future__ import annotations

import unicodedata

__all__ = ["clip", "width"]

ELLIPSIS = "…"


def _cells(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """Terminal cells ``text`` takes."""
    return sum(_cells(c) for c in text)


def clip(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` cells, its end replaced by ``…`` when cut."""
    if width(text) <= cells:
        return text
    if cells < 1:
        return ""
    kept, used = [], 1  # one cell for the ellipsis
    for char in text:
        used += _cells(char)
        if used > cells:
            break
        kept.append(char)
    return "".join(kept) + ELLIPSIS
