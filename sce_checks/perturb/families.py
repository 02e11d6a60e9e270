"""INV edit families: the label-preserving edits of invariance tests (CheckList INV, Ribeiro et al.
2020) and the candidate lists the checks and `sce_checks.strategies` draw from.

Why a module of its own: each family (typo, case, punctuation, neutral sentence, synonym) is a
generator of candidate edits for one text, and `candidates` / `CANDIDATE_FUNCTIONS` are the one
place that maps a family name to its generator (insertions included, from insertions.py).

*Order.* Every ``*_candidates`` function returns its edits in a fixed order (by character offset,
then kind, then word-list order), so hypothesis, which shrinks towards the first element, reports
the earliest and smallest edit.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

from sce_checks.perturb.edits import FAMILIES, LABEL_PRESERVING_FAMILIES, Edit, _ends, _make_edit, match_case, word_spans
from sce_checks.perturb.insertions import insertion_candidates
from sce_checks.perturb.tagging import tag_words
from sce_checks.perturb.wordlists import neutral_sentence_list, synonym_table

__all__ = [
    "CANDIDATE_FUNCTIONS",
    "candidates",
    "case_candidates",
    "neutral_sentence_candidates",
    "punctuation_candidates",
    "synonym_candidates",
    "typo_candidates",
]


# --- label-preserving edits -------------------------------------------------------------------

_TYPO_MIN_LETTERS = 4  # typos only in words longer than 3 letters


def typo_candidates(text: str) -> list[Edit]:
    """One-letter typos inside alphabetic words of 4+ letters: swap two adjacent (different)
    letters, delete a letter, double a letter. Word by word, then swaps, deletions,
    duplications, left to right; an edit giving the same word as an earlier one is dropped."""
    words = word_spans(text)
    ends = _ends(words)
    out: list[Edit] = []
    for w in words:
        s = w.text
        if len(s) < _TYPO_MIN_LETTERS or not s.isalpha():
            continue
        variants: list[tuple[str, str]] = []
        variants += [("typo_swap", s[:i] + s[i + 1] + s[i] + s[i + 2:]) for i in range(len(s) - 1) if s[i] != s[i + 1]]
        variants += [("typo_delete", s[:i] + s[i + 1:]) for i in range(len(s))]
        variants += [("typo_duplicate", s[:i] + s[i] + s[i:]) for i in range(len(s))]
        seen: set[str] = set()
        for kind, new in variants:
            if new not in seen:
                seen.add(new)
                out.append(_make_edit(kind, words, ends, w.start, w.end, s, new, new))
    return out


def case_candidates(text: str) -> list[Edit]:
    """Re-case one word: lower-case, capitalise, upper-case (those that change it), word by word."""
    words = word_spans(text)
    ends = _ends(words)
    out: list[Edit] = []
    for w in words:
        s = w.text
        forms = [("case_lower", s.lower()), ("case_title", s[:1].upper() + s[1:].lower()), ("case_upper", s.upper())]
        seen = {s}
        for kind, new in forms:
            if new not in seen:
                seen.add(new)
                out.append(_make_edit(kind, words, ends, w.start, w.end, s, new, new))
    return out


# A comma before these words is ordinary English ("I liked it, but ...").
_COMMA_BEFORE = frozenset("and but or so yet because although though while whereas which".split())


def punctuation_candidates(text: str) -> list[Edit]:
    """Punctuation-only edits, by offset: add a comma before a conjunction that has none, remove
    a comma between two words, add a final period to a text ending in a word, remove a single
    final period (never an ellipsis, never from a text without words)."""
    words = word_spans(text)
    if not words:
        return []
    ends = _ends(words)
    out: list[Edit] = []
    for prev, w in zip(words, words[1:]):
        gap = text[prev.end:w.start]
        if w.text.lower() in _COMMA_BEFORE and gap and not gap.strip():
            out.append(_make_edit("punct_add_comma", words, ends, prev.end, prev.end, "", ","))
    for m in re.finditer(r"(?<=\w),(?=\s+\w)", text):
        out.append(_make_edit("punct_remove_comma", words, ends, m.start(), m.end(), ",", ""))
    end = len(text.rstrip())
    last = text[end - 1]
    if last.isalnum():
        out.append(_make_edit("punct_add_period", words, ends, end, end, "", "."))
    elif last == "." and not text[:end].endswith(".."):
        out.append(_make_edit("punct_remove_period", words, ends, end - 1, end, ".", ""))
    return sorted(out, key=lambda e: e.start)


def neutral_sentence_candidates(text: str, sentences: Sequence[str] | None = None) -> list[Edit]:
    """Insert a content-free sentence at the start of the text or after any sentence-final
    ``.``, ``!`` or ``?`` (including the text's end when it has one); by offset, then sentence
    list order. Defaults: the bundled sentences."""
    pool = tuple(neutral_sentence_list() if sentences is None else sentences)
    if not text.strip():
        return []
    words = word_spans(text)
    ends = _ends(words)
    out = [_make_edit("neutral_sentence", words, ends, 0, 0, "", s + " ") for s in pool]
    for m in re.finditer(r"[.!?]+(?=\s|$)", text):
        out += [_make_edit("neutral_sentence", words, ends, m.end(), m.end(), "", " " + s) for s in pool]
    return out


def synonym_candidates(text: str, table: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> list[Edit]:
    """Swap a word for a listed synonym where the word has the pair's part of speech: for NOUN
    and VERB the contextual role of `tag_words` must match ('film' is swapped in "the film", not
    in "to film it"), for ADJ and ADV the lexicon must list the tag. The synonym takes the
    word's capitalisation. Defaults: the bundled table (data/words/synonyms.tsv)."""
    pairs = synonym_table() if table is None else table
    words = word_spans(text)
    ends = _ends(words)
    out: list[Edit] = []
    for tw in tag_words(text):
        w = tw.word
        for synonym, pos in pairs.get(w.text.lower(), ()):
            fits = tw.role == pos if pos in ("NOUN", "VERB") else pos in tw.tags
            if fits:
                new = match_case(synonym, w.text)
                out.append(_make_edit("synonym", words, ends, w.start, w.end, w.text, new, new))
    return out


CANDIDATE_FUNCTIONS: dict[str, Callable[[str], list[Edit]]] = {
    "insertion": insertion_candidates,
    "typo": typo_candidates,
    "case": case_candidates,
    "punctuation": punctuation_candidates,
    "neutral_sentence": neutral_sentence_candidates,
    "synonym": synonym_candidates,
}


def candidates(text: str, families: Sequence[str] = LABEL_PRESERVING_FAMILIES) -> list[Edit]:
    """The candidate edits of the given families (default: the label-preserving ones), family by
    family in the order given, each in its own order."""
    out: list[Edit] = []
    for family in families:
        if family not in CANDIDATE_FUNCTIONS:
            raise ValueError(f"unknown perturbation family {family!r}; known: {', '.join(FAMILIES)}")
        out += CANDIDATE_FUNCTIONS[family](text)
    return out
