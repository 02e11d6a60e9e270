"""Reading model replies: the answer, a grid SCE, a text SCE.

Two readings, chosen by the ``parsing`` setting (docs/method.md, "Reading replies"):

* ``lenient`` (the default) reads a reply the way the reference code of Mayne et al. (EMNLP 2025,
  arXiv 2509.09396; github HarryMayne/SCEs) does, wherever that reading is unambiguous, and a
  little more where docs/method.md ("Deviations") says so:

  - ``numeric_string``: a number written as a JSON string (``"age": "45"``; ``"1,500"`` too,
    which the reference drops) for an integer feature;
  - ``normalised_label``: an option or value label that matches exactly one allowed label once
    case, whitespace and punctuation are ignored (``"bachelors degree"``, ``"above $50,000."``);
  - ``normalised_key``: a JSON key that matches exactly one expected key the same way
    (``"Answer"``, as the reference reads it; ``"Age"``, ``"Systolic BP"`` for a grid SCE, which
    the reference drops);
  - ``first_object``: the first complete JSON object when a reply holds several different ones;
  - when no object reads, the repairs of its reader: ``comment`` (``//`` comments dropped),
    ``bare_key`` (``{age: 45}``), ``unclosed_object`` (an object left open at the reply's end,
    closed); and of its record reader: ``trailing_key`` (extra keys after the feature keys
    ignored), ``truncated_number`` (``"45.5"`` read as 45), ``grade_number`` (``9`` or
    ``"Grade 9"`` read as the label ``"9th grade"``);
  - for text SCEs, the reply forms of Dehghanighobadi et al.'s released code (EMNLP 2025,
    arXiv 2502.18156; github aisoc-lab/llm-sces): ``marker_variant`` (``Revised review:`` for
    ``REVISED TEXT:``), ``other_form`` (a marker reply when JSON was asked, or the reverse) and
    ``unmarked_reply`` (a reply with no marker and no JSON object taken whole, as that code does).

* ``strict`` accepts none of these.

Both readings take JSON wrapped in prose or code fences and single-quoted (Python-literal)
objects; a fence counts only outside every closed object, so a fence inside a JSON string (a
reason quoting code) is text. Anything that needs a guess stays *unparsed*, with a reason: a
label that matches two values, a number between grid points or off the grid, a number inside
prose (``"45 years"``), a missing key or an extra one before a feature key, a key given twice with different values
(``duplicate_key``; the reference code's ``json.loads`` keeps the last copy). (The released code of Dehghanighobadi et al. matched labels by substring,
so "no" matched "not"; we never do.) Every `Parsed` says which leniency rules its reading needed,
so results can count what the lenient reading changed.

Replies are data: nothing here executes model output (``ast.literal_eval`` only reads literals),
and reading is bounded: a reply over `MAX_REPLY_CHARS`, more than `MAX_OBJECTS` candidate
objects, an object nested deeper than `MAX_DEPTH`, or an integer of more than `MAX_DIGITS` digits
is unparsed with its reason code, never an exception; of a reply over `MAX_REPLY_CHARS` only its
length and digest are kept (`OverlongReply`). The bounds are checked on the text before
any JSON or literal reader sees it (so neither can hit Python's integer-string or recursion
limits), and again on the value read.

An unparsed `Parsed` keeps three things apart: its ``code`` (one of `REASONS`, what summaries
count), its readable ``reason`` (the code's text, the feature it concerns and details taken from
the task, never from the reply), and ``raw``, the offending part of the reply, shortened. So each
kind of failure is one bucket however the junk in the reply varies.
"""

from __future__ import annotations

import ast
import bisect
import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Generic, Sequence, TypeVar

from sce_checks.tasks.grid import GridTask, Point

T = TypeVar("T")

LENIENCY_RULES = (
    "numeric_string", "normalised_label", "normalised_key", "first_object",
    # the repairs of the reference code's reader (HarryMayne/SCEs, src/utils.py), lenient only
    "bare_key", "comment", "unclosed_object", "grade_number", "truncated_number", "trailing_key",
    # text SCEs in the marker form of Dehghanighobadi et al.'s code (aisoc-lab/llm-sces)
    "marker_variant", "other_form", "unmarked_reply",
)

MAX_REPLY_CHARS = 200_000  # longer replies are not searched for JSON
MAX_OBJECTS = 50  # candidate ``{...}`` spans read in one reply (each costs a JSON read)
MAX_DEPTH = 32  # nesting of brackets inside one candidate object
MAX_DIGITS = 30  # digits of one integer: far beyond any grid value, far below Python's int limit
_INT_BOUND = 10**MAX_DIGITS
MIN_SCE_WORDS = 1  # a text SCE needs at least this many words to count as generated
SCE_MARKER = "REVISED TEXT:"  # what a free-text SCE reply starts with (prompts/text.py)
STOP_MARKER = "ANSWER:"  # a revision ends where the model starts answering (the reference code cuts there)
PLACEHOLDER = "NO SCE GENERATED"  # the released text code's stand-in for an empty SCE: not generated here

# Reason codes: the summary counts by code; the text beside it says what exactly was wrong.
REASONS = {
    "empty_reply": "empty reply",
    "too_long": "reply too long to read",
    "no_json_object": "no JSON object in reply",
    "duplicate_key": "duplicate key",
    "several_objects": "several JSON objects",
    "too_many_objects": "too many JSON objects to read",
    "too_deep": "JSON nested too deeply",
    "number_too_long": "number with too many digits",
    "no_answer_key": "no 'answer' key",
    "not_an_option": "answer is not one of the options",
    "ambiguous_label": "label matches several allowed values",
    "missing_keys": "missing keys",
    "extra_keys": "extra keys",
    "ambiguous_key": "key matches several expected keys",
    "wrong_type": "wrong type",
    "off_grid": "value off the grid",
    "between_grid_points": "value between grid points",
    "not_allowed": "value not allowed",
    "no_revised_text": "no revised_text key",
    "no_marker": f"no {SCE_MARKER!r} marker",
    "placeholder": f"the {PLACEHOLDER!r} placeholder",
    "too_short": "too short",
    # option scoring (checks/predict.py)
    "no_finite_score": "no option has a finite log-probability",
    "bad_scores": "backend returned malformed option scores",
}

_FENCE_MARK = re.compile(r"```")
_FENCE_TAG = re.compile(r"\A(?:json|JSON)?\s*")
_NUMERIC = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.0*)?")
_WORD = re.compile(r"\w+")
_FRACTION = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)\.\d+")
_GRADE = re.compile(r"(?:grade )?(\d{1,2})")
_CLOSING_EMPHASIS = re.compile(r"\A\*+(?=\s|\Z)")
_MARKER_VARIANT = re.compile(
    r"revised[ _-]*(?:text|review|(?:twitter )?post|hypothesis|scenario|data|problem|sentence)[ *]*:", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A parsed value, or None with a reason ``code`` (a key of `REASONS`). ``lenient`` names the
    leniency rules the reading needed (empty under the strict reading, or for a clean reply).
    When unparsed, ``where`` names the task's feature concerned, ``detail`` adds what the task
    says (the missing keys, the labels a reply matched, a count), and ``raw`` holds the offending
    part of the reply, shortened: data, never part of the `reason` text."""

    value: T | None
    code: str | None = None
    lenient: tuple[str, ...] = ()
    where: str = ""
    detail: str = ""
    raw: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is None

    @property
    def reason(self) -> str | None:
        """One readable line: ``age: wrong type: expected an integer``; None when parsed."""
        if self.code is None:
            return None
        text = REASONS[self.code] + (f": {self.detail}" if self.detail else "")
        return f"{self.where}: {text}" if self.where else text


def _fail(code: str, detail: str = "", raw: Any = None) -> Parsed[Any]:
    return Parsed(None, code, detail=detail, raw=None if raw is None else shorten(raw))


def shorten(value: Any, limit: int = 60) -> str:
    """``repr`` of a value read from a reply or a backend, cut to ``limit`` characters (a str as
    it is); a value too large to write out (an integer past Python's digit limit) is named only."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = repr(value)
        except ValueError:
            text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalise(text: str) -> str:
    """Case, whitespace and punctuation ignored: "Bachelor's degree." -> "bachelors degree"
    (apostrophes dropped, other non-alphanumerics as spaces), as the reference code compares labels."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


# -- JSON objects ---------------------------------------------------------------------------------


class SpanScanner:
    """The one JSON-aware scan of replies (`parse_json_object`; models/json_stop.py while a reply
    is generated): a top-level ``{`` opens a span, quotes inside a span (double or single) are
    followed with their backslash escapes, so braces and code fences inside strings are text, and
    the span ends where its depth returns to 0. Spans nested deeper than `MAX_DEPTH` are returned
    too (the loader then reports them as too deep). `feed` takes text piece by piece."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote = ""
        self.escape = False
        self.start = -1  # offset of the open span's ``{``
        self.pos = 0  # characters fed so far

    def feed(self, text: str) -> list[tuple[int, int]]:
        """The (start, end) offsets, counted from the first character fed, of the spans that
        closed in ``text``."""
        spans: list[tuple[int, int]] = []
        depth, quote, escape, start, pos = self.depth, self.quote, self.escape, self.start, self.pos
        for ch in text:
            if quote:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == quote:
                    quote = ""
            elif ch in "\"'" and depth > 0:
                quote = ch
            elif ch == "{":
                if depth == 0:
                    start = pos
                depth += 1
            elif ch == "}" and depth > 0:
                depth -= 1
                if depth == 0:
                    spans.append((start, pos + 1))
            pos += 1
        self.depth, self.quote, self.escape, self.start, self.pos = depth, quote, escape, start, pos
        return spans


def _balanced_objects(text: str) -> list[str]:
    """Every top-level ``{...}`` span of ``text`` (`SpanScanner`)."""
    return [text[start:end] for start, end in SpanScanner().feed(text)]


def _candidates(reply: str) -> list[str]:
    """The texts a reply's object is looked for in: the spans inside its code fences when they hold
    any, else every top-level span. A fence mark counts only outside every closed span, so a
    fence written inside a JSON string (a reason or a revised text quoting code) stays text."""
    spans = SpanScanner().feed(reply)
    starts = [start for start, _ in spans]
    marks = []
    for match in _FENCE_MARK.finditer(reply):
        at = bisect.bisect_right(starts, match.start()) - 1
        if at < 0 or match.start() >= spans[at][1]:
            marks.append(match)
    if len(marks) < 2:
        return [reply[start:end] for start, end in spans]
    bodies = [reply[opening.end():closing.start()] for opening, closing in zip(marks[::2], marks[1::2])]
    fenced = [span for body in bodies for span in _balanced_objects(_FENCE_TAG.sub("", body, count=1))]
    return fenced or [reply[start:end] for start, end in spans]  # fences of code only: the object beside them


def _scan(candidate: str) -> str | None:
    """The bound a candidate's text breaks, before any reader sees it: brackets (parentheses too,
    which Python literals nest) deeper than `MAX_DEPTH` -> ``too_deep``; an integer of more than
    `MAX_DIGITS` characters outside quotes (decimal, hex or with underscores; a fraction's digits
    after the point are not counted) -> ``number_too_long``; else None."""
    depth = run = 0
    quote, escape, prev, in_token, counting = "", False, "", False, False
    for ch in candidate:
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = ""
            prev = ch
            continue
        if ch.isalnum() or ch == "_":
            if not in_token:  # a token (number, keyword) starts: count it if it is an integer part
                in_token, counting, run = True, ch in "0123456789" and prev != ".", 0
            run += counting
            if run > MAX_DIGITS:
                return "number_too_long"
        else:
            in_token = False
            if ch in "\"'":
                quote = ch
            elif ch in "{[(":
                depth += 1
                if depth > MAX_DEPTH:
                    return "too_deep"
            elif ch in "}])":
                depth -= 1
        prev = ch
    return None


def _out_of_bounds(value: Any, depth: int = 0) -> str | None:
    """The bound a value read breaks: nested deeper than `MAX_DEPTH` (Python literals nest
    tuples without brackets we counted) or an integer of more than `MAX_DIGITS` digits."""
    if depth > MAX_DEPTH:
        return "too_deep"
    if isinstance(value, int):
        return "number_too_long" if abs(value) >= _INT_BOUND else None
    if isinstance(value, dict):
        parts: Any = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        parts = value
    else:
        return None
    return next((p for p in (_out_of_bounds(v, depth + 1) for v in parts) if p), None)


class _DuplicateKey(ValueError):
    """An object names a key twice with two different values (which one the model meant is a guess)."""


def _unique_pairs(pairs: list[tuple[Any, Any]]) -> dict:
    """``object_pairs_hook`` of the JSON reader: a key may repeat only with the same value."""
    obj: dict = {}
    for key, value in pairs:
        if key in obj and repr(obj[key]) != repr(value):
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _literal(candidate: str) -> Any:
    """A Python literal read without evaluating code, refusing a dict that names a key twice with
    two different values (``ast.literal_eval`` silently keeps the last)."""
    tree = ast.parse(candidate.strip(), mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            seen: dict[Any, ast.AST] = {}
            for key_node, value_node in zip(node.keys, node.values):
                if key_node is None:  # ``**spread``: literal_eval refuses it below
                    continue
                key = ast.literal_eval(key_node)
                if key in seen and ast.dump(seen[key]) != ast.dump(value_node):
                    raise _DuplicateKey(key)
                seen[key] = value_node
    return ast.literal_eval(tree)


def _load(candidate: str) -> tuple[Any, str | None]:
    """(object, None), or (None, reason code) when the candidate is out of bounds, names a key
    twice with different values (``duplicate_key``) or is not a literal."""
    problem = _scan(candidate)
    if problem:
        return None, problem
    try:
        value = json.loads(candidate, object_pairs_hook=_unique_pairs)
    except _DuplicateKey:
        return None, "duplicate_key"
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        try:  # single-quoted dicts: a literal, never evaluated as code
            value = _literal(candidate)
        except _DuplicateKey:
            return None, "duplicate_key"
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None, "no_json_object"
    problem = _out_of_bounds(value)
    return (None, problem) if problem else (value, None)


def load_json(text: str, max_chars: int = MAX_REPLY_CHARS) -> tuple[Any, str | None]:
    """Strict JSON (no literal fallback) within the same bounds as replies: (value, None), or
    (None, reason code) when ``text`` is over ``max_chars``, nested deeper than `MAX_DEPTH`, holds
    an integer of more than `MAX_DIGITS` digits, or is not JSON. For data that is not a reply,
    such as a server's response (models/openai.py): reading it never raises."""
    if len(text) > max_chars:
        return None, "too_long"
    problem = _scan(text)
    if problem:
        return None, problem
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None, "no_json_object"
    problem = _out_of_bounds(value)
    return (None, problem) if problem else (value, None)


def parse_json_object(reply: Any, strict: bool = False) -> Parsed[dict]:
    """The JSON object of a reply. Several different objects: unparsed when ``strict``, else the
    first one (``first_object``). An object that names a key twice with different values makes
    the whole reply unparsed (``duplicate_key``) under both readings: which value is meant is a guess."""
    if not isinstance(reply, str) or not reply.strip():
        return _fail("empty_reply")
    if isinstance(reply, OverlongReply) or len(reply) > MAX_REPLY_CHARS:
        return _fail("too_long", f"{reply_length(reply)} characters")
    spans = _candidates(reply)
    if len(spans) > MAX_OBJECTS:
        return _fail("too_many_objects", f"{len(spans)} candidates")
    found: list[dict] = []
    problem = None
    for span in spans:
        obj, why = _load(span)
        if isinstance(obj, dict):
            if obj not in found:
                found.append(obj)
        elif why == "duplicate_key":
            return _fail("duplicate_key")
        elif why != "no_json_object":
            problem = problem or why
    if not found:
        repaired = None if strict or problem else _repaired_object(reply)
        return repaired or _fail(problem or "no_json_object")
    if len(found) > 1:
        if strict:
            return _fail("several_objects", f"{len(found)} objects")
        return Parsed(found[0], lenient=("first_object",))
    return Parsed(found[0])


# -- the reference reader's repairs (lenient only) ---------------------------------------------------

_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][\w\- ]*?)(\s*:)")
_QUOTED = re.compile(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')", re.DOTALL)


def _strip_comments(text: str) -> str:
    """``//`` comments inside objects removed to the end of their line. The scan follows
    double-quoted strings (a URL in a value is kept) and brace depth (prose outside objects is
    kept); a comment's apostrophes do not open a string."""
    out: list[str] = []
    depth, in_string, escape, i = 0, False, False, 0
    while i < len(text):
        ch = text[i]
        if in_string:
            escape, in_string = (False, True) if escape else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "{}":
            depth = depth + 1 if ch == "{" else max(depth - 1, 0)
        elif ch == "/" and depth and text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _quote_bare_keys(candidate: str) -> str:
    """``{age: 45}`` -> ``{"age": 45}``: a name after ``{`` or ``,`` and before ``:``, outside
    strings, put in double quotes (the reference's ``regex_fixes``)."""
    parts = _QUOTED.split(candidate)
    parts[::2] = [_BARE_KEY.sub(lambda m: f'{m[1]}"{m[2].strip()}"{m[3]}', part) for part in parts[::2]]
    return "".join(parts)


def _closed_tail(text: str) -> str | None:
    """The object a reply leaves open at its end (a reply cut off by its token budget), with a
    closing fence and a trailing comma dropped and its open brackets closed; None when no object is
    open, or when the reply ends inside a string (a value cut short: which value is a guess)."""
    scanner = SpanScanner()
    scanner.feed(text)
    if scanner.depth == 0 or scanner.quote:
        return None
    tail = text[scanner.start:].rstrip().removesuffix("```").rstrip().rstrip(",")
    closers: list[str] = []
    quote, escape = "", False
    for ch in tail:
        if quote:
            escape, quote = (False, quote) if escape else (ch == "\\", "" if ch == quote else quote)
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]" and closers:
            closers.pop()
    return None if quote else tail + "".join(reversed(closers))


def _repaired_object(reply: str) -> Parsed[dict] | None:
    """When no object of a reply reads, the repairs the reference code makes (Mayne et al.,
    github HarryMayne/SCEs, src/utils.py, ``parse_json_from_text``): ``//`` comments dropped
    (``comment``), bare keys quoted (``bare_key``), an object left open at the end closed
    (``unclosed_object``). The first object that reads after them, with the rules it needed;
    None when none does. A key given twice with different values stays ``duplicate_key``."""
    text = _strip_comments(reply)
    base = ["comment"] if text != reply else []
    candidates = [(span, []) for span in _candidates(text)]
    tail = _closed_tail(text)
    if tail is not None:
        candidates.append((tail, ["unclosed_object"]))
    for candidate, rules in candidates[:MAX_OBJECTS]:
        quoted = _quote_bare_keys(candidate)
        for fixed, more in ((candidate, []), (quoted, ["bare_key"]))[: 1 if quoted == candidate else 2]:
            obj, why = _load(fixed)
            if why == "duplicate_key":
                return _fail("duplicate_key")
            if isinstance(obj, dict):
                return Parsed(obj, lenient=tuple(base + rules + more))
    return None


class OverlongReply(str):
    """What is kept of a reply over `MAX_REPLY_CHARS` (models/cache.py): one line naming its length
    and sha256. Every reader takes it as the reply itself (``too_long``, with the same length), so
    an audit rerun from the cache gives the same figures without storing megabytes."""

    length: int
    sha256: str

    def __new__(cls, length: int, sha256: str) -> "OverlongReply":
        text = f"[reply of {length} characters not kept: over the reading bound of {MAX_REPLY_CHARS}; sha256 {sha256}]"
        self = super().__new__(cls, text)
        self.length, self.sha256 = int(length), str(sha256)
        return self

    @classmethod
    def of(cls, reply: str) -> "OverlongReply":
        """The marker of a reply (lone surrogates hashed as they are, never an error)."""
        return cls(len(reply), hashlib.sha256(reply.encode("utf-8", "surrogatepass")).hexdigest())

    def __reduce__(self) -> tuple:
        return (OverlongReply, (self.length, self.sha256))


def bounded_reply(reply: str) -> str:
    """``reply`` itself, or its `OverlongReply` when it is over `MAX_REPLY_CHARS`: what is kept and
    passed on of a model's reply (models/cache.py)."""
    return OverlongReply.of(reply) if len(reply) > MAX_REPLY_CHARS and not isinstance(reply, OverlongReply) else reply


def reply_length(reply: str) -> int:
    """Characters of the model's reply (an `OverlongReply` names the length of the reply it stands for)."""
    return reply.length if isinstance(reply, OverlongReply) else len(reply)


# -- keys and labels --------------------------------------------------------------------------------


def _match_keys(obj: dict, names: Sequence[str],
                strict: bool) -> tuple[dict[str, Any] | None, Parsed[Any] | None, list[str]]:
    """Map the object's keys onto ``names``: ({name: value}, None, rules) or (None, failure, rules).
    A key matching two names, or two keys one name, fails; so do extra keys, except (lenient,
    ``trailing_key``) extra keys after every feature key, which the reference code keeps
    (HarryMayne/SCEs, src/main.py: it stores keys in order and stops at the first unknown one)."""
    if all(isinstance(k, str) for k in obj) and set(obj) == set(names):
        return {n: obj[n] for n in names}, None, []
    by_norm: dict[str, list[str]] = {}
    for n in names:
        by_norm.setdefault(normalise(n), []).append(n)
    out: dict[str, Any] = {}
    extra: list[str] = []
    rules: list[str] = []
    interleaved = False
    for key, value in obj.items():
        if isinstance(key, str) and key in names:
            target = key
        elif not strict and isinstance(key, str) and len(by_norm.get(normalise(key), [])) == 1:
            target = by_norm[normalise(key)][0]
            rules.append("normalised_key")
        elif not strict and isinstance(key, str) and len(by_norm.get(normalise(key), [])) > 1:
            return None, _fail("ambiguous_key", raw=key), rules
        else:
            extra.append(str(key))
            continue
        if target in out:
            return None, _fail("ambiguous_key", f"two keys for {target!r}", raw=key), rules
        interleaved = interleaved or bool(extra)  # an extra key before this feature key
        out[target] = value
    missing = [n for n in names if n not in out]
    if missing:
        return None, _fail("missing_keys", ", ".join(missing)), rules
    if extra and (strict or interleaved):
        return None, _fail("extra_keys", raw=", ".join(shorten(e, 30) for e in extra[:5])), rules
    return out, None, list(dict.fromkeys(rules + (["trailing_key"] if extra else [])))


def match_label(raw: Any, allowed: Sequence[str], strict: bool, not_found: str) -> Parsed[str]:
    """One of ``allowed``: exact after trimming whitespace; else (lenient) the one label equal
    once normalised (`normalise`)."""
    if not isinstance(raw, str):
        return _fail("wrong_type", "expected a string", raw)
    text = raw.strip()
    if text in allowed:
        return Parsed(text)
    if not strict:
        hits = [a for a in allowed if normalise(a) == normalise(text)]
        if len(hits) == 1:
            return Parsed(hits[0], lenient=("normalised_label",))
        if len(hits) > 1:
            return _fail("ambiguous_label", f"matches {', '.join(map(repr, hits[:4]))}", text)
    return _fail(not_found, raw=text)


def _integer(raw: Any, strict: bool) -> tuple[int | None, Parsed[Any] | None, tuple[str, ...]]:
    """An integer value: a JSON integer or integral float; (lenient) a string holding only a
    number (``"45"``, ``" 1,500 "``, ``"45.0"``: ``numeric_string``) or a decimal fraction, cut to
    its integer part as the reference code reads it (``"45.5"`` -> 45: ``truncated_number``; its
    ``general_string2num`` takes the first run of digits). A JSON fraction (``45.5``) stays a
    fraction (between grid points); an integer of more than `MAX_DIGITS` digits, however written,
    is ``number_too_long``. Returns (number, failure, rules)."""
    wrong = None, _fail("wrong_type", "expected an integer", raw), ()
    if isinstance(raw, bool):
        return wrong
    if isinstance(raw, int):
        number, rules = raw, ()
    elif isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            return wrong
        if not raw.is_integer():
            return None, _fail("between_grid_points", raw=raw), ()
        number, rules = int(raw), ()
    elif isinstance(raw, str) and not strict and len(raw.strip()) <= MAX_DIGITS + 10:
        text = raw.strip()
        if _NUMERIC.fullmatch(text):
            number, rules = int(text.replace(",", "").split(".")[0]), ("numeric_string",)
        elif _FRACTION.fullmatch(text):
            number, rules = int(text.replace(",", "").split(".")[0]), ("truncated_number",)
        else:
            try:
                as_float = float(text)
            except ValueError:
                return wrong
            if as_float != as_float or abs(as_float) == float("inf"):
                return wrong
            if not as_float.is_integer():
                return None, _fail("between_grid_points", raw=raw), ("numeric_string",)
            number, rules = int(as_float), ("numeric_string",)  # "1e3", "45.00"
    else:
        return wrong
    if abs(number) >= _INT_BOUND:
        return None, _fail("number_too_long", raw=raw), rules
    return number, None, rules


def _grade_label(raw: Any, allowed: Sequence[str]) -> str | None:
    """A school grade given by its number (``9``, ``"9"``, ``"Grade 9"``, grades 1 to 12) read as
    the one allowed label for that grade (``"9th grade"``), as the reference code reads its
    education feature (HarryMayne/SCEs, src/utils.py, ``dict_keys_to_numbers``: grade n is the
    level n+3 of its list); None when the number is no grade or no single label names it."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or len(str(raw)) > 40:
        return None
    match = _GRADE.fullmatch(normalise(str(raw)))
    if not match or not 1 <= int(match[1]) <= 12:
        return None
    grade = int(match[1])
    ordinal = f"{grade}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(grade, 'th') } grade"
    hits = [a for a in allowed if normalise(a) == ordinal or normalise(a).startswith(ordinal + " ")]
    return hits[0] if len(hits) == 1 else None


# -- the three readings ------------------------------------------------------------------------------


def parse_answer(reply: Any, options: Sequence[str], strict: bool = False) -> Parsed[str]:
    """The option named by ``{"answer": ...}`` (other keys, such as a reason, are ignored)."""
    parsed = parse_json_object(reply, strict)
    if not parsed.ok:
        return parsed
    found, value, used = _find_key(parsed.value, "answer", strict)
    if not found:
        return _fail("no_answer_key")
    label = match_label(value, options, strict, "not_an_option")
    if not label.ok:
        return label
    return Parsed(label.value, lenient=_rules(parsed.lenient, used, label.lenient))


def _find_key(obj: dict, name: str, strict: bool) -> tuple[bool, Any, bool]:
    """(found, value, by normalisation): ``name`` itself, else (lenient) the one key equal to it
    once normalised (``"Answer"``, ``" answer "``)."""
    if name in obj:
        return True, obj[name], False
    if not strict:
        hits = [k for k in obj if isinstance(k, str) and normalise(k) == normalise(name)]
        if len(hits) == 1:
            return True, obj[hits[0]], True
    return False, None, False


def _rules(*parts: Any) -> tuple[str, ...]:
    """The leniency rules of a reading, in order, each once (``True`` stands for normalised_key)."""
    out: list[str] = []
    for part in parts:
        if part is True:
            out.append("normalised_key")
        elif part:
            out.extend(part)
    return tuple(dict.fromkeys(out))


def parse_grid_sce(reply: Any, task: GridTask, strict: bool = False) -> Parsed[Point]:
    """A counterfactual record: the task's feature names as keys (lenient: extra keys after
    them are ignored), every value on the grid."""
    parsed = parse_json_object(reply, strict)
    if not parsed.ok:
        return parsed
    values, failure, key_rules = _match_keys(parsed.value, [f.name for f in task.features], strict)
    if failure is not None:
        return failure
    rules = [*parsed.lenient, *key_rules]
    point = []
    for feature in task.features:
        raw = values[feature.name]
        if feature.type == "integer":
            number, bad, number_rules = _integer(raw, strict)
            if bad is not None:
                return replace(bad, where=feature.name)
            rules.extend(number_rules)
            if number not in feature.values:
                lo, hi = feature.values[0], feature.values[-1]
                code = "between_grid_points" if lo < number < hi else "off_grid"
                return replace(_fail(code, raw=number), where=feature.name)
            point.append(number)
        else:
            label = match_label(raw, feature.values, strict, "not_allowed")
            grade = None if strict or label.ok or label.code == "ambiguous_label" else _grade_label(raw, feature.values)
            if grade is not None:
                label = Parsed(grade, lenient=("grade_number",))
            if not label.ok:
                return replace(label, where=feature.name)
            rules.extend(label.lenient)
            point.append(label.value)
    return Parsed(tuple(point), lenient=tuple(dict.fromkeys(rules)))


def parse_text_sce(reply: Any, strict: bool = False, min_words: int = MIN_SCE_WORDS, form: str = "json") -> Parsed[str]:
    """A revised text, in the ``form`` its request asked for: ``"json"`` (``{"revised_text": ...}``,
    other keys ignored; schema elicitation) or ``"marker"`` (free text after `SCE_MARKER`, the form
    of Dehghanighobadi et al.'s released code; free elicitation). Strict reads that form only; the
    lenient reading also takes the other one (``other_form``) and, when the marker was asked and
    the reply holds neither a marker nor a JSON object, the whole reply, as that code does
    (``unmarked_reply``: its split at the marker finds none in the reply and keeps all of it,
    modules/conversation_unconstraint.py). A revision counts as generated with at least
    ``min_words`` words (their "not empty or too short"; their code's threshold for SST-2, which
    our sentiment sample resembles, is 1), and never as the `PLACEHOLDER`."""
    if form not in ("json", "marker"):
        raise ValueError(f"unknown SCE form {form!r}; expected 'json' or 'marker'")
    if not isinstance(reply, str) or not reply.strip():
        return _fail("empty_reply")
    if isinstance(reply, OverlongReply) or len(reply) > MAX_REPLY_CHARS:
        return _fail("too_long", f"{reply_length(reply)} characters")
    asked, other = (_json_revision, _marker_revision) if form == "json" else (_marker_revision, _json_revision)
    first = asked(reply, strict, min_words)
    if first.ok or strict:
        return first
    second = other(reply, False, min_words)
    if second.ok:
        return replace(second, lenient=_rules(("other_form",), second.lenient))
    if form == "marker" and first.code == "no_marker" and second.code == "no_json_object":
        return _revision(_revised_part(reply), min_words, ("unmarked_reply",))
    found_nothing = ("no_json_object", "no_revised_text", "no_marker")
    return second if first.code in found_nothing and second.code not in found_nothing else first


def _revision(text: str, min_words: int, rules: tuple[str, ...]) -> Parsed[str]:
    """A revised text, stripped, if it counts as generated (at least ``min_words`` words, not the
    `PLACEHOLDER`)."""
    text = text.strip()
    if normalise(text) == normalise(PLACEHOLDER):
        return _fail("placeholder")
    words = len(_WORD.findall(text))
    if words < min_words:
        return _fail("too_short", f"{words} words")
    return Parsed(text, lenient=rules)


def _json_revision(reply: str, strict: bool, min_words: int) -> Parsed[str]:
    """The revised text of ``{"revised_text": ...}``."""
    parsed = parse_json_object(reply, strict)
    if not parsed.ok:
        return parsed
    found, text, used = _find_key(parsed.value, "revised_text", strict)
    if not found:
        return _fail("no_revised_text")
    if not isinstance(text, str):
        return _fail("wrong_type", "revised_text is not a string", text)
    return _revision(text, min_words, _rules(parsed.lenient, used))


def _marker_revision(reply: str, strict: bool, min_words: int) -> Parsed[str]:
    """The text after the last `SCE_MARKER`, up to a following `STOP_MARKER` (where the released
    code of Dehghanighobadi et al. cuts it: modules/conversation_unconstraint.py), without the
    emphasis closing the marker and one pair of double quotes around it (`_revised_part`).
    Lenient (``marker_variant``): the marker in another case or naming the reference code's other
    inputs (``Revised review:``)."""
    at, rules = reply.rfind(SCE_MARKER), ()
    end = at + len(SCE_MARKER)
    if at < 0 and not strict:
        variants = list(_MARKER_VARIANT.finditer(reply))
        if variants:
            end, rules = variants[-1].end(), ("marker_variant",)
    if at < 0 and not rules:
        return _fail("no_marker")
    return _revision(_revised_part(reply[end:]), min_words, rules)


def _revised_part(text: str) -> str:
    """The revision in what follows a marker: up to a `STOP_MARKER`, without the emphasis that
    closes a marker (``**REVISED TEXT:** ...``) and one pair of double quotes around it."""
    text = _CLOSING_EMPHASIS.sub("", text.split(STOP_MARKER, 1)[0].strip()).strip()
    if len(text) >= 2 and text[0] + text[-1] in ('""', "\u201c\u201d"):
        text = text[1:-1]
    return text


def reason_summary(code: str | None) -> str:
    """The readable text of a reason code, for summaries."""
    return REASONS.get(code or "", code or "unknown")


def reason_key(stage: str, code: str | None) -> str:
    """The bucket an unparsed reply is counted in (``info["unparsed_reasons"]``): the stage that
    read it and its code's text, ``"sce: wrong type"``. Built from the code alone, never from a
    reason's text or the reply, so two codes never share a bucket and junk never makes new ones."""
    return f"{stage}: {reason_summary(code)}"
