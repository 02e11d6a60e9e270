"""The terminal report, fitted to the terminal's width: a table that fits is laid out as
tabulate's "simple" format (headers, a dashed rule, a line per row); a wider one has its widest
columns narrowed and their cells wrapped; one that cannot keep its columns readable
(`MIN_COLUMN`) is shown as a block of ``header  value`` lines per row. Nothing is cut: the cells
the checks give are short already (model text is cut at 60 characters, report/summary.py:
`short`), and the whole text is in the JSON report. Every header, cell, note and title passes
through ``text`` (report/safe.py), since replies and explanations a model wrote end up in them.
"""

from __future__ import annotations

import unicodedata
from itertools import zip_longest
from typing import Any, Callable, Sequence

from tabulate import tabulate

from sce_checks.report.safe import plain
from sce_checks.report.summary import example_tables, notes, result_tables
from sce_checks.results import CheckResult

SEP = "  "  # between columns, as tabulate's "simple" format
MIN_COLUMN = 10  # narrower columns would cut most headers and figures into pieces: rows become blocks
MIN_WIDTH = 24  # a narrower terminal is laid out as this wide


def terminal_width() -> int:
    """The terminal's width as pytest reads it (``COLUMNS`` first, 80 when not a terminal, and
    80 for a width under 40), for text written before pytest's writer is at hand."""
    import shutil

    width = shutil.get_terminal_size((80, 24)).columns
    return width if width >= 40 else 80


def safe_table(rows: Sequence[Sequence[Any]], headers: Sequence[Any], tablefmt: str,
               text: Callable[[Any], str] = plain) -> str:
    """``tabulate`` over cells made inert by ``text`` (Markdown's tables, the baseline's)."""
    return tabulate([[text(c) for c in row] for row in rows], headers=[text(h) for h in headers],
                    tablefmt=tablefmt, disable_numparse=True)


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


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken at spaces; a longer word is cut."""
    if display_width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split():
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


def column_widths(natural: Sequence[int], budget: int) -> list[int] | None:
    """Widths of columns whose widest cells take ``natural`` columns, summing to at most
    ``budget``: the widest columns are narrowed to a common cap, the largest that fits, and the
    columns left are shared among them. None when the cap would be under `MIN_COLUMN`."""
    if sum(natural) <= budget:
        return list(natural)
    cap = max(natural)
    while sum(min(w, cap) for w in natural) > budget:
        cap -= 1
        if cap < MIN_COLUMN:
            return None
    widths = [min(w, cap) for w in natural]
    spare = budget - sum(widths)
    for i, w in enumerate(natural):  # fewer spare columns than narrowed ones (cap + 1 did not fit)
        if spare and w > cap:
            widths[i] += 1
            spare -= 1
    return widths


def fit_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None) -> str:
    """A table of inert ``headers`` and ``rows`` no wider than ``width`` (None: as wide as its
    cells). Too narrow to keep every column `MIN_COLUMN` wide: one block of lines per row."""
    natural = [max([display_width(h)] + [display_width(row[i]) for row in rows]) for i, h in enumerate(headers)]
    if width is None:
        widths: list[int] | None = natural
    else:
        width = max(width, MIN_WIDTH)
        widths = column_widths(natural, width - len(SEP) * (len(headers) - 1))
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


def fit_line(line: str, width: int | None) -> str:
    """A note or title: wrapped to ``width``, its continuation lines indented."""
    if width is None:
        return line
    width = max(width, MIN_WIDTH)
    first, *rest = wrap(line, width)
    if not rest:
        return first
    return "\n".join([first] + ["  " + part for part in wrap(" ".join(rest), width - 2)])


def render_table(results: Sequence[CheckResult], *, examples: int = 3, skipped: Sequence[str] = (),
                 width: int | None = None) -> str:
    """The terminal report: the SCE table, the table of the other checks, notes (unparsed
    outputs, checks that could not run), then the worst examples of each result; no line wider
    than ``width`` (None: no limit), every piece inert."""
    if not results and not skipped:
        return "sce-checks: no results."
    from sce_checks.checks import unit_of

    def table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
        return fit_table([plain(h) for h in headers], [[plain(c) for c in row] for row in rows], width)

    parts = [table(headers, rows) for headers, rows in result_tables(results)]
    lines = notes(results, skipped)
    if lines:
        parts.append("\n".join(fit_line(plain(line), width) for line in lines))
    if examples:
        for r in results:
            for title, headers, rows in example_tables(r, examples):
                parts.append(fit_line(plain(f"{title}: {r.model} / {r.dataset} / {unit_of(r)}"), width) + "\n"
                             + table(headers, rows))
    return "\n\n".join(parts)
