"""Free-text tasks: a labelled set of short texts and the options the model chooses from.

Where a text task comes from (one scheme, documented for users in docs/datasets.md):

* ``sentiment``: the built-in sample (400 movie-review snippets of Hutto and Gilbert 2014,
  shipped in ``sce_checks/data/sentiment``), loaded with `importlib.resources`.
* A text task file: a ``.toml`` with ``name``, ``question``, ``preamble``, ``options`` and
  ``data = "reviews.csv"`` (a ``.csv`` / ``.jsonl`` / ``.parquet`` file or a saved dataset folder
  relative to the ``.toml``, or ``hf:<name>``), optionally ``text_field``, ``label_field``,
  ``id_field``, ``ignore_fields``, and ``split`` / ``config`` for Hugging Face datasets. This is the way to ask
  your own question; every label must be one of ``options``; rows may be unlabelled. An optional
  table ``[directional]`` maps options to sentences that push a text towards that option, for
  the CheckList DIR test (docs/perturbation-checks.md).
* A ``.csv`` / ``.jsonl`` / ``.parquet`` file, a folder written by ``datasets``' ``save_to_disk``
  or ``hf:<name>[:<split>]`` (a dataset in the local Hugging Face cache; the last three read by
  sce_checks/tasks/tables.py) given directly: columns ``id`` (optional), ``text``, ``label``
  (required on every row); the options are the distinct labels, sorted; the question is generic.
  A ``.toml`` lying next to the data is NOT picked up implicitly: pass the ``.toml`` instead.
* From Python: `load_text_dataset` with keyword arguments (the same settings as a task file).

Every error names the file and line (JSONL line, CSV line where the row starts, a table's row)
because users fix these files by hand; a text over `MAX_TEXT_CHARS`, a label over
`MAX_LABEL_CHARS` and a NUL character are refused (docs/reliability.md); unknown columns are refused so that nothing is dropped silently. A row
without an id gets ``row-<n>``, n counting data rows from 1.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping

from sce_checks.errors import UserInputError
from sce_checks.tasks.grid_file import check_keys, check_label, get_options, get_string
from sce_checks.tasks.tables import HF_PREFIX, is_table_source, table_records
from sce_checks.userfiles import read_json, read_toml, read_user_text

DATA_SUFFIXES: tuple[str, ...] = (".csv", ".jsonl", ".parquet")
TASK_FILE_KEYS: tuple[str, ...] = (
    "name", "question", "preamble", "options", "data", "text_field", "label_field", "id_field", "ignore_fields",
    "directional", "split", "config",
)
# A text is at most this many characters: it is sent to the model in every prompt and rewritten
# whole in its SCE (under schema elicitation the token budget grows with the longest text), so a
# runaway text (a 50 MB JSONL cell) is refused with its line, not sent (docs/reliability.md).
MAX_TEXT_CHARS = 20_000
TASK_FILE_REQUIRED: tuple[str, ...] = ("name", "question", "preamble", "options", "data")

DATA_KINDS = ("a .csv, .jsonl or .parquet file, a folder written by datasets' save_to_disk, or hf:<name> "
              "(a dataset in the local Hugging Face cache)")

# Used when a .csv/.jsonl file is given directly (no task file to say what is asked).
GENERIC_PREAMBLE = "You will be shown a short text."
GENERIC_QUESTION = "Which of the following labels best describes this text?"

SENTIMENT_PREAMBLE = "You will be shown a short snippet from a movie review."
SENTIMENT_QUESTION = "Is the sentiment of this movie review snippet negative or positive?"
SENTIMENT_OPTIONS: tuple[str, str] = ("negative", "positive")
# ``sentiment3``: the same snippets in three classes, by their mean human rating (-4..+4):
# negative <= -1.5 < neutral < +1.5 <= positive (134 / 122 / 144 snippets). The shipped sample
# holds no snippet with |rating| < 0.5, so "neutral" here is a weak sentiment, 0.5 <= |rating| < 1.5.
SENTIMENT3_QUESTION = "Is the sentiment of this movie review snippet negative, neutral or positive?"
SENTIMENT3_OPTIONS: tuple[str, str, str] = ("negative", "neutral", "positive")
SENTIMENT3_CUTOFF = 1.5


@dataclass(frozen=True)
class TextExample:
    """One input text; ``gold`` is its human label, or None for unlabelled data."""

    id: str
    text: str
    gold: str | None


@dataclass(frozen=True)
class TextTask:
    """A classification of short texts into ``options`` (two or more labels)."""

    name: str
    question: str
    preamble: str
    options: tuple[str, ...]
    examples: tuple[TextExample, ...]
    source: str
    # option -> sentences that push a text towards it (CheckList DIR, checks/perturbation.py);
    # empty: the task declares none. Not hashed and not in the fingerprint: it defines a check's
    # probes, not the task (the DIR result's info records the sentences used).
    directional: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    kind = "text"  # class attribute, not a field: tells audit code which runner to use

    def fingerprint(self) -> dict[str, Any]:
        """What defines the task, for baselines: comparing results across a changed dataset
        or question would be meaningless. Texts are hashed to keep reports small."""
        digest = hashlib.sha256()
        for e in self.examples:
            digest.update(json.dumps([e.id, e.text], ensure_ascii=False).encode("utf-8") + b"\n")
        return {
            "name": self.name,
            "question": self.question,
            "options": list(self.options),
            "n_examples": len(self.examples),
            "examples_sha256": digest.hexdigest(),
        }


@dataclass(frozen=True)
class _Fields:
    text: str = "text"
    label: str = "label"
    id: str = "id"
    ignore: tuple[str, ...] = ()

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.id, self.text, self.label, *self.ignore)


# A raw record: (where, for messages "file:line"; 1-based record number; the field mapping).
_Record = tuple[str, int, dict[str, Any]]


def _jsonl_records(text: str, shown: str, fields: _Fields) -> Iterator[_Record]:
    n = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # blank lines (a trailing newline, spacing) carry no record
        where = f"{shown}:{line_no}"
        obj = read_json(line, where)
        if not isinstance(obj, dict):
            raise UserInputError(f"{where}: expected a JSON object per line, got {type(obj).__name__}")
        for key in obj:
            if key not in fields.accepted:
                raise UserInputError(
                    f"{where}: unknown field {key!r}; accepted fields: {', '.join(fields.accepted)} "
                    "(to ignore a field, list it in ignore_fields of a task .toml)"
                )
        n += 1
        yield where, n, obj


def _csv_records(text: str, shown: str, fields: _Fields) -> Iterator[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UserInputError(f"{shown}: empty CSV file; expected a header line with a {fields.text!r} column") from None
    except csv.Error as e:
        raise UserInputError(f"{shown}:1: invalid CSV: {e}") from None
    header = [h.strip() for h in header]
    for col in header:
        if col not in fields.accepted:
            raise UserInputError(
                f"{shown}:1: unknown column {col!r}; accepted columns: {', '.join(fields.accepted)} "
                "(to ignore a column, list it in ignore_fields of a task .toml)"
            )
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise UserInputError(f"{shown}:1: duplicate column {dupes[0]!r}")
    if fields.text not in header:
        raise UserInputError(f"{shown}:1: no {fields.text!r} column; header is {', '.join(header)}")
    n = 0
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise UserInputError(f"{shown}:{start}: invalid CSV: {e}") from None
        where = f"{shown}:{start}"
        start = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise UserInputError(f"{where}: expected {len(header)} fields ({', '.join(header)}), got {len(row)}")
        n += 1
        yield where, n, dict(zip(header, row))


def _examples(
    records: Iterator[_Record], shown: str, fields: _Fields, options: tuple[str, ...] | None, need_label: bool
) -> tuple[TextExample, ...]:
    """Validate records into examples. ``options`` None: any label (options come from the data)."""
    out: list[TextExample] = []
    first_seen: dict[str, str] = {}
    for where, n, rec in records:
        text = rec.get(fields.text)
        if text is None or (isinstance(text, str) and not text.strip()):
            raise UserInputError(f"{where}: missing or empty {fields.text!r}")
        if not isinstance(text, str):
            raise UserInputError(f"{where}: {fields.text!r} must be a string, got {type(text).__name__}")
        _check_text(text, where, fields.text)
        raw_id = rec.get(fields.id)
        if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
            ex_id = f"row-{n}"
        elif isinstance(raw_id, str):
            ex_id = raw_id.strip()
        elif isinstance(raw_id, int) and not isinstance(raw_id, bool):
            ex_id = str(raw_id)
        else:
            raise UserInputError(f"{where}: {fields.id!r} must be a string or an integer, got {raw_id!r}")
        if ex_id in first_seen:
            raise UserInputError(f"{where}: duplicate id {ex_id!r} (first at {first_seen[ex_id]})")
        first_seen[ex_id] = where
        gold = rec.get(fields.label)
        if isinstance(gold, str) and not gold.strip():
            gold = None
        if gold is not None and not isinstance(gold, str):
            raise UserInputError(f"{where}: {fields.label!r} must be a string, got {gold!r}")
        if gold is not None:
            check_label(gold, f"{where}: {fields.label!r}")
            _check_text(gold, where, fields.label, MAX_LABEL_CHARS)
        if gold is None and need_label:
            raise UserInputError(
                f"{where}: missing {fields.label!r}; every row needs a label when the options come from "
                "the data (write a task .toml with options to use unlabelled rows)"
            )
        if gold is not None and options is not None and gold not in options:
            raise UserInputError(
                f"{where}: {fields.label!r} {gold!r} is not one of the options: {', '.join(map(repr, options))}"
            )
        out.append(TextExample(ex_id, text, gold))
    if not out:
        raise UserInputError(f"{shown}: no examples (the file has no data rows)")
    return tuple(out)


MAX_LABEL_CHARS = 200  # a label is an answer the model writes back: a line, not a text


def _check_text(value: str, where: str, column: str, limit: int = MAX_TEXT_CHARS) -> None:
    """A text or label within its length bound and free of NUL characters (a JSON ``\\u0000``,
    a Parquet cell: a NUL byte in a file is refused when it is read, sce_checks/userfiles.py)."""
    if len(value) > limit:
        raise UserInputError(f"{where}: {column!r} is {len(value):,} characters long (at most {limit:,})")
    if "\x00" in value:
        raise UserInputError(f"{where}: {column!r} holds a NUL character (U+0000) at position {value.index(chr(0))}")


def _read_examples(
    source: str, shown: str, fields: _Fields, options: tuple[str, ...] | None, split: str | None = None,
    config: str | None = None,
) -> tuple[TextExample, ...]:
    """The examples of a ``.csv`` / ``.jsonl`` file or of a table source (sce_checks/tasks/tables.py:
    Parquet, a ``save_to_disk`` folder, ``hf:<name>`` in the local cache)."""
    if is_table_source(source):
        records = table_records(source, shown, fields, split, config)
        return _examples(records, shown, fields, options, need_label=options is None)
    suffix = Path(source).suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise UserInputError(f"{shown}: unsupported data file type {Path(source).suffix!r}; expected {DATA_KINDS}")
    if split is not None or config is not None:
        raise UserInputError(f"{shown}: split and config apply to Hugging Face datasets only (a folder written by "
                             "save_to_disk, or hf:<name>)")
    text = read_user_text(source, shown)  # a BOM (spreadsheet exports) is dropped
    records = _jsonl_records(text, shown, fields) if suffix == ".jsonl" else _csv_records(text, shown, fields)
    return _examples(records, shown, fields, options, need_label=options is None)


def _check_fields(fields: _Fields, where: str) -> None:
    if len(set(fields.accepted)) != len(fields.accepted):
        raise UserInputError(f"{where}text_field/label_field/id_field/ignore_fields: must name different columns")


def load_text_dataset(
    path: str | os.PathLike[str],
    *,
    text_field: str = "text",
    label_field: str = "label",
    id_field: str = "id",
    ignore_fields: tuple[str, ...] = (),
    options: tuple[str, ...] | list[str] | None = None,
    question: str | None = None,
    preamble: str | None = None,
    name: str | None = None,
    directional: Mapping[str, Any] | None = None,
    split: str | None = None,
    config: str | None = None,
) -> TextTask:
    """A text task from a ``.csv`` / ``.jsonl`` / ``.parquet`` file, a ``save_to_disk`` folder or
    ``hf:<name>`` (a dataset in the local Hugging Face cache; ``split`` and ``config`` pick its
    split and configuration), configured in Python (the keywords mirror a text task file). Without ``options`` they are the distinct labels, sorted, and every row
    needs a label; with ``options`` labels must be among them and may be missing. Defaults:
    name = file stem, generic question and preamble (`GENERIC_QUESTION`, `GENERIC_PREAMBLE`).
    ``directional``: option -> sentences for the DIR test, as the ``[directional]`` table of a
    task file."""
    shown = os.fspath(path)
    where = "load_text_dataset: "
    settings = {"text_field": text_field, "label_field": label_field, "id_field": id_field}
    for key, value in (*settings.items(), ("question", question), ("preamble", preamble), ("name", name),
                       ("split", split), ("config", config)):
        if value is not None:
            get_string({key: value}, key, where)
    if isinstance(ignore_fields, str) or not all(isinstance(x, str) for x in ignore_fields):
        raise UserInputError(f"{where}ignore_fields: expected a sequence of column names (strings)")
    fields = _Fields(text=text_field, label=label_field, id=id_field, ignore=tuple(ignore_fields))
    _check_fields(fields, where)
    opts = None if options is None else get_options({"options": list(options)}, where, exactly=None)
    examples = _read_examples(shown, shown, fields, opts, split, config)
    if opts is None:
        opts = tuple(sorted({e.gold for e in examples if e.gold is not None}))
        if len(opts) < 2:
            raise UserInputError(
                f"{shown}: {label_field!r}: found {len(opts)} distinct label(s) {list(opts)!r}; a task needs "
                "at least 2 (the options are taken from the labels; or pass options=...)"
            )
    table = {} if directional is None else check_directional(directional, opts, where)
    return TextTask(name=name or _default_name(shown), question=question or GENERIC_QUESTION,
                    preamble=preamble or GENERIC_PREAMBLE, options=opts, examples=examples, source=shown,
                    directional=table)


def load_text_data(path: str | os.PathLike[str]) -> TextTask:
    """A dataset given directly (``--dataset reviews.csv``, ``reviews.parquet``, a ``save_to_disk``
    folder, ``hf:<name>[:<split>]``): columns ``id`` (optional), ``text``, ``label``; options are
    the distinct labels, sorted."""
    return load_text_dataset(path)


def _default_name(source: str) -> str:
    """A task's name from its data: the file or folder name without extension, the dataset name
    of ``hf:<owner>/<name>:<split>``."""
    if source.startswith(HF_PREFIX):
        return source[len(HF_PREFIX):].partition(":")[0].rsplit("/", 1)[-1]
    return Path(source).stem


def _toml_key(key: str) -> str:
    """``key`` as TOML writes it in a dotted key (quoted unless bare), for error messages."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def check_directional(value: Any, options: tuple[str, ...], where: str) -> dict[str, tuple[str, ...]]:
    """Validate a ``directional`` table (option -> sentences); every error names the key
    (``directional.positive[2]``) after ``where`` (the file). A sentence must push towards one
    option only, so a sentence listed twice is refused."""
    if not isinstance(value, Mapping):
        raise UserInputError(f"{where}directional: expected a table of option = [sentences], got {type(value).__name__}")
    if not value:
        raise UserInputError(f"{where}directional: empty table; list sentences under at least one option")
    out: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for option, sentences in value.items():
        key = f"directional.{_toml_key(str(option))}"
        if option not in options:
            raise UserInputError(f"{where}{key}: {option!r} is not one of the options: {', '.join(map(repr, options))}")
        if isinstance(sentences, str) or not isinstance(sentences, (list, tuple)) or not sentences:
            raise UserInputError(f"{where}{key}: expected a non-empty array of sentences (strings)")
        for i, sentence in enumerate(sentences):
            if not isinstance(sentence, str) or not sentence.strip():
                raise UserInputError(f"{where}{key}[{i}]: expected a non-empty string, got {sentence!r}")
            if sentence in seen:
                raise UserInputError(f"{where}{key}[{i}]: sentence {sentence!r} is listed twice (also under {seen[sentence]})")
            seen[sentence] = key
        out[option] = tuple(sentences)
    return out


def parse_directional_sections(text: str, shown: str, options: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """A bundled directional word file: ``[option]`` section headers, one sentence a line,
    ``#`` comments and blank lines ignored."""
    table: dict[str, list[str]] = {}
    current: str | None = None
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            table.setdefault(current, [])
            continue
        if current is None:
            raise UserInputError(f"{shown}:{line_no}: sentence before the first [option] section")
        table[current].append(line)
    return check_directional(table, options, f"{shown}: ")


def _data_source(data: str, source: str, top: str) -> str:
    """The ``data`` of a task file: ``hf:<name>`` as it is, a path relative to the task file;
    an unknown kind or a missing file is one line naming the key."""
    if data.startswith(HF_PREFIX):
        return data
    path = Path(source).parent / data
    if not is_table_source(os.fspath(path)) and path.suffix.lower() not in DATA_SUFFIXES:
        raise UserInputError(f"{top}data: unsupported data file type {data!r}; expected {DATA_KINDS}")
    if not path.exists():
        raise UserInputError(f"{top}data: file not found: {path} (paths are relative to the task file)")
    return os.fspath(path)


def _field_name(doc: dict[str, Any], key: str, default: str | None, top: str) -> str | None:
    return get_string(doc, key, top) if key in doc else default


def text_task_from_dict(doc: dict[str, Any], source: str) -> TextTask:
    """Build a `TextTask` from a parsed task file at ``source``; ``data`` is relative to it."""
    top = f"{source}: "
    check_keys(doc, TASK_FILE_KEYS, top, TASK_FILE_REQUIRED)
    name = get_string(doc, "name", top)
    question = get_string(doc, "question", top)
    preamble = get_string(doc, "preamble", top)
    options = get_options(doc, top, exactly=None)
    data = get_string(doc, "data", top)
    ignore = doc.get("ignore_fields", [])
    if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
        raise UserInputError(f"{top}ignore_fields: expected an array of column names (strings)")
    fields = _Fields(
        text=_field_name(doc, "text_field", "text", top),
        label=_field_name(doc, "label_field", "label", top),
        id=_field_name(doc, "id_field", "id", top),
        ignore=tuple(ignore),
    )
    _check_fields(fields, top)
    split, config = (_field_name(doc, key, None, top) for key in ("split", "config"))  # type: ignore[arg-type]
    directional = check_directional(doc["directional"], options, top) if "directional" in doc else {}
    data_path = _data_source(data, source, top)
    examples = _read_examples(data_path, data_path, fields, options, split, config)
    return TextTask(name=name, question=question, preamble=preamble, options=options,
                    examples=examples, source=source, directional=directional)


def load_text_task_file(path: str | os.PathLike[str]) -> TextTask:
    """Load a text task file (``.toml`` with a ``data`` key; format: docs/datasets.md)."""
    source = os.fspath(path)
    return text_task_from_dict(read_toml(source), source)


SENTIMENT_RESOURCE = ("data", "sentiment", "movie_reviews_sample.jsonl")
SENTIMENT_DIRECTIONAL_RESOURCE = ("data", "words", "directional_sentiment.txt")


def _resource(parts: tuple[str, ...]) -> Any:
    resource = resources.files("sce_checks")
    for part in parts:  # one part per call: portable to zip imports and Python 3.10
        resource = resource.joinpath(part)
    return resource


@functools.lru_cache(maxsize=1)
def load_sentiment() -> TextTask:
    """The built-in ``sentiment`` task: 400 class-balanced movie-review snippets (Hutto and
    Gilbert 2014, MIT licence; see sce_checks/data/sentiment/README.md), with the hand-written
    directional sentences of data/words/directional_sentiment.txt for the DIR test."""
    shown = "sce_checks/" + "/".join(SENTIMENT_RESOURCE)
    fields = _Fields(ignore=("score",))
    records = _jsonl_records(_resource(SENTIMENT_RESOURCE).read_text(encoding="utf-8"), shown, fields)
    examples = _examples(records, shown, fields, SENTIMENT_OPTIONS, need_label=True)
    directional_text = _resource(SENTIMENT_DIRECTIONAL_RESOURCE).read_text(encoding="utf-8")
    directional = parse_directional_sections(
        directional_text, "sce_checks/" + "/".join(SENTIMENT_DIRECTIONAL_RESOURCE), SENTIMENT_OPTIONS)
    return TextTask(name="sentiment", question=SENTIMENT_QUESTION, preamble=SENTIMENT_PREAMBLE,
                    options=SENTIMENT_OPTIONS, examples=examples, source="builtin", directional=directional)


def sentiment3_label(score: float) -> str:
    """A snippet's three-way label from its mean human rating (`SENTIMENT3_CUTOFF`)."""
    if score <= -SENTIMENT3_CUTOFF:
        return "negative"
    return "positive" if score >= SENTIMENT3_CUTOFF else "neutral"


@functools.lru_cache(maxsize=1)
def load_sentiment3() -> TextTask:
    """The built-in ``sentiment3`` task: the 400 snippets of ``sentiment``, labelled negative,
    neutral or positive by their mean human rating (cut-offs above; sce_checks/data/sentiment/
    README.md). The DIR sentences are sentiment's (they push towards negative or positive)."""
    base = load_sentiment()
    text = _resource(SENTIMENT_RESOURCE).read_text(encoding="utf-8")
    score_of = {str(r["id"]): float(r["score"]) for r in map(json.loads, text.splitlines()) if r}
    examples = tuple(TextExample(e.id, e.text, sentiment3_label(score_of[e.id])) for e in base.examples)
    return TextTask(name="sentiment3", question=SENTIMENT3_QUESTION, preamble=SENTIMENT_PREAMBLE,
                    options=SENTIMENT3_OPTIONS, examples=examples, source="builtin", directional=base.directional)
