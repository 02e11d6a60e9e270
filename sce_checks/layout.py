"""Text tables fitted to a width: a table that fits is laid out as tabulate's "simple" format
(headers, a dashed rule, a line per row); a wider one has its widest columns narrowed and their
cells wrapped, never cutting a word nor narrowing a column under `MIN_COLUMN`; a table that cannot
keep to that is shown as a block of ``header  value`` lines per row. Cells wrap between figures
(``a 0.1 [0.0, 0.3]; b 2``) before they wrap between words. Nothing is cut.

Pure layout over cells already made inert (sce_checks/safe.py: `plain`), below the assertions
(whose failure messages hold the failing examples' table) and the reports (the terminal report,
sce_checks/report/table.py; the baseline comparison's tables).
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from itertools import zip_longest
from typing import Sequence

SEP = "  "  # between columns, as tabulate's "simple" format
MIN_COLUMN = 16  # a narrower column shows a long cell a few characters a line: rows become blocks
MIN_WIDTH = 24  # a narrower terminal is laid out as this wide


def terminal_width() -> int:
    """The terminal's width as pytest reads it (``COLUMNS`` first, 80 when not a terminal, and
    80 for a width under 40), for text written before pytest's writer is at hand."""

    width = shutil.get_terminal_size((80, 24)).columns
    return width if width >= 40 else 80


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: East Asian wide and full-width characters take two,
    combining marks and format characters none."""
    return sum(_char_width(ch) for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _cut(word: str, width: int) -> tuple[str, str]:
    """The longest head of ``word`` that fits ``width`` (at least one character), and the rest."""
    used = 0
    for i, ch in enumerate(word):
        used += _char_width(ch)
        if used > width and i > 0:
            return word[:i], word[i:]
    return word, ""


def _units(text: str) -> list[str]:
    """What `wrap` keeps together when it can: the parts of a list of figures (``a 0.1; b 2``:
    ``a 0.1;`` and ``b 2``), else words."""
    return re.split(r"(?<=;) +", text)


def longest_word(text: str) -> int:
    return max((display_width(word) for word in text.split()), default=0)


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken between the parts of a list of
    figures, else at spaces; only a word longer than ``width`` is cut."""
    if display_width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for unit in _units(text):
        for word in [unit] if display_width(unit) <= width else unit.split():
            candidate = f"{line} {word}" if line else word
            if display_width(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while display_width(word) > width:
                head, word = _cut(word, width)
                lines.append(head)
            line = word
    if line or not lines:
        lines.append(line)
    return lines


def column_widths(natural: Sequence[int], least: Sequence[int], budget: int) -> list[int] | None:
    """Widths of columns whose widest cells take ``natural`` columns and whose longest words take
    ``least``, summing to at most ``budget``: the widest columns are narrowed to a common cap,
    the largest that fits, none below its longest word, and the columns left over are shared
    among the narrowed ones. None when even the longest words do not fit."""
    if sum(natural) <= budget:
        return list(natural)
    if sum(least) > budget:
        return None

    def capped(cap: int) -> list[int]:
        return [max(low, min(w, cap)) for w, low in zip(natural, least)]

    cap = max(natural)
    while sum(capped(cap)) > budget:  # ends: capped(0) is `least`, which fits
        cap -= 1
    widths = capped(cap)
    spare = budget - sum(widths)
    for i, w in enumerate(natural):  # fewer spare columns than columns at the cap (cap + 1 did not fit)
        if spare and widths[i] == cap < w:
            widths[i] += 1
            spare -= 1
    return widths


def fit_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None) -> str:
    """A table of inert ``headers`` and ``rows`` no wider than ``width`` (None: as wide as its
    cells). Too narrow for every column to keep its longest word and `MIN_COLUMN` (or its whole
    width when less): one block of lines per row."""
    columns = [[h, *(row[i] for row in rows)] for i, h in enumerate(headers)]
    natural = [max(display_width(cell) for cell in column) for column in columns]
    if width is None:
        widths: list[int] | None = natural
    else:
        width = max(width, MIN_WIDTH)
        least = [max([min(w, MIN_COLUMN)] + [longest_word(cell) for cell in column]) for w, column in zip(natural, columns)]
        widths = column_widths(natural, least, width - len(SEP) * (len(headers) - 1))
        if widths is None:
            return _blocks(headers, rows, width)
    lines = _row_lines(headers, widths)
    lines.append(SEP.join("-" * w for w in widths))
    body = [_row_lines(row, widths) for row in rows]
    wrapped = any(len(r) > 1 for r in body)
    for i, row_lines in enumerate(body):
        if wrapped and i:
            lines.append("")  # a wrapped row ends where the next begins: a blank line between rows
        lines.extend(row_lines)
    return "\n".join(lines)


def _row_lines(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    columns = [wrap(cell, w) for cell, w in zip(cells, widths)]
    return [SEP.join(_pad(part, w) for part, w in zip(parts, widths)).rstrip()
            for parts in zip_longest(*columns, fillvalue="")]


def _blocks(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> str:
    """Each row as ``header  value`` lines (the values wrapped), rows apart by a blank line."""
    key = min(max(display_width(h) for h in headers), width // 3)
    value = width - key - len(SEP)
    blocks = []
    for row in rows:
        lines = []
        for header, cell in zip(headers, row):
            for k, v in zip_longest(wrap(header, key), wrap(cell, value), fillvalue=""):
                lines.append(f"{_pad(k, key)}{SEP}{v}".rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
