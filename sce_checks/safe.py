"""Model text made safe to show: every human-readable report renders replies, explanations and
reasons a model (or a dataset) wrote, so each cell goes through one of these before it is laid out.

* `plain` (terminal, and the first step of the others): no control characters. ANSI escape
  sequences are removed whole (a reply cannot clear the screen, move the cursor or print a
  coloured fake PASS), line breaks and tabs become spaces (a reply cannot start a table row of
  its own or overwrite one with ``\\r``), other C0/C1 controls, Unicode bidirectional overrides
  and isolates (which reorder what a reader sees) and lone surrogates (which no terminal or file
  can encode) are dropped.
* `markdown_text`: `plain`, then HTML escaped (GitHub renders raw HTML in Markdown, also in
  ``$GITHUB_STEP_SUMMARY``) and Markdown's inline syntax escaped (no link, image, emphasis, code
  span or table-cell break comes from model text).
* HTML reports use `plain` then ``html.escape``.

A low module (it imports nothing of the package): the checks' table cells and the assertion
messages pytest prints go through `plain` too (sce_checks/cells.py).
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

# CSI (ESC [ ... final, or the one-byte C1 CSI), OSC/DCS/PM/APC/SOS strings (up to BEL or ST), and
# two-character escapes (ESC followed by one byte in @-_ or a charset designation).
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[()*+][ -~]?"
    r"|\x1b[ -~]?"
)
_BREAKS = "\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def _kept(ch: str) -> str:
    if ch in _BREAKS:
        return " "
    if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs"):
        return ""
    return ch


def plain(value: Any) -> str:
    """``value`` as one line of inert text (see the module docstring)."""
    text = _ANSI.sub("", str(value))
    if text.isprintable():  # the usual case: nothing to drop or replace
        return text
    return "".join(_kept(ch) for ch in text)


def markdown_text(value: Any) -> str:
    """``value`` as inert inline Markdown: `plain`, HTML escaped, Markdown syntax escaped."""
    return _MARKDOWN.sub(r"\\\1", html.escape(plain(value), quote=False))


def html_text(value: Any) -> str:
    """``value`` as inert HTML text: `plain`, then HTML escaped (quotes too: safe in attributes)."""
    return html.escape(plain(value))
