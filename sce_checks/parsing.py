"""Reading model replies: the answer, a grid SCE, a text SCE.

Two readings, chosen by the ``parsing`` setting (docs/method.md, "Reading replies"):

* ``lenient`` (the default) reads a reply the way the reference code of Mayne et al. (EMNLP 2025,
  arXiv 2509.09396; github HarryMayne/SCEs) does, wherever that reading is unambiguous:

  - ``numeric_string``: a number written as a JSON string (``"age": "45"``, ``"1,500"``) for an
    integer feature;
  - ``normalised_label``: an option or value label that matches exactly one allowed label once
    case, whitespace and punctuation are ignored (``"bachelors degree"``, ``"above $50,000."``);
  - ``normalised_key``: a JSON key that matches exactly one expected key the same way
    (``"Answer"``, ``"Systolic BP"``);
  - ``first_object``: the first complete JSON object when a reply holds several different ones.

* ``strict`` accepts none of these.

Both readings take JSON wrapped in prose or code fences and single-quoted (Python-literal)
objects; a fence counts only outside every closed object, so a fence inside a JSON string (a
reason quoting code) is text. Anything that needs a guess stays *unparsed*, with a reason: a
label that matches two values, a number between grid points or off the grid, a number inside
prose (``"45 years"``), a missing or an extra key, a key given twice with different values
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

LENIENCY_RULES = ("numeric_string", "normalised_label", "normalised_key", "first_object")

MAX_REPLY_CHARS = 200_000  # longer replies are not searched for JSON
MAX_OBJECTS = 50  # candidate ``{...}`` spans read in one reply (each costs a JSON read)
MAX_DEPTH = 32  # nesting of brackets inside one candidate object
MAX_DIGITS = 30  # digits of one integer: far beyond any grid value, far below Python's int limit
_INT_BOUND = 10**MAX_DIGITS
MIN_SCE_WORDS = 1  # a text SCE needs at least this many words to count as generated

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
    "too_short": "too short",
    # option scoring (checks/predict.py)
    "no_finite_score": "no option has a finite log-probability",
    "bad_scores": "backend returned malformed option scores",
}

_FENCE_MARK = re.compile(r"```")
_FENCE_TAG = re.compile(r"\A(?:json|JSON)?\s*")
_NUMERIC = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.0*)?")
_WORD = re.compile(r"\w+")


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
        return _fail(problem or "no_json_object")
    if len(found) > 1:
        if strict:
            return _fail("several_objects", f"{len(found)} objects")
        return Parsed(found[0], lenient=("first_object",))
    return Parsed(found[0])


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


def _match_keys(obj: dict, names: Sequence[str], strict: bool) -> tuple[dict[str, Any] | None, Parsed[Any] | None, bool]:
    """Map the object's keys onto ``names``: ({name: value}, None, used_normalisation) or
    (None, failure, _). Extra keys fail; so does a key matching two names or two keys one name."""
    if all(isinstance(k, str) for k in obj) and set(obj) == set(names):
        return {n: obj[n] for n in names}, None, False
    by_norm: dict[str, list[str]] = {}
    for n in names:
        by_norm.setdefault(normalise(n), []).append(n)
    out: dict[str, Any] = {}
    extra: list[str] = []
    used = False
    for key, value in obj.items():
        if isinstance(key, str) and key in names:
            target = key
        elif not strict and isinstance(key, str) and len(by_norm.get(normalise(key), [])) == 1:
            target, used = by_norm[normalise(key)][0], True
        elif not strict and isinstance(key, str) and len(by_norm.get(normalise(key), [])) > 1:
            return None, _fail("ambiguous_key", raw=key), used
        else:
            extra.append(str(key))
            continue
        if target in out:
            return None, _fail("ambiguous_key", f"two keys for {target!r}", raw=key), used
        out[target] = value
    missing = [n for n in names if n not in out]
    if missing:
        return None, _fail("missing_keys", ", ".join(missing)), used
    if extra:
        return None, _fail("extra_keys", raw=", ".join(shorten(e, 30) for e in extra[:5])), used
    return out, None, used


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


def _integer(raw: Any, strict: bool) -> tuple[int | None, Parsed[Any] | None, bool]:
    """An integer value: a JSON integer or integral float; (lenient) a string holding only a
    number (``"45"``, ``" 1,500 "``, ``"45.0"``). Fractions stay fractions (between grid points);
    an integer of more than `MAX_DIGITS` digits, however written, is ``number_too_long``."""
    wrong = None, _fail("wrong_type", "expected an integer", raw), False
    if isinstance(raw, bool):
        return wrong
    if isinstance(raw, int):
        number, lenient = raw, False
    elif isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            return wrong
        if not raw.is_integer():
            return None, _fail("between_grid_points", raw=raw), False
        number, lenient = int(raw), False
    elif isinstance(raw, str) and not strict and len(raw.strip()) <= MAX_DIGITS + 10:
        text = raw.strip()
        if _NUMERIC.fullmatch(text):
            number = int(text.replace(",", "").split(".")[0])
        else:
            try:
                as_float = float(text)
            except ValueError:
                return wrong
            if as_float != as_float or abs(as_float) == float("inf"):
                return wrong
            if not as_float.is_integer():
                return None, _fail("between_grid_points", raw=raw), True
            number = int(as_float)  # "1e3", "45.00"
        lenient = True
    else:
        return wrong
    if abs(number) >= _INT_BOUND:
        return None, _fail("number_too_long", raw=raw), lenient
    return number, None, lenient


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
    """A counterfactual record: the task's feature names as keys (no other), every value on the grid."""
    parsed = parse_json_object(reply, strict)
    if not parsed.ok:
        return parsed
    values, failure, used = _match_keys(parsed.value, [f.name for f in task.features], strict)
    if failure is not None:
        return failure
    rules = list(_rules(parsed.lenient, used))
    point = []
    for feature in task.features:
        raw = values[feature.name]
        if feature.type == "integer":
            number, bad, numeric_string = _integer(raw, strict)
            if bad is not None:
                return replace(bad, where=feature.name)
            if numeric_string:
                rules.append("numeric_string")
            if number not in feature.values:
                lo, hi = feature.values[0], feature.values[-1]
                code = "between_grid_points" if lo < number < hi else "off_grid"
                return replace(_fail(code, raw=number), where=feature.name)
            point.append(number)
        else:
            label = match_label(raw, feature.values, strict, "not_allowed")
            if not label.ok:
                return replace(label, where=feature.name)
            rules.extend(label.lenient)
            point.append(label.value)
    return Parsed(tuple(point), lenient=tuple(dict.fromkeys(rules)))


def parse_text_sce(reply: Any, strict: bool = False, min_words: int = MIN_SCE_WORDS) -> Parsed[str]:
    """A revised text from ``{"revised_text": ...}`` (other keys ignored), of at least
    ``min_words`` words: the generation criterion of Dehghanighobadi et al. ("not empty or too
    short"; their code's word threshold is 1 for SST-2, the task our sentiment sample resembles)."""
    parsed = parse_json_object(reply, strict)
    if not parsed.ok:
        return parsed
    found, text, used = _find_key(parsed.value, "revised_text", strict)
    if not found:
        return _fail("no_revised_text")
    if not isinstance(text, str):
        return _fail("wrong_type", "revised_text is not a string", text)
    text = text.strip()
    words = len(_WORD.findall(text))
    if words < min_words:
        return _fail("too_short", f"{words} words")
    return Parsed(text, lenient=_rules(parsed.lenient, used))


def reason_summary(code: str | None) -> str:
    """The readable text of a reason code, for summaries."""
    return REASONS.get(code or "", code or "unknown")


def reason_key(stage: str, code: str | None) -> str:
    """The bucket an unparsed reply is counted in (``info["unparsed_reasons"]``): the stage that
    read it and its code's text, ``"sce: wrong type"``. Built from the code alone, never from a
    reason's text or the reply, so two codes never share a bucket and junk never makes new ones."""
    return f"{stage}: {reason_summary(code)}"
