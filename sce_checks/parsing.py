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
objects. Anything that needs a guess stays *unparsed*, with a reason: a label that matches two
values, a number between grid points or off the grid, a number inside prose (``"45 years"``), a
missing or an extra key. (The released code of Dehghanighobadi et al. matched labels by substring,
so "no" matched "not"; we never do.) Every `Parsed` says which leniency rules its reading needed,
so results can count what the lenient reading changed.

Replies are data: nothing here executes model output (``ast.literal_eval`` only reads literals),
and reading is bounded: a reply over `MAX_REPLY_CHARS`, an object nested deeper than
`MAX_DEPTH`, or a number of more than `MAX_DIGITS` digits is unparsed with its reason, never an
exception.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Generic, Sequence, TypeVar

from sce_checks.tasks.grid import GridTask, Point

T = TypeVar("T")

PARSINGS = ("lenient", "strict")
LENIENCY_RULES = ("numeric_string", "normalised_label", "normalised_key", "first_object")

MAX_REPLY_CHARS = 200_000  # longer replies are not searched for JSON
MAX_DEPTH = 32  # nesting of brackets inside one candidate object
MAX_DIGITS = 30  # digits of one number: far beyond any grid value, far below Python's int limit
MIN_SCE_WORDS = 1  # a text SCE needs at least this many words to count as generated

# Reason codes: the summary counts by code; the text beside it says what exactly was wrong.
REASONS = {
    "empty_reply": "empty reply",
    "too_long": "reply too long to read",
    "no_json_object": "no JSON object in reply",
    "several_objects": "several JSON objects",
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

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_NUMERIC = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.0*)?")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A parsed value, or None with a reason code and a one-line reason. ``lenient`` names the
    leniency rules the reading needed (empty under the strict reading, or for a clean reply)."""

    value: T | None
    reason: str | None = None
    code: str | None = None
    lenient: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.reason is None


def _fail(code: str, detail: str = "") -> Parsed[Any]:
    text = REASONS[code] + (f": {detail}" if detail else "")
    return Parsed(None, text, code)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalise(text: str) -> str:
    """Case, whitespace and punctuation ignored: "Bachelor's degree." -> "bachelors degree"
    (apostrophes dropped, other non-alphanumerics as spaces), as the reference code compares labels."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


# -- JSON objects ---------------------------------------------------------------------------------


def _balanced_objects(text: str) -> list[str]:
    """Every top-level ``{...}`` span, quotes respected; spans nested deeper than `MAX_DEPTH`
    are returned too (the loader then reports them as too deep)."""
    spans, depth, start, quote, escape = [], 0, -1, "", False
    for i, ch in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'" and depth > 0:
            quote = ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def _too_deep(candidate: str) -> bool:
    depth = deepest = 0
    quote, escape = "", False
    for ch in candidate:
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "}]":
            depth -= 1
    return deepest > MAX_DEPTH


def _has_long_number(candidate: str) -> bool:
    return re.search(r"\d{%d}" % (MAX_DIGITS + 1), candidate) is not None


def _load(candidate: str) -> tuple[Any, str | None]:
    """(object, None), or (None, reason code) when the candidate is out of bounds or not a literal."""
    if _too_deep(candidate):
        return None, "too_deep"
    try:
        return json.loads(candidate), None
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so is int() past its limit
        pass
    if _has_long_number(candidate):
        return None, "number_too_long"
    try:  # single-quoted dicts: a literal, never evaluated as code
        return ast.literal_eval(candidate), None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, "no_json_object"


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise ValueError("number too long")
    return int(digits)


def load_json(text: str, max_chars: int = MAX_REPLY_CHARS) -> tuple[Any, str | None]:
    """Strict JSON (no literal fallback) within the same bounds as replies: (value, None), or
    (None, reason code) when ``text`` is over ``max_chars``, nested deeper than `MAX_DEPTH`, holds
    an integer of more than `MAX_DIGITS` digits, or is not JSON. For data that is not a reply,
    such as a server's response (models/openai.py): reading it never raises."""
    if len(text) > max_chars:
        return None, "too_long"
    if _too_deep(text):
        return None, "too_deep"
    try:
        return json.loads(text, parse_int=_bounded_int), None
    except (ValueError, RecursionError):
        return None, "number_too_long" if _has_long_number(text) else "no_json_object"


def parse_json_object(reply: Any, strict: bool = False) -> Parsed[dict]:
    """The JSON object of a reply. Several different objects: unparsed when ``strict``, else the
    first one (``first_object``)."""
    if not isinstance(reply, str) or not reply.strip():
        return _fail("empty_reply")
    if len(reply) > MAX_REPLY_CHARS:
        return _fail("too_long", f"{len(reply)} characters")
    fenced = _FENCE.findall(reply)
    found: list[dict] = []
    problem = None
    for source in fenced if fenced else [reply]:
        for span in _balanced_objects(source):
            obj, why = _load(span)
            if isinstance(obj, dict):
                if obj not in found:
                    found.append(obj)
            elif why in ("too_deep", "number_too_long"):
                problem = problem or why
    if not found:
        return _fail(problem or "no_json_object")
    for obj in found:
        if _nested_too_deep(obj):
            return _fail("too_deep")
    if len(found) > 1:
        if strict:
            return _fail("several_objects", f"{len(found)} objects")
        return Parsed(found[0], lenient=("first_object",))
    return Parsed(found[0])


def _nested_too_deep(value: Any, depth: int = 0) -> bool:
    """Python literals can nest without brackets we counted (tuples); bound them too."""
    if depth > MAX_DEPTH:
        return True
    if isinstance(value, dict):
        return any(_nested_too_deep(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_nested_too_deep(v, depth + 1) for v in value)
    return False


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
            return None, _fail("ambiguous_key", _short(key)), used
        else:
            extra.append(str(key))
            continue
        if target in out:
            return None, _fail("ambiguous_key", f"two keys for {target!r}"), used
        out[target] = value
    missing = [n for n in names if n not in out]
    if missing:
        return None, _fail("missing_keys", ", ".join(missing)), used
    if extra:
        return None, _fail("extra_keys", ", ".join(_short(e, 30) for e in extra[:5])), used
    return out, None, used


def match_label(raw: Any, allowed: Sequence[str], strict: bool, not_found: str) -> Parsed[str]:
    """One of ``allowed``: exact after trimming whitespace; else (lenient) the one label equal
    once normalised (`normalise`)."""
    if not isinstance(raw, str):
        return _fail("wrong_type", f"expected a string, got {_short(raw)}")
    text = raw.strip()
    if text in allowed:
        return Parsed(text)
    if not strict:
        hits = [a for a in allowed if normalise(a) == normalise(text)]
        if len(hits) == 1:
            return Parsed(hits[0], lenient=("normalised_label",))
        if len(hits) > 1:
            return _fail("ambiguous_label", f"{_short(text)} matches {', '.join(map(repr, hits[:4]))}")
    return _fail(not_found, _short(text))


def _integer(raw: Any, strict: bool) -> tuple[int | None, Parsed[Any] | None, bool]:
    """An integer value: a JSON integer or integral float; (lenient) a string holding only a
    number (``"45"``, ``" 1,500 "``, ``"45.0"``). Fractions stay fractions (between grid points)."""
    if isinstance(raw, bool):
        return None, _fail("wrong_type", f"expected an integer, got {_short(raw)}"), False
    if isinstance(raw, int):
        return raw, None, False
    if isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            return None, _fail("wrong_type", f"expected an integer, got {_short(raw)}"), False
        if raw.is_integer():
            return int(raw), None, False
        return None, _fail("between_grid_points", _short(raw)), False
    if isinstance(raw, str) and not strict:
        text = raw.strip()
        if len(text) <= MAX_DIGITS + 10 and _NUMERIC.fullmatch(text):
            return int(text.replace(",", "").split(".")[0]), None, True
        try:
            number = float(text) if len(text) <= MAX_DIGITS + 10 else None
        except ValueError:
            number = None
        if number is not None and number == number and abs(number) != float("inf"):
            if number.is_integer():  # "1e3", "45.00"
                return int(number), None, True
            return None, _fail("between_grid_points", _short(raw)), True
    return None, _fail("wrong_type", f"expected an integer, got {_short(raw)}"), False


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
                return Parsed(None, f"{feature.name}: {bad.reason}", bad.code)
            if numeric_string:
                rules.append("numeric_string")
            if number not in feature.values:
                lo, hi = feature.values[0], feature.values[-1]
                code = "between_grid_points" if lo < number < hi else "off_grid"
                return Parsed(None, f"{feature.name}: {REASONS[code]}: {_short(number)}", code)
            point.append(number)
        else:
            label = match_label(raw, feature.values, strict, "not_allowed")
            if not label.ok:
                return Parsed(None, f"{feature.name}: {label.reason}", label.code)
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
        return _fail("wrong_type", f"revised_text is not a string: {_short(text)}")
    text = text.strip()
    words = len(_WORD.findall(text))
    if words < min_words:
        return _fail("too_short", f"{words} words")
    return Parsed(text, lenient=_rules(parsed.lenient, used))


def reason_summary(code: str | None) -> str:
    """The readable text of a reason code, for summaries."""
    return REASONS.get(code or "", code or "unknown")
