"""User grid tasks from a TOML file (public contract 4 of the design; format in docs/datasets.md).

Every mistake is reported as one `UserInputError` naming the file and the key (``features[1].type``,
0-based like the TOML array), because a typo in a task file must never turn silently into a
different grid: unknown keys are refused, not ignored.

Integer features take ``min, min+step, min+2*step, ...`` while the value is <= ``max``: ``max``
is included only when ``max - min`` is a multiple of ``step`` (``min=0, max=10, step=4`` gives
0, 4, 8). Feature names must be ASCII identifiers (``[A-Za-z_][A-Za-z0-9_]*``): they are the
JSON keys the model writes back, so they must be easy to reproduce exactly.

An integer or ordinal feature may declare ``increases = "<option>"``: the direction the CheckList
DIR test expects when the feature moves one step up (docs/perturbation-checks.md). It must be one
of ``options``; categorical features cannot declare one (their values have no order).
"""

from __future__ import annotations

import os
import re
from typing import Any

from sce_checks.errors import UserInputError
from sce_checks.tasks.grid import FEATURE_TYPES, Feature, GridTask
from sce_checks.userfiles import read_toml

# The boundary search keeps one code per grid point; beyond this a grid is not a "small,
# fully enumerable" input space any more (and the reference minimal counterfactual is costly).
MAX_GRID_POINTS = 2_000_000
# Integer values are written into prompts and placed on Gower's axis as floats: beyond 2^53 a
# float no longer holds every integer, and far beyond it ranges overflow.
MAX_INTEGER = 2**53
# A report draws the decision boundary from one digit per grid point (the answer's index among
# the options: checks/sce.py, grid_predictions), so a grid task has at most ten options.
MAX_GRID_OPTIONS = 10
FEATURE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

TOP_KEYS: tuple[str, ...] = ("name", "question", "preamble", "options", "features")
FEATURE_KEYS: dict[str, tuple[str, ...]] = {
    "integer": ("name", "label", "type", "min", "max", "step", "increases"),
    "ordinal": ("name", "label", "type", "values", "increases"),
    "categorical": ("name", "label", "type", "values"),
}


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def check_keys(doc: dict[str, Any], accepted: tuple[str, ...], where: str, required: tuple[str, ...]) -> None:
    """Refuse unknown keys (typos) and report missing ones, naming the accepted keys."""
    for key in doc:
        if key not in accepted:
            raise UserInputError(f"{where}{key}: unknown key; accepted keys: {', '.join(accepted)}")
    for key in required:
        if key not in doc:
            raise UserInputError(f"{where}{key}: missing required key")


def get_string(doc: dict[str, Any], key: str, where: str, allow_empty: bool = False) -> str:
    value = doc[key]
    if not isinstance(value, str):
        raise UserInputError(f"{where}{key}: expected a string, got {_type_name(value)} {value!r}")
    if not allow_empty and not value.strip():
        raise UserInputError(f"{where}{key}: must not be empty")
    return value


def check_label(value: Any, where: str) -> str:
    """An option or a value the model answers with: a non-empty string without surrounding
    whitespace (a reply is read without it, so such a label could never be matched)."""
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{where}: expected a non-empty string, got {value!r}")
    if value != value.strip():
        raise UserInputError(f"{where}: {value!r} has surrounding whitespace, which no reply can match; "
                             f"write {value.strip()!r}")
    return value


def get_options(doc: dict[str, Any], where: str, exactly: int | None = None,
                most: int | None = None) -> tuple[str, ...]:
    """``options``: distinct non-empty strings, at least two (``exactly`` or at ``most`` that many
    where a caller needs it)."""
    value = doc["options"]
    want = (f"exactly {exactly}" if exactly is not None else f"2 to {most}" if most is not None else "at least 2")
    if not isinstance(value, list):
        raise UserInputError(f"{where}options: expected an array of {want} strings, got {_type_name(value)}")
    for i, v in enumerate(value):
        check_label(v, f"{where}options[{i}]")
    if ((exactly is not None and len(value) != exactly) or len(value) < 2
            or (most is not None and len(value) > most)):
        raise UserInputError(f"{where}options: expected {want} options, got {len(value)}: {value!r}")
    dupes = sorted({v for v in value if value.count(v) > 1})
    if dupes:
        raise UserInputError(f"{where}options: duplicate option {dupes[0]!r}; options must be distinct")
    return tuple(value)


def _get_int(doc: dict[str, Any], key: str, where: str) -> int:
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserInputError(f"{where}{key}: expected an integer, got {_type_name(value)} {value!r}")
    if abs(value) > MAX_INTEGER:
        raise UserInputError(f"{where}{key}: {value} is out of range; integer features take values from -2^53 to 2^53")
    return value


def _integer_values(doc: dict[str, Any], where: str) -> range:
    lo = _get_int(doc, "min", where)
    hi = _get_int(doc, "max", where)
    step = _get_int(doc, "step", where) if "step" in doc else 1
    if step <= 0:
        raise UserInputError(f"{where}step: must be a positive integer, got {step}")
    if hi < lo:
        raise UserInputError(f"{where}max: empty range: max ({hi}) is below min ({lo})")
    # Values are min, min+step, ... up to max; max itself only when (max - min) is a multiple of step.
    return range(lo, hi + 1, step)


def _category_values(doc: dict[str, Any], kind: str, where: str) -> tuple[str, ...]:
    value = doc["values"]
    if not isinstance(value, list) or not value:
        got = _type_name(value) if not isinstance(value, list) else "an empty array"
        raise UserInputError(f"{where}values: expected a non-empty array of strings, got {got}")
    for i, v in enumerate(value):
        check_label(v, f"{where}values[{i}]")
    dupes = sorted({v for v in value if value.count(v) > 1})
    if dupes:
        raise UserInputError(f"{where}values: duplicate value {dupes[0]!r}; values must be distinct")
    if kind == "ordinal" and len(value) < 2:
        raise UserInputError(f"{where}values: an ordinal feature needs at least 2 values, got {len(value)}")
    return tuple(value)


def _feature(doc: Any, where: str, options: tuple[str, ...]) -> tuple[str, str, str, range | tuple[str, ...], str | None]:
    """Validate one ``[[features]]`` table; values stay a lazy range so a huge grid is refused
    before it is built."""
    if not isinstance(doc, dict):
        raise UserInputError(f"{where[:-1]}: expected a table ([[features]]), got {_type_name(doc)}")
    all_keys = tuple(dict.fromkeys(k for keys in FEATURE_KEYS.values() for k in keys))
    check_keys(doc, all_keys, where, ())  # a typo ("lable") is reported as such, not as a missing key
    for key in ("name", "label", "type"):
        if key not in doc:
            raise UserInputError(f"{where}{key}: missing required key")
    kind = get_string(doc, "type", where)
    if kind not in FEATURE_TYPES:
        raise UserInputError(
            f"{where}type: unknown type {kind!r}; expected integer, ordinal or categorical"
        )
    if kind == "categorical" and "increases" in doc:
        raise UserInputError(
            f"{where}increases: only integer and ordinal features can declare a direction "
            "(a categorical feature's values have no order)"
        )
    required = ("name", "label", "type", "min", "max") if kind == "integer" else ("name", "label", "type", "values")
    check_keys(doc, FEATURE_KEYS[kind], where, required)
    name = get_string(doc, "name", where)
    if not FEATURE_NAME.fullmatch(name):
        raise UserInputError(
            f"{where}name: {name!r} is not a valid name; use ASCII letters, digits and underscores, "
            "not starting with a digit (it is the JSON key the model writes)"
        )
    label = get_string(doc, "label", where)
    values = _integer_values(doc, where) if kind == "integer" else _category_values(doc, kind, where)
    increases = None
    if "increases" in doc:
        increases = get_string(doc, "increases", where)
        if increases not in options:
            raise UserInputError(
                f"{where}increases: {increases!r} is not one of the options: {', '.join(map(repr, options))}"
            )
    return name, label, kind, values, increases


def grid_task_from_dict(doc: dict[str, Any], source: str) -> GridTask:
    """Build a `GridTask` from a parsed task file; ``source`` (the path) prefixes every error."""
    top = f"{source}: "
    check_keys(doc, TOP_KEYS, top, TOP_KEYS)
    name = get_string(doc, "name", top)
    question = get_string(doc, "question", top)
    preamble = get_string(doc, "preamble", top)
    options = get_options(doc, top, most=MAX_GRID_OPTIONS)
    raw_features = doc["features"]
    if not isinstance(raw_features, list) or not raw_features:
        raise UserInputError(f"{top}features: expected one or more [[features]] tables")
    parsed = [_feature(f, f"{source}: features[{i}].", options) for i, f in enumerate(raw_features)]
    seen: dict[str, int] = {}
    for i, (fname, *_rest) in enumerate(parsed):
        if fname in seen:
            raise UserInputError(
                f"{source}: features[{i}].name: duplicate feature name {fname!r} (also features[{seen[fname]}])"
            )
        seen[fname] = i
    size = 1
    for i, (_name, _label, _kind, values, _increases) in enumerate(parsed):
        if len(values) > MAX_GRID_POINTS:
            raise UserInputError(f"{source}: features[{i}]: {len(values):,} values; a grid has at most "
                                 f"{MAX_GRID_POINTS:,} points (use a larger step or fewer values)")
        size *= len(values)
    if size > MAX_GRID_POINTS:
        counts = " x ".join(str(len(v)) for _n, _l, _k, v, _i in parsed)
        raise UserInputError(
            f"{source}: features: the grid has {size:,} points ({counts}); at most {MAX_GRID_POINTS:,} "
            "are supported (use a larger step or fewer values)"
        )
    features = tuple(Feature(n, lab, k, tuple(v), inc) for n, lab, k, v, inc in parsed)  # type: ignore[arg-type]
    return GridTask(name=name, question=question, preamble=preamble, options=options,  # type: ignore[arg-type]
                    features=features, source=source)


def load_grid_file(path: str | os.PathLike[str]) -> GridTask:
    """Load a user grid task from a TOML file (format: docs/datasets.md); ``source`` is the path."""
    source = os.fspath(path)
    return grid_task_from_dict(read_toml(source), source)
