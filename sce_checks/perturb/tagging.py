"""Part of speech for insertion points: where CT may insert a word.

Why a module of its own: CT inserts an adjective before a NOUN and an adverb before a VERB, and
the synonym edits must swap a word only where it has the pair's part of speech; both need the
same, documented heuristic, and it is the one part of the package with a (lazy) dependency.

*Part of speech.* Where CT inserts a word (an adjective before a NOUN, an adverb before a VERB) is
decided by the lemminflect lexicon (possible universal POS tags of a word, no context) plus a
small context rule on the previous word; see `tag_words` for the heuristic and its limits.
lemminflect (0.13 s to import) is loaded on first use (sce_checks/optional.py), so importing
this module stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sce_checks import optional
from sce_checks.perturb.edits import Word, word_spans

__all__ = ["FUNCTION_WORDS", "TaggedWord", "lexicon_tags", "tag_words"]


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

    return frozenset(optional.lemminflect().getAllLemmas(word.lower()))


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
