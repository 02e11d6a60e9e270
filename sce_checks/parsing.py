"""Reading model replies. Robust to the usual wrapping (code fences, prose around the object,
single-quoted keys) but never guessing: an answer that is not exactly one of the options, or an
SCE value that is off the grid or of the wrong type, is *unparsed*, with a reason that reports
count and show. (The released code of Dehghanighobadi et al. matched labels by substring, so
"no" matched "not"; we do not.)

Nothing here executes model output: `ast.literal_eval` only reads Python literals.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Generic, Sequence, TypeVar

from sce_checks.tasks.grid import GridTask, Point

T = TypeVar("T")

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A parsed value, or None with the reason it could not be parsed."""

    value: T | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _balanced_objects(text: str) -> list[str]:
    """Every top-level ``{...}`` span, braces inside strings respected."""
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


def _load(candidate: str) -> Any:
    try:
        return json.loads(candidate)
    except json.JSONDecodeError:
        pass
    try:  # single-quoted dicts: a literal, never evaluated as code
        return ast.literal_eval(candidate)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_json_object(reply: str) -> Parsed[dict]:
    """The one JSON object in a reply. Several different objects are ambiguous: unparsed."""
    if not isinstance(reply, str) or not reply.strip():
        return Parsed(None, "empty reply")
    fenced = _FENCE.findall(reply)
    sources = fenced if fenced else [reply]
    found: list[dict] = []
    for source in sources:
        for span in _balanced_objects(source):
            obj = _load(span)
            if isinstance(obj, dict) and obj not in found:
                found.append(obj)
    if not found:
        return Parsed(None, "no JSON object in reply")
    if len(found) > 1:
        return Parsed(None, f"{len(found)} different JSON objects in reply")
    return Parsed(found[0])


def parse_answer(reply: str, options: Sequence[str]) -> Parsed[str]:
    """The option named by ``{"answer": ...}``; exact match after trimming whitespace."""
    parsed = parse_json_object(reply)
    if not parsed.ok:
        return Parsed(None, parsed.reason)
    obj = parsed.value
    if "answer" not in obj:
        return Parsed(None, "no 'answer' key")
    answer = obj["answer"]
    if not isinstance(answer, str):
        return Parsed(None, f"answer is not a string: {answer!r}")
    answer = answer.strip()
    if answer not in options:
        return Parsed(None, f"answer {answer!r} is not one of the options")
    return Parsed(answer)


def parse_grid_sce(reply: str, task: GridTask) -> Parsed[Point]:
    """A counterfactual record: exactly the task's feature names as keys, every value on the grid."""
    parsed = parse_json_object(reply)
    if not parsed.ok:
        return Parsed(None, parsed.reason)
    obj = parsed.value
    names = [f.name for f in task.features]
    missing = [n for n in names if n not in obj]
    extra = [k for k in obj if k not in names]
    if missing:
        return Parsed(None, f"missing keys: {', '.join(missing)}")
    if extra:
        return Parsed(None, f"unexpected keys: {', '.join(map(str, extra))}")
    point = []
    for feature in task.features:
        raw = obj[feature.name]
        if feature.type == "integer":
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                return Parsed(None, f"{feature.name}: expected an integer, got {raw!r}")
            if isinstance(raw, float) and not raw.is_integer():
                return Parsed(None, f"{feature.name}: expected an integer, got {raw!r}")
            value: Any = int(raw)
        else:
            if not isinstance(raw, str):
                return Parsed(None, f"{feature.name}: expected one of the listed strings, got {raw!r}")
            value = raw.strip()
        if value not in feature.values:
            return Parsed(None, f"{feature.name}: {value!r} is not an allowed value")
        point.append(value)
    return Parsed(tuple(point))


MIN_TEXT_CHARS = 3


def parse_text_sce(reply: str) -> Parsed[str]:
    """A revised text from ``{"revised_text": ...}``: a non-empty string of at least 3 characters
    (the paper's "not empty or too short" generation criterion, made explicit)."""
    parsed = parse_json_object(reply)
    if not parsed.ok:
        return Parsed(None, parsed.reason)
    obj = parsed.value
    if "revised_text" not in obj:
        return Parsed(None, "no 'revised_text' key")
    text = obj["revised_text"]
    if not isinstance(text, str):
        return Parsed(None, f"revised_text is not a string: {text!r}")
    text = text.strip()
    if len(text) < MIN_TEXT_CHARS:
        return Parsed(None, f"revised_text too short ({len(text)} characters)")
    return Parsed(text)
