"""Fuzzing every reader of model output (issue 13: "replies are data").

The readers: `parse_json_object`, `parse_answer` (every prediction), `parse_grid_sce`,
`parse_text_sce` (sce_checks/parsing.py), the explanation reader of the counterfactual tests
(`metrics.faithfulness.mentions`: does an explanation mention a word) and the option-score reader
(`checks.predict.prediction_from_scores`: what a backend's log-probabilities say).

Replies mix structured JSON-ish objects shaped like what each reader expects (keys and labels in
other case and punctuation, numbers as strings, off-grid and fractional values, extra and missing
keys; text SCEs also in the marker form, ``REVISED TEXT: ...``; records with the faults the
reference reader repairs), junk values (huge integers in decimal, hex or with underscores, deep nesting, NaN, unicode,
control characters, lone surrogates), several objects, code fences, prose around them, Python
literals, and raw text. For every reply:

- no reader raises;
- a reading is parsed, or unparsed with a known reason code; its readable reason is made of the
  code's text, a feature of the task and details from the task or a count, never of the reply
  (``raw`` holds that, shortened);
- where the strict reading parses, the lenient one parses the same value, with no leniency rule.

Targeted properties check the code: a record the reader must read is read (clean, or through
the lenient rules), and a number past `MAX_DIGITS` or nesting past `MAX_DEPTH`, wherever it sits,
is ``number_too_long`` / ``too_deep``.

Profiles (tests/helpers/fuzz.py): ``SCE_FUZZ_PROFILE=ci`` (default, derandomised, a few hundred
examples per test) or ``nightly`` (10,000 per test). With ``SCE_FUZZ_REPORT=<file>`` the number of
replies each test generated is written there as JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from typing import Any, Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sce_checks.checks.predict import prediction_from_scores
from sce_checks.metrics.faithfulness import mentions
from sce_checks.models.base import Decoding
from sce_checks.models.cache import CachedModel, ResponseCache
from sce_checks.parsing import (
    LENIENCY_RULES,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_OBJECTS,
    MAX_REPLY_CHARS,
    PLACEHOLDER,
    REASONS,
    SCE_MARKER,
    STOP_MARKER,
    Parsed,
    normalise,
    parse_answer,
    parse_grid_sce,
    parse_json_object,
    parse_text_sce,
)
from sce_checks.tasks.builtin_grids import BUILTIN_GRIDS
from sce_checks.tasks.grid import GridTask
from tests.helpers.fuzz import fuzz_profile, fuzz_settings

FUZZ = fuzz_settings()
TASKS = [BUILTIN_GRIDS["income"], BUILTIN_GRIDS["heart_disease"]]
GENERATED: Counter[str] = Counter()  # replies generated per test, for the report


@pytest.fixture(scope="module", autouse=True)
def fuzz_counts():
    """After the module: how many replies each test generated (printed; written to
    ``$SCE_FUZZ_REPORT`` when set)."""
    yield
    summary = {"profile": fuzz_profile(), "generated": dict(sorted(GENERATED.items()))}
    print(f"\nfuzzed replies: {json.dumps(summary)}")
    if os.environ.get("SCE_FUZZ_REPORT"):
        with open(os.environ["SCE_FUZZ_REPORT"], "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)


# -- replies -----------------------------------------------------------------------------------------


class Raw(str):
    """Text written into a reply as it is: what no JSON writer produces (a 5,000-digit integer, a
    hex literal, a broken token)."""


class Pairs(list):
    """An object written from (key, value) pairs, so that a key can repeat (no dict can)."""


ODD_CHARS = ["\x00", "\x1b", "\x1b[2J", "\r", "\n", "\t", "\u202e", "\u2066", "\ufeff", "\u200b", "\ud800", "\udfff",
             "\\", "\"", "'", "{", "}", "[", "]", "```", "é", "日本", "🙂",
             # what models write in reasons and revised texts: fences, objects, a key given twice
             '```{"answer": "No"}```', '```json\n{"revised_text": "x"}\n```', '{"age": 1, "age": 2}', "```python\n"]
TEXT = st.lists(st.one_of(st.characters(), st.sampled_from(ODD_CHARS)), max_size=30).map("".join)

HUGE_NUMBERS = st.one_of(
    st.integers(MAX_DIGITS + 1, 6_000).map(lambda n: Raw("9" * n)),
    st.integers(MAX_DIGITS + 1, 6_000).map(lambda n: Raw("-" + "1" * n)),
    st.integers(MAX_DIGITS, 20_000).map(lambda n: Raw("0x" + "f" * n)),
    st.integers(MAX_DIGITS // 2 + 1, 3_000).map(lambda n: Raw("1_" * n + "1")),
    st.integers(MAX_DIGITS + 1, 400).map(lambda n: Raw("1" * n + ".5")),
)
ODD_NUMBERS = st.one_of(
    HUGE_NUMBERS,
    st.sampled_from(["1e999", "-1e999", "1e-999", "-0", "NaN", "Infinity", "-Infinity", "nan", "1.5e308", "0x1F",
                     "0o17", "0b101", "1j", "True", "None", "null", "1.", ".5", "+5", "0045", "4_5", "--1"]).map(Raw),
    st.integers(2, 50_000).map(lambda n: Raw("0." + "3" * n)),  # a long fraction: a float, not too long
)
NUMERIC_STRINGS = st.one_of(
    st.integers(-10**6, 10**6).map(lambda n: f"{n:,}"),
    st.integers(0, 400).map(lambda n: f" {n}.0 "),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(MAX_DIGITS - 2, MAX_DIGITS + 12).map(lambda n: "9" * n),
    st.sampled_from(["45 years", "1e3", "1e300", "forty", "4,5", "1,000,000", "٤٥", "45.5", "", " "]),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT, NUMERIC_STRINGS, ODD_NUMBERS)
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                       max_leaves=12)


def deep(value: Any, depth: int, kind: str) -> Any:
    for _ in range(depth):
        value = {"r": value} if kind == "{" else [value]
    return value


def key_variants(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.upper(), name.title(), name.replace("_", " "), f" {name} ", f"{name}!",
                            f"the {name}", name[:-1]])


def label_variants(label: str) -> st.SearchStrategy[str]:
    return st.sampled_from([label, label.lower(), label.upper(), f"{label}.", f"  {label} ", label.replace(",", ""),
                            label.replace("'", ""), label[: len(label) // 2], f"{label} or not", f"<b>{label}</b>"])


def feature_values(feature) -> st.SearchStrategy[Any]:
    values = feature.values
    if feature.type == "integer":
        near = st.sampled_from(values).flatmap(lambda v: st.sampled_from(
            [v, str(v), f" {v} ", f"{v}.0", float(v), v + 1, v - 1, v + 0.5, str(v + 0.5), v * 1000, -v, f"{v} years"]))
    else:
        near = st.sampled_from(values).flatmap(label_variants)
    return st.one_of(near, near, SCALARS, JSONISH)


@st.composite
def grid_records(draw, task: GridTask) -> dict:
    """An object shaped like a grid SCE: each feature (rarely missing) under its name or a variant
    of it, a value near the grid or junk, rarely an extra key; in any order."""
    items = [(draw(key_variants(f.name)), draw(feature_values(f))) for f in task.features if draw(st.integers(0, 9))]
    items += draw(st.lists(st.tuples(st.one_of(TEXT, st.sampled_from(["why", "answer", "Age"])), SCALARS), max_size=1))
    return dict(draw(st.permutations(items)))


@st.composite
def answer_records(draw, options: Sequence[str]) -> dict:
    """``{"answer": ...}`` with the key or the option in a variant, or a junk value; maybe a reason."""
    obj = {draw(key_variants("answer")): draw(st.one_of(st.sampled_from(options).flatmap(label_variants), SCALARS,
                                                        JSONISH))}
    obj.update(draw(st.dictionaries(st.sampled_from(["reason", "confidence", "Answer"]), SCALARS, max_size=2)))
    return obj


@st.composite
def text_records(draw) -> dict:
    obj = {draw(key_variants("revised_text")): draw(st.one_of(TEXT, TEXT, SCALARS, JSONISH))}
    obj.update(draw(st.dictionaries(st.sampled_from(["changes", "revised text"]), SCALARS, max_size=1)))
    return obj


def emit(value: Any, style: str) -> str:
    """``value`` written as JSON (``json``: unicode as it is; ``ascii``: escaped) or as a Python
    literal (``python``: single quotes, True/None), `Raw` text as it is."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{emit(k, style)}: {emit(v, style)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{emit(k, style)}: {emit(v, style)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(emit(v, style) for v in value) + "]"
    if style == "python" and not (isinstance(value, float) and not math.isfinite(value)):
        return repr(value)
    return json.dumps(value, ensure_ascii=style == "ascii")


PROSE = st.one_of(st.just(""), TEXT, st.sampled_from(["Sure! ", "Here is the record:\n", " I think ", "{", "}", "```"]))
RAW_REPLIES = st.one_of(
    TEXT,
    st.text(alphabet="{}[]()\"':,\\ 0123456789abcxe.-_", max_size=80),
    st.integers(0, 3 * MAX_OBJECTS).map(lambda n: "{} " * n),
    st.integers(MAX_REPLY_CHARS - 5, MAX_REPLY_CHARS + 5).map(lambda n: ('{"a": 1}' * n)[:n]),
    st.integers(1, 50_000).map(lambda n: "{" * n),
    st.integers(1, 20_000).map(lambda n: '{"a": ' * n + "1" + "}" * n),
    st.integers(1, 20_000).map(lambda n: "{'a': " + "(" * n + "1" + ")" * n + "}"),
)


@st.composite
def replies(draw, records: st.SearchStrategy[dict]) -> str:
    """A reply around objects drawn from ``records``: one, several, fenced, nested deep, with
    prose, in one writing style; or raw text."""
    form = draw(st.sampled_from(["one", "one", "several", "fenced", "nested", "raw"]))
    if form == "raw":
        return draw(RAW_REPLIES)
    style = draw(st.sampled_from(["json", "json", "ascii", "python"]))
    body = emit(draw(records), style)
    if form == "several":
        body += draw(PROSE) + emit(draw(st.one_of(records, JSONISH)), style)
    elif form == "fenced":
        body = f"```{draw(st.sampled_from(['json', 'JSON', '']))}\n{body}\n```"
    elif form == "nested":  # inside other objects or lists, maybe past MAX_DEPTH
        depth = draw(st.integers(1, 2 * MAX_DEPTH))
        body = ('{"r": ' * depth + body + "}" * depth if draw(st.booleans())
                else '{"r": ' + "[" * depth + body + "]" * depth + "}")
    return draw(PROSE) + body + draw(PROSE)


def any_reply(records: st.SearchStrategy[dict]) -> st.SearchStrategy[str]:
    """Mostly replies shaped for the reader, some shaped for the others, some JSON-ish anything."""
    others = st.one_of(answer_records(TASKS[0].options), text_records(), grid_records(TASKS[0]),
                       st.dictionaries(TEXT, JSONISH, max_size=4))
    return st.one_of(replies(records), replies(records), replies(others))


# -- what every reading must be ---------------------------------------------------------------------

COUNTED = {"too_long": "characters", "several_objects": "objects", "too_many_objects": "candidates",
           "too_short": "words"}
WRONG_TYPE = {"expected an integer", "expected a string", "revised_text is not a string"}


def detail_from_task(p: Parsed, names: Sequence[str], labels: Sequence[str]) -> bool:
    """The detail of an unparsed reading is taken from the task or is a count, never from the reply."""
    d = p.detail
    if p.code in COUNTED:
        return re.fullmatch(r"\d+ " + COUNTED[p.code], d) is not None
    if p.code == "wrong_type":
        return d in WRONG_TYPE
    if p.code == "missing_keys":
        return bool(d) and set(d.split(", ")) <= set(names)
    if p.code == "ambiguous_key":
        return d == "" or d in {f"two keys for {n!r}" for n in names}
    if p.code == "ambiguous_label":
        rest = d.removeprefix("matches ")
        for label in sorted(labels, key=len, reverse=True):
            rest = rest.replace(repr(label), "")
        return d.startswith("matches ") and set(rest) <= {",", " "}
    return d == ""


def check(p: Parsed, names: Sequence[str] = (), labels: Sequence[str] = ()) -> None:
    assert isinstance(p, Parsed)
    assert set(p.lenient) <= set(LENIENCY_RULES)
    if p.ok:
        assert p.value is not None and (p.where, p.detail, p.raw) == ("", "", None)
        return
    assert p.code in REASONS, p
    assert p.value is None
    assert p.where in ("", *names), p
    assert detail_from_task(p, names, labels), p
    text = REASONS[p.code] + (f": {p.detail}" if p.detail else "")
    assert p.reason == (f"{p.where}: {text}" if p.where else text)
    assert p.raw is None or (isinstance(p.raw, str) and len(p.raw) <= 60)


def read_both(read: Callable[[str, bool], Parsed], reply: str, names: Sequence[str] = (),
              labels: Sequence[str] = ()) -> tuple[Parsed, Parsed]:
    """Both readings, each well formed; where the strict one parses, the lenient one agrees."""
    lenient, strict = read(reply, False), read(reply, True)
    check(lenient, names, labels)
    check(strict, names, labels)
    assert strict.lenient == ()
    if strict.ok:
        assert lenient.ok and lenient.value == strict.value and lenient.lenient == (), (lenient, strict)
    return lenient, strict


def grid_labels(task: GridTask) -> list[str]:
    return [v for f in task.features if f.type != "integer" for v in f.values]


# -- every reader, fuzzed ----------------------------------------------------------------------------


@FUZZ
@given(any_reply(st.dictionaries(TEXT, JSONISH, max_size=4)))
def test_json_object_reader(reply):
    GENERATED["parse_json_object"] += 1
    read_both(lambda r, strict: parse_json_object(r, strict), reply)


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), any_reply(answer_records(t.options)))))
def test_answer_reader(task_reply):
    task, reply = task_reply
    GENERATED["parse_answer"] += 1
    read_both(lambda r, strict: parse_answer(r, task.options, strict), reply, labels=task.options)


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), any_reply(grid_records(t)))))
def test_grid_sce_reader(task_reply):
    task, reply = task_reply
    GENERATED["parse_grid_sce"] += 1
    lenient, strict = read_both(lambda r, s: parse_grid_sce(r, task, s), reply, [f.name for f in task.features],
                                grid_labels(task))
    for p in (lenient, strict):  # a parsed SCE is a point of the grid
        assert not p.ok or all(v in f.values for f, v in zip(task.features, p.value))


MARKERS = st.sampled_from([SCE_MARKER, SCE_MARKER.lower(), "Revised review:", "**REVISED TEXT:**", "REVISED TEXT",
                           "REVISED POST :", STOP_MARKER])


@st.composite
def marker_replies(draw) -> str:
    """A reply in the marker form (prompts/text.py): prose, markers (exact, variants, broken,
    several), a text maybe quoted, maybe followed by an answer; or a JSON-form reply."""
    parts = [draw(PROSE)]
    for _ in range(draw(st.integers(1, 3))):
        text = draw(st.one_of(TEXT, st.just(PLACEHOLDER), st.just(""), st.just(" NO sce generated. ")))
        quote = draw(st.sampled_from(["", '"', "\u201c"]))
        parts += [draw(MARKERS), " ", quote, text, {"\u201c": "\u201d"}.get(quote, quote)]
    parts.append(draw(st.sampled_from(["", "\n\nANSWER: positive", "```"])))
    return "".join(parts)


@FUZZ
@given(st.one_of(any_reply(text_records()), marker_replies()), st.sampled_from(["json", "marker"]))
def test_text_sce_reader(reply, form):
    GENERATED["parse_text_sce"] += 1
    lenient, _ = read_both(lambda r, strict: parse_text_sce(r, strict, form=form), reply)
    assert not lenient.ok or (isinstance(lenient.value, str) and lenient.value == lenient.value.strip())
    assert not lenient.ok or normalise(lenient.value) != normalise(PLACEHOLDER)


@FUZZ
@given(TEXT, PROSE, st.sampled_from(["", "\nANSWER: negative"]))
def test_a_marker_reply_is_read_under_both_readings(text, prose, answer):
    """Prose, the marker, a text: the text (stripped of spaces and a closing emphasis), whichever reading,
    when it counts as generated; as the other form, the lenient reading of a JSON request."""
    GENERATED["marker replies"] += 1
    reply = f"{prose}{SCE_MARKER} {text}{answer}"
    lenient, strict = read_both(lambda r, s: parse_text_sce(r, s, form="marker"), reply)
    expected = re.sub(r"\A\*+(?=\s|\Z)", "", text.split(STOP_MARKER)[0].strip()).strip()  # the marker's emphasis
    if strict.ok:
        assert strict.value in (expected, expected[1:-1].strip())
    elif SCE_MARKER not in prose + text:
        assert strict.code in ("too_short", "placeholder")
    as_json = parse_text_sce(reply)
    assert not lenient.ok or not as_json.ok or as_json.value == lenient.value or "{" in reply


WORDS = st.one_of(st.sampled_from(["art", "Art", "hot", "age", "education", "x", "ſ", "İ", "ß", "a.b", "(", "\\"]),
                  st.text(min_size=1, max_size=8).filter(str.strip))


EXPLANATIONS = st.one_of(TEXT, RAW_REPLIES, replies(text_records()))


@FUZZ
@given(EXPLANATIONS, EXPLANATIONS, WORDS, st.booleans())
def test_explanation_reader(before, after, word, whole_word):
    """The counterfactual tests read an explanation by asking whether it mentions a word: any
    explanation gives a bool, and one with the word standing alone in it mentions it either way."""
    GENERATED["mentions"] += 1
    found = mentions(before, word, whole_word=whole_word)
    assert isinstance(found, bool)
    if whole_word and found and before.isascii() and word.isascii():
        assert mentions(before, word)  # a whole-word mention is a mention
    assert mentions(f"{before} {word} {after}", word, whole_word=whole_word)


SCORES = st.one_of(st.floats(), st.floats(max_value=0.0), st.integers(-10**6, 10**6), st.integers(10**300, 10**400),
                   st.booleans(), st.none(), TEXT, st.just(-math.inf), st.just(math.nan))


@FUZZ
@given(st.sampled_from([t.options for t in TASKS] + [("a", "b", "c")]).flatmap(
    lambda o: st.tuples(st.just(o), st.one_of(st.lists(SCORES, max_size=4), st.lists(st.floats(max_value=0.0),
                                                                                   min_size=len(o), max_size=len(o))))))
def test_option_scores_reader(options_scores):
    """What a backend says of the options' log-probabilities: a prediction, or unparsed with a code."""
    options, scores = options_scores
    GENERATED["prediction_from_scores"] += 1
    pred = prediction_from_scores(options, scores)
    if pred.label is None:
        assert pred.code in ("bad_scores", "no_finite_score") and pred.reason == REASONS[pred.code]
        assert pred.raw is None or len(pred.raw) <= 200
    else:
        assert pred.label in options and pred.code is None
        assert math.isclose(sum(pred.probs.values()), 1.0) and all(0.0 <= v <= 1.0 for v in pred.probs.values())


# -- the codes, targeted -----------------------------------------------------------------------------


def points(task: GridTask) -> st.SearchStrategy[tuple]:
    return st.tuples(*(st.sampled_from(f.values) for f in task.features))


STYLES = st.sampled_from(["json", "ascii", "python"])
FRAMES = st.sampled_from(["{}", "Sure! {} Hope it helps.", "```json\n{}\n```", "```\n{}\n```", "Answer:\n{}\n"])


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), points(t))), STYLES, FRAMES, st.randoms())
def test_a_clean_record_is_read_under_both_readings(task_point, style, frame, rnd):
    task, point = task_point
    GENERATED["clean records"] += 1
    items = list(task.as_dict(point).items())
    rnd.shuffle(items)
    reply = frame.replace("{}", emit(dict(items), style))
    lenient, strict = read_both(lambda r, s: parse_grid_sce(r, task, s), reply, [f.name for f in task.features])
    assert lenient.value == strict.value == point and lenient.lenient == ()


def lenient_forms(task: GridTask, point: tuple) -> st.SearchStrategy[tuple[dict, set]]:
    """The record of ``point`` with keys, labels and numbers in forms only the lenient reading
    accepts; with the rules that may be needed."""
    def key(name):
        return st.sampled_from([(name, set()), (name.upper(), {"normalised_key"}), (name.replace("_", " ").title(),
                                                                                       {"normalised_key"})])

    def value(feature, v):
        if feature.type == "integer":
            return st.sampled_from([(v, set()), (str(v), {"numeric_string"}), (f" {v:,} ", {"numeric_string"}),
                                    (float(v), set()), (f"{v}.0", {"numeric_string"})])
        return st.sampled_from([(v, set()), (v.upper(), {"normalised_label"}), (f"{v.lower()}.", {"normalised_label"})])

    parts = [st.tuples(key(f.name), value(f, v)) for f, v in zip(task.features, point)]
    return st.tuples(*parts).map(lambda kv: ({k: val for (k, _), (val, _) in kv},
                                             set().union(*(a | b for (_, a), (_, b) in kv))))


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: points(t).flatmap(
    lambda p: st.tuples(st.just(t), st.just(p), lenient_forms(t, p)))), STYLES, FRAMES)
def test_lenient_forms_are_read_leniently(case, style, frame):
    task, point, (record, rules) = case
    GENERATED["lenient forms"] += 1
    reply = frame.replace("{}", emit(record, style))
    lenient, strict = read_both(lambda r, s: parse_grid_sce(r, task, s), reply, [f.name for f in task.features],
                                grid_labels(task))
    assert lenient.ok and lenient.value == point and set(lenient.lenient) <= rules
    assert strict.ok == (not lenient.lenient)


def damaged(record: dict, repairs: set[str], style: str) -> str:
    """``record`` written with the faults the reference reader repairs: keys unquoted, ``//``
    comments after each value, the final brace missing."""
    keys = {k: (k if "bare_key" in repairs else emit(k, style)) for k in record}
    comment = " // a note, it's fine\n" if "comment" in repairs else " "
    body = ",".join(f"{comment}{keys[k]}: {emit(v, style)}" for k, v in record.items())
    return "{" + body + ("" if "unclosed_object" in repairs else "}")


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), points(t))),
       st.sets(st.sampled_from(["bare_key", "comment", "unclosed_object"]), min_size=1), STYLES,
       st.sampled_from(["{}", "```json\n{}\n```", "Here it is:\n{}\n"]))
def test_repairable_records_are_read_leniently(task_point, repairs, style, frame):
    """A record with the faults the reference reader repairs: the lenient reading reads the point and
    names the repairs it made, the strict one reads nothing."""
    task, point = task_point
    GENERATED["repairable records"] += 1
    reply = frame.replace("{}", damaged(task.as_dict(point), repairs, style))
    lenient, strict = read_both(lambda r, s: parse_grid_sce(r, task, s), reply, [f.name for f in task.features],
                                grid_labels(task))
    assert lenient.value == point and set(lenient.lenient) == repairs, (reply, lenient)
    assert not strict.ok


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), points(t))), HUGE_NUMBERS, st.integers(0, 9),
       STYLES, FRAMES)
def test_a_huge_number_anywhere_is_number_too_long(task_point, number, slot, style, frame):
    """In a feature of a grid SCE, an ignored key of an answer or of a text SCE: the same code."""
    task, point = task_point
    GENERATED["huge numbers"] += 1
    record = task.as_dict(point)
    names = list(record)
    record[names[slot % len(names)]] = number
    answer = {"answer": task.options[0], "confidence": number}
    text = {"revised_text": "a revised text", "score": number}
    for reply, read in ((record, lambda r, s: parse_grid_sce(r, task, s)),
                        (answer, lambda r, s: parse_answer(r, task.options, s)),
                        (text, lambda r, s: parse_text_sce(r, s))):
        for p in read_both(read, frame.replace("{}", emit(reply, style)), names):
            assert p.code == "number_too_long", (reply, p)


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), points(t))), st.integers(MAX_DEPTH, 4 * MAX_DEPTH),
       st.sampled_from("{["), st.booleans(), STYLES)
def test_nesting_past_the_bound_is_too_deep(task_point, depth, kind, inside, style):
    """A record wrapped in, or holding, more than `MAX_DEPTH` levels: too deep, never a RecursionError."""
    task, point = task_point
    GENERATED["deep nesting"] += 1
    record = task.as_dict(point)
    if inside:
        record[next(iter(record))] = deep(1, depth, kind)
    else:
        record = deep(record, depth, kind)
        if kind == "[":
            record = {"r": record}
    for p in read_both(lambda r, s: parse_grid_sce(r, task, s), emit(record, style), [f.name for f in task.features]):
        assert p.code == "too_deep"


# -- end to end: a hostile model does not end an audit ------------------------------------------------

HOSTILE_MODELS = '''
from tests.helpers.rule_models import TOY, RuleModel, toy_rule

HOSTILE = [
    '{"answer": ' + "9" * 5000 + '}',
    '{"x": ' + "[" * 5000 + "]" * 5000 + ', "level": "c"}',
    "{'x': 0x" + "f" * 20000 + ", 'level': 'c'}",
    '{"x": 5, "level": "c", "note": ' + "1_" * 3000 + '1}',
    "\\x1b[2J\\x1b[32mPASS\\x1b[0m <script>alert(1)</script>",
    '{"answer": "Yes"}' + "{}" * 100,
    "{" * 100000,
]


class Hostile(RuleModel):
    """Every third reply is the rule model's; the others are hostile."""

    n = 0

    def chat(self, conversations, decoding):
        out = []
        for reply in super().chat(conversations, decoding):
            self.n += 1
            out.append(reply if self.n % 3 == 0 else HOSTILE[self.n % len(HOSTILE)])
        return out


hostile = Hostile(TOY, toy_rule, "boundary")
'''


def test_a_hostile_model_is_audited_to_the_end(workdir, capsys):
    """Replies with 5,000-digit integers, 5,000 levels of nesting, hex and underscore literals,
    ANSI and HTML payloads, a hundred objects, 100,000 open braces: the audit runs to its end and
    writes every report; each unparsed reply is counted under a known code."""
    from sce_checks.cli import main

    (workdir / "hostile_models.py").write_text(HOSTILE_MODELS)
    status = main(["--dataset", "toy.toml", "--limit", "8", "--seed", "1", "--prediction", "generate",
                   "--model", "python:hostile_models:hostile", "--json", "r.json", "--markdown", "r.md",
                   "--html", "r.html"])
    out = capsys.readouterr().out
    assert status == 0, out[-3000:]
    assert "\x1b" not in out and "Traceback" not in out
    report = json.loads((workdir / "r.json").read_text(encoding="utf-8"))
    reasons = Counter()
    for r in report["results"]:
        reasons.update(r["info"]["unparsed_reasons"])
    known = {f"{stage}: {text}" for stage in ("prediction", "sce") for text in REASONS.values()}
    assert reasons and set(reasons) <= known, reasons
    codes = {key.split(": ", 1)[1] for key in reasons}
    assert {REASONS["number_too_long"], REASONS["too_deep"], REASONS["too_many_objects"]} <= codes, reasons
    assert "<script>" not in (workdir / "r.md").read_text(encoding="utf-8")
    html = (workdir / "r.html").read_text(encoding="utf-8")
    assert html.count("<script") == 1  # the report's own filter script (report/html.py), none a model wrote


# -- issue 26: fences and duplicate keys inside strings, lone surrogates, huge replies --------------

SURROGATES = st.sampled_from(["\ud800", "\udfff", "\udc80", "\ud83d"])
FENCE_TAGS = st.sampled_from(["", "json", "JSON", "python\n", "\n"])


@st.composite
def fenced_text(draw, inner: st.SearchStrategy[Any]) -> str:
    """Text as a model writes it in a reason or a revised text: prose, a code fence holding an
    object (maybe with a key given twice), prose, maybe an unclosed fence or a lone surrogate."""
    body = draw(inner)
    if draw(st.booleans()):
        body = Pairs([*body.items(), *body.items()]) if isinstance(body, dict) else body
    text = f"{draw(TEXT)}```{draw(FENCE_TAGS)}{emit(body, 'json')}```{draw(TEXT)}"
    return text + draw(st.sampled_from(["", "```", " ``` and ```", "\ud800"]))


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), st.permutations(t.options))), STYLES, FRAMES,
       st.booleans(), st.data())
def test_a_fence_inside_a_string_is_text(task_options, style, frame, reason_first, data):
    """``{"answer": A, "reason": "... ```{"answer": B}``` ..."}`` is read as A, under both readings."""
    task, (mine, other, *_) = task_options
    GENERATED["fences in strings"] += 1
    reason = data.draw(fenced_text(st.just({"answer": other})))
    items = [("answer", mine), ("reason", reason)]
    reply = frame.replace("{}", emit(Pairs(items[::-1] if reason_first else items), style))
    lenient, strict = read_both(lambda r, s: parse_answer(r, task.options, s), reply, labels=task.options)
    assert lenient.value == strict.value == mine, (reply, lenient, strict)


@FUZZ
@given(st.one_of(TEXT, st.just("")).flatmap(lambda t: fenced_text(st.just({"revised_text": t}))), STYLES, FRAMES)
def test_a_revised_text_quoting_code_is_read_whole(text, style, frame):
    GENERATED["fences in revised texts"] += 1
    reply = frame.replace("{}", emit({"revised_text": text}, style))
    lenient, strict = read_both(lambda r, s: parse_text_sce(r, s), reply)
    assert strict.ok or strict.code == "too_short", (reply, strict)
    assert strict.value in (None, text.strip())


@FUZZ
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), points(t), st.integers(0, len(t.features) - 1))),
       st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                 TEXT, NUMERIC_STRINGS, st.lists(TEXT, max_size=2)), st.integers(0, 20), STYLES, FRAMES)
def test_a_key_given_twice_is_duplicate_key_unless_it_repeats_its_value(case, junk, at, style, frame):
    """A grid record naming a feature twice: unparsed (``duplicate_key``) under both readings when
    the two values differ, read as usual when they are the same."""
    task, point, slot = case
    GENERATED["duplicate keys"] += 1
    feature, value = task.features[slot], point[slot]
    other = next(v for v in feature.values if v != value) if junk is None else junk
    items = list(task.as_dict(point).items())
    for second, differs in ((other, repr(other) != repr(value)), (value, False)):
        pairs = Pairs(items)
        pairs.insert(at % (len(items) + 1), (feature.name, second))
        reply = frame.replace("{}", emit(pairs, style))
        lenient, strict = read_both(lambda r, s: parse_grid_sce(r, task, s), reply, [f.name for f in task.features],
                                    grid_labels(task))
        if differs:
            assert lenient.code == strict.code == "duplicate_key", (reply, lenient, strict)
        else:
            assert lenient.value == strict.value == point, (reply, lenient, strict)


@pytest.fixture(scope="module")
def surrogate_cache(tmp_path_factory):
    with ResponseCache(tmp_path_factory.mktemp("cache") / "responses.sqlite") as cache:
        yield cache


class Replier:
    """A backend that answers every conversation with the reply it is told to give."""

    reply = ""

    def chat(self, conversations, decoding):
        return [self.reply for _ in conversations]


@FUZZ
@given(st.one_of(any_reply(answer_records(TASKS[0].options)),
                 st.tuples(any_reply(text_records()), SURROGATES, st.integers(0, 40)).map(
                     lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:]),
                 st.integers(1, 3_000).map(lambda n: '{"revised_text": "' + "ab " * (MAX_REPLY_CHARS // 3 + n) + '"}')))
def test_any_reply_reads_the_same_from_the_cache(surrogate_cache, reply):
    """Any reply (lone surrogates, replies past the reading bound) is stored without an error and
    read back, on a rerun that makes no model call, to the same readings."""
    GENERATED["cached replies"] += 1
    backend = Replier()
    backend.reply = reply
    conversation = [{"role": "user", "content": hashlib.sha256(reply.encode("utf-8", "surrogatepass")).hexdigest()}]
    readings = []
    for run in range(2):
        model = CachedModel(backend, surrogate_cache)
        got = model.chat([conversation], Decoding())[0]
        if run == 1:
            assert model.stats.chat_calls == 0 and model.stats.cache_hits == 1
        readings.append((parse_answer(got, TASKS[0].options), parse_answer(got, TASKS[0].options, True),
                         parse_text_sce(got), parse_text_sce(got, True), got))
    assert readings[0] == readings[1]
    assert readings[0][:4] == (parse_answer(reply, TASKS[0].options), parse_answer(reply, TASKS[0].options, True),
                               parse_text_sce(reply), parse_text_sce(reply, True))
    assert len(readings[0][4]) <= MAX_REPLY_CHARS
