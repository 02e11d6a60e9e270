"""Edit algebra: the kinds of edit, words with their character spans, and the `Edit` every text
perturbation of `sce_checks.perturb` is.

Why a module of its own: the insertions (insertions.py), the INV edit families (families.py), the
checks and the hypothesis strategies all make, combine and report edits of this one type, so an
edit can be applied, described, checked for conflicts and reverted without knowing which
generator made it. `KINDS` is the catalogue of edit kinds and what each is assumed to preserve.

*Edits.* Every text perturbation is an `Edit`: replace the character span ``[start, end)`` of the
original text (``old``) by ``new``. Everything outside the span stays byte-identical, so an edit
can be applied, described and reverted exactly. ``position`` is the number of words of the
original text that end at or before ``start``: the index of the word the edit changes, or of the
word it is inserted before (``len(words)`` past the last word).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

from sce_checks.metrics.text_distance import WORD_PATTERN

__all__ = [
    "FAMILIES",
    "KINDS",
    "LABEL_PRESERVING_FAMILIES",
    "Edit",
    "Kind",
    "Perturbed",
    "Word",
    "apply_edits",
    "conflicts",
    "match_case",
    "perturb",
    "word_spans",
]


# --- kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of edit and what it is assumed to preserve."""

    name: str
    family: str
    label_preserving: bool  # may an INV test expect the model's label to stay the same?
    summary: str  # what the edit does, for `Edit.describe`
    preserves: str  # what the edit keeps, for reports and docs


_KIND_LIST: tuple[Kind, ...] = (
    Kind("insert_adjective", "insertion", False, "insert an adjective before a noun",
         "grammaticality only; the label is NOT assumed to survive (the CT intervention)"),
    Kind("insert_adverb", "insertion", False, "insert an adverb before a verb",
         "grammaticality only; the label is NOT assumed to survive (the CT intervention)"),
    Kind("typo_swap", "typo", True, "typo: swap two adjacent letters", "the label (one word misspelt)"),
    Kind("typo_delete", "typo", True, "typo: delete a letter", "the label (one word misspelt)"),
    Kind("typo_duplicate", "typo", True, "typo: double a letter", "the label (one word misspelt)"),
    Kind("case_lower", "case", True, "lower-case a word", "the label (only letter case changes)"),
    Kind("case_title", "case", True, "capitalise a word", "the label (only letter case changes)"),
    Kind("case_upper", "case", True, "upper-case a word", "the label (only letter case changes)"),
    Kind("punct_add_period", "punctuation", True, "add a final period", "the label and every word"),
    Kind("punct_remove_period", "punctuation", True, "remove the final period", "the label and every word"),
    Kind("punct_add_comma", "punctuation", True, "add a comma before a conjunction", "the label and every word"),
    Kind("punct_remove_comma", "punctuation", True, "remove a comma", "the label and every word"),
    Kind("neutral_sentence", "neutral_sentence", True, "insert a content-free sentence",
         "the label and all original text (a sentence is added around it)"),
    Kind("synonym", "synonym", True, "swap a word for a synonym", "the label (an interchangeable, sentiment-neutral word)"),
)
KINDS: dict[str, Kind] = {k.name: k for k in _KIND_LIST}
FAMILIES: tuple[str, ...] = ("insertion", "typo", "case", "punctuation", "neutral_sentence", "synonym")
# Smallest edits first: `strategies.label_preserving` shrinks towards the first family.
LABEL_PRESERVING_FAMILIES: tuple[str, ...] = ("punctuation", "case", "typo", "synonym", "neutral_sentence")


# --- words and edits --------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    """A word of a text with its exact character span: ``text == source[start:end]``."""

    text: str
    start: int
    end: int
    index: int  # position among the words of the source text


def word_spans(text: str) -> list[Word]:
    """The words of ``text`` with their spans, tokenised like `sce_checks.metrics.text_distance`
    (runs of letters/digits keeping in-word apostrophes: "don't" is one word); punctuation and
    whitespace are not words."""
    out: list[Word] = []
    for m in WORD_PATTERN.finditer(text):
        tok = m.group()
        if tok[0].isalnum() or tok[0] == "_":
            out.append(Word(tok, m.start(), m.end(), len(out)))
    return out


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` at ``[start, end)`` of the original text by ``new``.

    ``position``: index of the first word ending after ``start`` (the word changed, or the word
    inserted before; the word count past the last word); ``target``: that word ('' past the end);
    ``word``: the word this edit brings in (the inserted adjective or adverb, the synonym, the
    misspelt or re-cased form; '' for punctuation and sentences): what a CT explanation must
    mention."""

    kind: str
    start: int
    end: int
    old: str
    new: str
    position: int
    target: str = ""
    word: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown edit kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not 0 <= self.start <= self.end or self.end - self.start != len(self.old):
            raise ValueError(f"edit span {self.start}:{self.end} does not fit old text {self.old!r}")

    @property
    def family(self) -> str:
        return KINDS[self.kind].family

    @property
    def label_preserving(self) -> bool:
        return KINDS[self.kind].label_preserving

    @property
    def preserves(self) -> str:
        return KINDS[self.kind].preserves

    def apply(self, text: str) -> str:
        """The edited text; ValueError when ``text`` does not hold ``old`` at the edit's span
        (the edit was made for another text)."""
        found = text[self.start:self.end]
        if len(text) < self.end or found != self.old:
            raise ValueError(f"edit does not apply ({self.describe()}): the text has {found!r} at {self.start}:{self.end}")
        return text[:self.start] + self.new + text[self.end:]

    def describe(self) -> str:
        """One line for reports, e.g. ``insert an adjective before a noun: '' -> 'big ' at
        chars 4-4, word 1 ('dog')``."""
        where = f"at chars {self.start}-{self.end}, word {self.position}"
        if self.target:
            where += f" ({self.target!r})"
        return f"{KINDS[self.kind].summary}: {self.old!r} -> {self.new!r} {where}"


def conflicts(a: Edit, b: Edit) -> bool:
    """Whether two edits of one text cannot both be applied unambiguously: their spans overlap,
    or an insertion (empty span) touches the other edit's span."""
    if a.start == a.end or b.start == b.end:
        return a.start <= b.end and b.start <= a.end
    return a.start < b.end and b.start < a.end


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Apply several edits of the same original text (spans refer to ``text``); ValueError when
    two of them conflict."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    for a, b in zip(ordered, ordered[1:]):
        if conflicts(a, b):
            raise ValueError(f"conflicting edits: {a.describe()} / {b.describe()}")
    for e in reversed(ordered):
        text = e.apply(text)
    return text


@dataclass(frozen=True)
class Perturbed:
    """An original text, its perturbed version and the edits between them (sorted by start):
    what the strategies draw, so that a failing example shows all three."""

    original: str
    text: str
    edits: tuple[Edit, ...]

    @property
    def edit(self) -> Edit:
        """The only edit (ValueError when there are several)."""
        if len(self.edits) != 1:
            raise ValueError(f"{len(self.edits)} edits, not one")
        return self.edits[0]

    @property
    def label_preserving(self) -> bool:
        return all(e.label_preserving for e in self.edits)

    def describe(self) -> str:
        return "; ".join(e.describe() for e in self.edits)


def perturb(text: str, edits: Sequence[Edit]) -> Perturbed:
    """Apply ``edits`` to ``text`` and keep all three together."""
    ordered = tuple(sorted(edits, key=lambda e: (e.start, e.end)))
    return Perturbed(text, apply_edits(text, ordered), ordered)


def _make_edit(kind: str, words: list[Word], ends: list[int], start: int, end: int, old: str, new: str,
               word: str = "") -> Edit:
    position = bisect.bisect_right(ends, start)
    target = words[position].text if position < len(words) else ""
    return Edit(kind, start, end, old, new, position, target, word)


def _ends(words: list[Word]) -> list[int]:
    return [w.end for w in words]


def match_case(word: str, like: str) -> str:
    """``word`` with the capitalisation of ``like`` (ALL CAPS, Capitalised or as given)."""
    if len(like) > 1 and like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
