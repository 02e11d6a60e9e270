"""Input perturbations: deterministic, pure-Python edits of a text or a grid point.

The single source of truth for edits used by the invariance / directional tests (CheckList INV
and DIR, Ribeiro et al. 2020), the counterfactual insertion tests CT / CCT / phi-CCT (Atanasova
et al. 2023; Siegel et al. 2024, 2025), SCE stability checks, and users' own hypothesis tests
(`sce_checks.strategies` draws from the candidate lists made here). See docs/perturbations.md.

*Edits.* Every text perturbation is an `Edit`: replace the character span ``[start, end)`` of the
original text (``old``) by ``new``. Everything outside the span stays byte-identical, so an edit
can be applied, described and reverted exactly. ``position`` is the number of words of the
original text that end at or before ``start``: the index of the word the edit changes, or of the
word it is inserted before (``len(words)`` past the last word).

*Order.* Every ``*_candidates`` function returns its edits in a fixed order (by character offset,
then kind, then word-list order), so hypothesis, which shrinks towards the first element, reports
the earliest and smallest edit.

*Part of speech.* Where CT inserts a word (an adjective before a NOUN, an adverb before a VERB) is
decided by the lemminflect lexicon (possible universal POS tags of a word, no context) plus a
small context rule on the previous word; see `tag_words` for the heuristic and its limits.
lemminflect is imported lazily, so importing this module stays light.
"""

from __future__ import annotations

import bisect
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Mapping, Sequence

from sce_checks.metrics.text_distance import WORD_PATTERN
from sce_checks.tasks.grid import GridTask, Point

__all__ = [
    "CANDIDATE_FUNCTIONS",
    "FAMILIES",
    "FUNCTION_WORDS",
    "KINDS",
    "LABEL_PRESERVING_FAMILIES",
    "Edit",
    "GridMove",
    "InsertionSlot",
    "Kind",
    "Perturbed",
    "TaggedWord",
    "Word",
    "adjective_list",
    "adverb_list",
    "apply_edits",
    "candidates",
    "case_candidates",
    "conflicts",
    "grid_neighbours",
    "insertion_candidates",
    "insertion_slots",
    "lexicon_tags",
    "match_case",
    "neutral_sentence_candidates",
    "neutral_sentence_list",
    "perturb",
    "punctuation_candidates",
    "sample_insertions",
    "synonym_candidates",
    "synonym_table",
    "tag_words",
    "typo_candidates",
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


# --- bundled word lists -----------------------------------------------------------------------


@lru_cache(maxsize=None)
def _data_lines(name: str) -> tuple[str, ...]:
    text = resources.files("sce_checks").joinpath("data/words", name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def adjective_list() -> tuple[str, ...]:
    """The bundled adjectives CT inserts before nouns (data/words/adjectives.txt)."""
    return _data_lines("adjectives.txt")


def adverb_list() -> tuple[str, ...]:
    """The bundled adverbs CT inserts before verbs (data/words/adverbs.txt)."""
    return _data_lines("adverbs.txt")


def neutral_sentence_list() -> tuple[str, ...]:
    """The bundled content-free sentences (data/words/neutral_sentences.txt)."""
    return _data_lines("neutral_sentences.txt")


@lru_cache(maxsize=None)
def synonym_table() -> dict[str, tuple[tuple[str, str], ...]]:
    """word -> ((synonym, POS), ...) from data/words/synonyms.tsv, both directions."""
    table: dict[str, list[tuple[str, str]]] = {}
    for line in _data_lines("synonyms.tsv"):
        a, b, pos = line.split("\t")
        table.setdefault(a, []).append((b, pos))
        table.setdefault(b, []).append((a, pos))
    return {k: tuple(dict.fromkeys(v)) for k, v in table.items()}


# --- part of speech ---------------------------------------------------------------------------

_DETERMINERS = frozenset(
    "a an the this that these those each every some any no all both either neither another such "
    "what which whose my your his her its our their".split()
)
_PREPOSITIONS = frozenset(
    "of in on at by for with about against between into through during before after above below "
    "from up down out off over under than upon within without across along around behind beyond "
    "despite toward towards among near".split()
)
_SUBJECTS = frozenset("i you he she it we they who".split())
_AUXILIARIES = frozenset(
    "be am is are was were been being have has had having do does did will would shall should can "
    "could may might must ought".split()
)
_OTHER_FUNCTION_WORDS = frozenset(
    "me him us them myself yourself himself herself itself ourselves themselves one someone "
    "something anything nothing everything everyone anyone nobody somebody and or but nor so yet "
    "if because while although though unless whether as since until to not no yes there here "
    "then when where why how whom".split()
)
# Never a NOUN or VERB slot, whatever the lexicon says (it lists "it", "this", "his" as NOUN).
FUNCTION_WORDS: frozenset[str] = _DETERMINERS | _PREPOSITIONS | _SUBJECTS | _AUXILIARIES | _OTHER_FUNCTION_WORDS
# A previous word that makes the next word a noun ("the film") ...
_NOUN_CONTEXT = _DETERMINERS | _PREPOSITIONS
# ... or a verb ("I film", "to film", "will film", "didn't film").
_VERB_CONTEXT = _SUBJECTS | _AUXILIARIES | frozenset({"to", "not", "never"})
_VERB_CONTEXT_SUFFIXES = ("n't", "'ll", "'d")
_SENTENCE_END = ".!?"


@lru_cache(maxsize=8192)
def lexicon_tags(word: str) -> frozenset[str]:
    """Universal POS tags the lemminflect lexicon lists for ``word`` (lower-cased): every tag the
    word can have, not the one it has in a sentence. Empty for unknown words."""
    from lemminflect import getAllLemmas  # lazy: loads the lexicon on first use

    return frozenset(getAllLemmas(word.lower()))


@dataclass(frozen=True)
class TaggedWord:
    """A word, its lexicon tags and the role the context heuristic gives it."""

    word: Word
    tags: frozenset[str]  # empty for function words, unknown words and guessed proper nouns
    role: str | None  # "NOUN", "VERB" or None (not a safe insertion point)
    sentence_initial: bool
    previous: str | None  # the previous word, lower-cased, when only whitespace separates them


def _sentence_initial(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in _SENTENCE_END


def _in_verb_context(prev: str | None) -> bool:
    return prev is not None and (prev in _VERB_CONTEXT or prev.endswith(_VERB_CONTEXT_SUFFIXES))


def _role(tags: frozenset[str], prev: str | None) -> str | None:
    if not tags or "AUX" in tags or "ADJ" in tags or "ADV" in tags:
        return None
    noun, verb = "NOUN" in tags, "VERB" in tags
    noun_context = prev is not None and prev in _NOUN_CONTEXT
    verb_context = _in_verb_context(prev)
    if noun and verb:
        return "NOUN" if noun_context else "VERB" if verb_context else None
    if noun:
        return None if verb_context else "NOUN"
    if verb:
        return None if noun_context else "VERB"
    return None


def tag_words(text: str) -> list[TaggedWord]:
    """Each word of ``text`` with its lexicon tags and a contextual role, NOUN, VERB or None.

    Heuristic (precision over recall; no trained tagger runs offline without a data download):
    - no role for function words (determiners, pronouns, prepositions, conjunctions,
      auxiliaries: the lexicon tags "it" or "his" as NOUN), words the lexicon does not know,
      words it also lists as ADJ, ADV or AUX ("good", "fast", "like"), and capitalised words
      inside a sentence (taken for proper nouns or acronyms: their tags are left empty);
    - a word listed only as NOUN is a NOUN unless the previous word calls for a verb (a subject
      pronoun, "to", an auxiliary or modal, "not", a "n't" / "'ll" / "'d" contraction);
    - a word listed only as VERB is a VERB unless the previous word is a determiner, possessive
      or preposition ("the broken" is adjectival);
    - a word listed as both ("film", "love", "watch") takes its role from the previous word:
      NOUN after a determiner, possessive or preposition, VERB after the verb contexts above,
      otherwise none.
    Limits: one word of context only ("her" is read as a possessive, so in "saw her run" 'run'
    is a NOUN); sentence-initial ambiguous words get no role; compound nouns ("film critic")
    take the adjective before their second word as well.
    """
    words = word_spans(text)
    out: list[TaggedWord] = []
    for i, w in enumerate(words):
        lower = w.text.lower()
        initial = _sentence_initial(text, w.start)
        prev = None
        if i > 0 and not text[words[i - 1].end:w.start].strip():
            prev = words[i - 1].text.lower()
        proper = w.text[:1].isupper() and not initial
        tags = frozenset() if lower in FUNCTION_WORDS or proper or not w.text.replace("'", "").isalpha() else lexicon_tags(lower)
        out.append(TaggedWord(w, tags, _role(tags, prev), initial, prev))
    return out


# --- CT insertions ----------------------------------------------------------------------------

_CONSONANT_SOUND_PREFIXES = ("uni", "use", "usu", "ure", "eu", "one", "once")
_VOWEL_SOUND_PREFIXES = ("honest", "honou", "honor", "hour", "heir")


def _vowel_sound(word: str) -> bool:
    """Crude a/an rule on spelling: vowel letter, with the common exceptions."""
    if word.startswith(_VOWEL_SOUND_PREFIXES):
        return True
    return word[:1] in "aeiou" and not word.startswith(_CONSONANT_SOUND_PREFIXES)


@dataclass(frozen=True)
class InsertionSlot:
    """A place where CT may insert a word: before ``target`` (word ``position``), any of
    ``choices``."""

    kind: str  # "insert_adjective" or "insert_adverb"
    position: int
    start: int
    target: str
    choices: tuple[str, ...]

    def edit(self, choice: int) -> Edit:
        word = self.choices[choice]
        return Edit(self.kind, self.start, self.start, "", word + " ", self.position, self.target, word)


def insertion_slots(text: str, words_adj: Sequence[str] | None = None,
                    words_adv: Sequence[str] | None = None) -> list[InsertionSlot]:
    """Where CT can insert: before each NOUN (adjectives) and VERB (adverbs) of `tag_words`, in
    text order. Capitalised sentence-initial words are skipped (inserting before them would need
    re-casing a word the edit must not touch). After "a" / "an", only adjectives that keep the
    article right are offered ("an old owl", "a big owl" is not)."""
    adjs = tuple(adjective_list() if words_adj is None else words_adj)
    advs = tuple(adverb_list() if words_adv is None else words_adv)
    slots: list[InsertionSlot] = []
    for tw in tag_words(text):
        w = tw.word
        if tw.role is None or (tw.sentence_initial and w.text[:1].isupper()):
            continue
        if tw.role == "NOUN":
            kind, choices = "insert_adjective", adjs
            if tw.previous in ("a", "an"):
                choices = tuple(c for c in choices if _vowel_sound(c) == (tw.previous == "an"))
        else:
            kind, choices = "insert_adverb", advs
        if choices:
            slots.append(InsertionSlot(kind, w.index, w.start, w.text, choices))
    return slots


def insertion_candidates(text: str, words_adj: Sequence[str] | None = None,
                         words_adv: Sequence[str] | None = None) -> list[Edit]:
    """Every CT insertion (each slot of `insertion_slots` x each of its words), slot by slot in
    text order, words in list order. Defaults: the bundled adjective and adverb lists."""
    return [slot.edit(j) for slot in insertion_slots(text, words_adj, words_adv) for j in range(len(slot.choices))]


def sample_insertions(text: str, k: int, seed: int, words_adj: Sequence[str] | None = None,
                      words_adv: Sequence[str] | None = None) -> list[Edit]:
    """``k`` distinct random insertions, as CT draws random words at random positions: each draw
    picks a slot uniformly, then a word of that slot uniformly (so a slot's chance does not depend
    on how long its word list is). Same ``seed``, same list, in draw order. All candidates, in
    candidate order, when ``k`` reaches their number."""
    if k < 0:
        raise ValueError(f"k must be >= 0, not {k}")
    slots = insertion_slots(text, words_adj, words_adv)
    total = sum(len(s.choices) for s in slots)
    if k >= total:
        return insertion_candidates(text, words_adj, words_adv)
    rng = random.Random(seed)
    seen: set[tuple[int, int]] = set()
    out: list[Edit] = []
    while len(out) < k:
        i = rng.randrange(len(slots))
        j = rng.randrange(len(slots[i].choices))
        if (i, j) not in seen:
            seen.add((i, j))
            out.append(slots[i].edit(j))
    return out


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


# --- grid moves -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridMove:
    """One feature of a grid point moved by one step. Not assumed label-preserving: a move is how
    a model's decision boundary is probed."""

    origin: Point
    point: Point
    feature: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.feature}: {self.old!r} -> {self.new!r}"


def _as_point(task: GridTask, point: Point | Mapping[str, Any]) -> Point:
    if isinstance(point, Mapping):
        missing = [f.name for f in task.features if f.name not in point]
        if missing:
            raise ValueError(f"point {dict(point)!r} lacks features {missing} of task {task.name!r}")
        point = tuple(point[f.name] for f in task.features)
    point = tuple(point)
    if len(point) != len(task.features):
        raise ValueError(f"point {point!r} has {len(point)} values; task {task.name!r} has {len(task.features)} features")
    for f, v in zip(task.features, point):
        if v not in f.values:
            raise ValueError(f"{v!r} is not an allowed value of feature {f.name!r} (allowed: {f.describe()})")
    return point


def grid_neighbours(task: GridTask, point: Point | Mapping[str, Any]) -> list[GridMove]:
    """The grid points one step from ``point`` (a tuple in feature order, or a dict by feature
    name), feature by feature: for integer and ordinal features the previous then the next value
    of the feature's ordered value list (integer steps follow the feature's step); for
    categorical features, which have no order, every other value (each at the same Gower
    distance). Points at an edge of the grid have fewer neighbours."""
    origin = _as_point(task, point)
    out: list[GridMove] = []
    for i, (f, v) in enumerate(zip(task.features, origin)):
        idx = f.values.index(v)
        if f.type == "categorical":
            targets = [u for u in f.values if u != v]
        else:
            targets = [f.values[j] for j in (idx - 1, idx + 1) if 0 <= j < len(f.values)]
        for new in targets:
            moved = origin[:i] + (new,) + origin[i + 1:]
            out.append(GridMove(origin, moved, f.name, v, new))
    return out
