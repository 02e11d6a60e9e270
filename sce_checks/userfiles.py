"""Reading the files a user writes (TOML, JSON, any text file): every failure is one
`UserInputError` naming the file, never a traceback. Below every layer that reads a user's file
(config, tasks, regression, the audit files), so none of them imports another for it."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from sce_checks.errors import UserInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def read_user_text(path: str | os.PathLike[str], shown: str | None = None, encoding: str = "utf-8-sig") -> str:
    """A user's file as text; a missing, unreadable or non-UTF-8 file is a `UserInputError`
    naming it (as ``shown``, default the path). A byte-order mark is dropped (editors and
    spreadsheet exports write one), for every kind of file alike. A NUL byte is refused with its
    line: no text format here holds one, and it is what a UTF-16 file without a byte-order mark
    or a binary file looks like when read as UTF-8 (Python's csv module would pass it on)."""
    shown = str(path) if shown is None else shown
    if Path(path).is_dir():
        raise UserInputError(f"{shown}: is a directory, not a file")
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserInputError(f"{shown}: file not found") from None
    except OSError as e:
        raise UserInputError(f"{shown}: cannot read file: {e.strerror or e}") from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise UserInputError(f"{shown}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:
        line, column = text.count("\n", 0, nul) + 1, nul - text.rfind("\n", 0, nul)
        raise UserInputError(f"{shown}:{line}: a NUL byte (column {column}), which no text file holds; "
                             "was it saved as UTF-16 or as a binary file? save it as UTF-8 text")
    return text


# A string in a user's TOML file (an option, a label, a question, a path) is at most this long: a
# runaway value would be sent to the model in every prompt. The texts of a text task live in its
# data file and have their own bound (sce_checks/tasks/text.py, MAX_TEXT_CHARS).
MAX_TOML_STRING_CHARS = 10_000


def _check_string_lengths(doc: Any, shown: str) -> None:
    """Every string of a parsed TOML document within `MAX_TOML_STRING_CHARS`, else one line
    naming the key (``features[0].label``)."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, str) and len(value) > MAX_TOML_STRING_CHARS:
            raise UserInputError(f"{shown}: {key}: a string of {len(value):,} characters "
                                 f"(at most {MAX_TOML_STRING_CHARS:,})")
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{key}[{i}]", v) for i, v in enumerate(value))


def read_toml(path: str | os.PathLike[str], shown: str | None = None) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a `UserInputError` that names the file
    (and, for syntax errors, the line: tomllib puts ``(at line L, column C)`` in its message).
    Integers past Python's digit limit, runaway nesting and strings over
    `MAX_TOML_STRING_CHARS` are refused the same way."""
    shown = os.fspath(path) if shown is None else shown
    text = read_user_text(path, shown)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserInputError(f"{shown}: invalid TOML: {e}") from None
    except ValueError as e:  # an integer of more than 4,300 digits
        raise UserInputError(f"{shown}: invalid TOML: {_one_line(e)}") from None
    except RecursionError:
        raise UserInputError(f"{shown}: invalid TOML: arrays or tables nested too deeply") from None
    _check_string_lengths(doc, shown)
    return doc


# User JSON (JSONL rows, baselines, run specifications) is read strictly and within bounds: a
# number longer than this many digits, or nesting past Python's recursion limit, is refused with
# the file and line instead of escaping as ValueError or RecursionError.
MAX_JSON_DIGITS = 30


class _LongNumber(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise _LongNumber(f"a number of {len(text.lstrip('-')):,} digits (at most {MAX_JSON_DIGITS})")
    return int(text)


def _bounded_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _LongNumber(f"the number {text[:40]}{'...' if len(text) > 40 else ''} is out of range")
    return value


def read_json(text: str, where: str) -> Any:
    """A JSON value a user wrote, as data: syntax errors, over-long or out-of-range numbers and
    runaway nesting are one `UserInputError` naming ``where`` (``file:line`` for a JSONL row).
    ``NaN`` and ``Infinity`` are read as floats; callers that need finite numbers check them,
    naming the key."""
    try:
        return json.loads(text, parse_int=_bounded_int, parse_float=_bounded_float)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno} column {e.colno}" if "\n" in text.strip() else f"column {e.colno}"
        raise UserInputError(f"{where}: invalid JSON: {e.msg} ({at})") from None
    except _LongNumber as e:
        raise UserInputError(f"{where}: invalid JSON: {e}") from None
    except ValueError as e:  # any other refusal of the decoder
        raise UserInputError(f"{where}: invalid JSON: {_one_line(e)}") from None
    except RecursionError:
        raise UserInputError(f"{where}: invalid JSON: arrays or objects nested too deeply") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
