"""Edit distances between an original text and its counterfactual revision.

Closeness of a text SCE (Dehghanighobadi, Fischer and Zafar, EMNLP 2025, arXiv 2502.18156) is
the character-level Levenshtein distance divided by the length of the longer text. We also
offer the same measure over words (how many words were inserted, deleted or replaced, relative
to the longer text's word count) and the list of word-level edits, for the redundancy check.
Both use rapidfuzz (C++; it accepts any sequences of hashables, so word lists need no special
code).

Word tokenisation: ``\\w+(?:'\\w+)*|[^\\w\\s]`` -- runs of letters/digits/underscore, keeping
in-word apostrophes ("don't" is one word), and every other non-space character as its own token;
whitespace only separates. Case is kept ("Good" != "good").
"""

from __future__ import annotations

import re
from typing import Literal

from rapidfuzz.distance import Levenshtein

WORD_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")

Unit = Literal["char", "word"]
EditOp = Literal["replace", "delete", "insert"]


def words(text: str) -> list[str]:
    """The word tokens of ``text`` (see the module docstring for the pattern)."""
    return WORD_PATTERN.findall(text)


def _units(text: str, unit: str) -> str | list[str]:
    if unit == "char":
        return text
    if unit == "word":
        return words(text)
    raise ValueError(f"unit must be 'char' or 'word', not {unit!r}")


def levenshtein(a: str, b: str, unit: Unit = "char") -> int:
    """Plain Levenshtein distance (unit costs for insertion, deletion, substitution)."""
    return int(Levenshtein.distance(_units(a, unit), _units(b, unit)))


def normalized_levenshtein(a: str, b: str, unit: Unit = "char") -> float:
    """Levenshtein distance divided by the length of the longer sequence, in [0, 1]; 0.0 for two
    empty sequences (Dehghanighobadi et al. 2025, closeness)."""
    ua, ub = _units(a, unit), _units(b, unit)
    longer = max(len(ua), len(ub))
    if longer == 0:
        return 0.0
    return Levenshtein.distance(ua, ub) / longer


def changed_words(original: str, revised: str) -> list[tuple[EditOp, int, int]]:
    """The word-level edits turning ``original`` into ``revised``, as rapidfuzz editops:
    ``(op, i, j)`` with ``op`` in replace/delete/insert, ``i`` the index in ``words(original)``
    and ``j`` the index in ``words(revised)`` (for an insert, ``i`` is the position the word goes
    before; for a delete, ``j`` likewise). One op per word, a minimal edit script."""
    ops = Levenshtein.editops(words(original), words(revised))
    return [(op.tag, op.src_pos, op.dest_pos) for op in ops]  # type: ignore[misc]
