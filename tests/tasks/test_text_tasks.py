"""Text tasks: user CSV/JSONL data, text task files, and the built-in sentiment sample.
Every error message must name the file and the line (or key) so users can fix it by hand."""

from __future__ import annotations

import collections
import json
import textwrap
from pathlib import Path

import pytest

from sce_checks.errors import UserInputError
from sce_checks.tasks.text import (
    GENERIC_QUESTION,
    TextExample,
    TextTask,
    load_sentiment,
    load_text_data,
    load_text_task_file,
)

REPO = Path(__file__).resolve().parents[2]
SENTIMENT_DIR = REPO / "sce_checks" / "data" / "sentiment"

TOML = """\
name = "reviews"
question = "Is this review negative or positive?"
preamble = "You will be shown a product review."
options = ["negative", "positive"]
data = "reviews.csv"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error(loader, path: Path) -> str:
    with pytest.raises(UserInputError) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- plain CSV / JSONL ---------------------------------------------------------------------------

def test_csv_round_trip(tmp_path):
    path = write(tmp_path, "reviews.csv", """\
        id,text,label
        r1,"Great, really great.",positive
        r2,"Dull
        and long.",negative
        ,Fine,positive
        """)
    task = load_text_data(path)
    assert task.kind == "text" and task.name == "reviews" and task.source == str(path)
    assert task.options == ("negative", "positive")  # distinct labels, sorted
    assert task.question == GENERIC_QUESTION
    assert task.examples == (
        TextExample("r1", "Great, really great.", "positive"),
        TextExample("r2", "Dull\nand long.", "negative"),
        TextExample("row-3", "Fine", "positive"),  # no id: row-<n>, n counting data rows
    )


def test_jsonl_round_trip_with_blank_lines_and_int_ids(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"id": 7, "text": "yes", "label": "b"}\n\n{"text": "no", "label": "a"}\n'
                 '{"text": "maybe", "label": "c"}\n')
    task = load_text_data(path)
    assert task.options == ("a", "b", "c")
    assert [(e.id, e.text, e.gold) for e in task.examples] == [("7", "yes", "b"), ("row-2", "no", "a"), ("row-3", "maybe", "c")]


def test_csv_with_bom_and_no_id_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufefftext,label\nhi,x\nho,y\n".encode("utf-8"))
    assert [e.id for e in load_text_data(path).examples] == ["row-1", "row-2"]


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"text": "a", "label": "x"}\n{"text": "b", label: "y"}\n', "d.jsonl:2: invalid JSON"),
        ('{"text": "a", "label": "x"}\n["b", "y"]\n', "d.jsonl:2: expected a JSON object per line, got list"),
        ('{"text": "a", "label": "x"}\n\n{"text": " ", "label": "y"}\n', "d.jsonl:3: missing or empty 'text'"),
        ('{"label": "x"}\n', "d.jsonl:1: missing or empty 'text'"),
        ('{"text": 5, "label": "x"}\n', "d.jsonl:1: 'text' must be a string"),
        ('{"text": "a", "label": "x", "lable": "y"}\n', "d.jsonl:1: unknown field 'lable'; accepted fields: id, text, label"),
        ('{"id": "a", "text": "a", "label": "x"}\n{"id": "a", "text": "b", "label": "y"}\n',
         "d.jsonl:2: duplicate id 'a' (first at "),
        ('{"id": 1.5, "text": "a", "label": "x"}\n', "d.jsonl:1: 'id' must be a string or an integer"),
        ('{"text": "a", "label": "x"}\n{"text": "b"}\n', "d.jsonl:2: missing 'label'"),
        ('{"text": "a", "label": 1}\n', "d.jsonl:1: 'label' must be a string"),
        ('{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n', "d.jsonl: 'label': found 1 distinct label(s)"),
        ("\n\n", "d.jsonl: no examples"),
    ],
)
def test_jsonl_errors(tmp_path, content, expected):
    message = error(load_text_data, write(tmp_path, "d.jsonl", content))
    assert expected in message


@pytest.mark.parametrize(
    "content, expected",
    [
        ("text,label,extra\na,x,1\n", "d.csv:1: unknown column 'extra'; accepted columns: id, text, label"),
        ("id,label\n1,x\n", "d.csv:1: no 'text' column"),
        ("text,text\na,b\n", "d.csv:1: duplicate column 'text'"),
        ("text,label\na,x\n,y\n", "d.csv:3: missing or empty 'text'"),
        ("text,label\na,x\nb,y,z\n", "d.csv:3: expected 2 fields (text, label), got 3"),
        ('text,label\n"multi\nline",x\nb\n', "d.csv:4: expected 2 fields"),  # line where the row starts
        ("id,text,label\n1,a,x\n1,b,y\n", "d.csv:3: duplicate id '1' (first at "),
        ("text,label\na,x\nb,\n", "d.csv:3: missing 'label'"),
        ("", "d.csv: empty CSV file"),
        ("text,label\n", "d.csv: no examples"),
    ],
)
def test_csv_errors(tmp_path, content, expected):
    message = error(load_text_data, write(tmp_path, "d.csv", content))
    assert expected in message


def test_generated_id_colliding_with_given_id_is_a_duplicate(tmp_path):
    path = write(tmp_path, "d.csv", "id,text,label\nrow-2,a,x\n,b,y\n")
    assert "d.csv:3: duplicate id 'row-2'" in error(load_text_data, path)


def test_not_utf8(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\n\xff,x\n")
    assert "d.csv: not UTF-8" in error(load_text_data, path)


# --- text task files ---------------------------------------------------------------------------

def test_task_file_round_trip_with_custom_fields(tmp_path):
    write(tmp_path, "reviews.csv", "review_id,review,rating,date\nA,Love it,positive,2020\nB,Broke,negative,2021\nC,Meh,,2021\n")
    path = write(tmp_path, "reviews.toml", TOML + """\
        text_field = "review"
        label_field = "rating"
        id_field = "review_id"
        ignore_fields = ["date"]
        """)
    task = load_text_task_file(path)
    assert (task.name, task.question, task.preamble) == (
        "reviews", "Is this review negative or positive?", "You will be shown a product review.")
    assert task.options == ("negative", "positive") and task.source == str(path)
    assert task.examples == (TextExample("A", "Love it", "positive"), TextExample("B", "Broke", "negative"),
                             TextExample("C", "Meh", None))  # unlabelled rows are allowed with a task file


def test_task_file_data_is_relative_to_the_toml(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "reviews.csv", "text,label\na,negative\nb,positive\n")
    path = write(tmp_path / "sub", "t.toml", TOML)
    assert len(load_text_task_file(path).examples) == 2


def test_task_file_jsonl_without_labels(tmp_path):
    write(tmp_path, "d.jsonl", '{"text": "a"}\n{"text": "b"}\n')
    path = write(tmp_path, "t.toml", TOML.replace("reviews.csv", "d.jsonl"))
    assert [e.gold for e in load_text_task_file(path).examples] == [None, None]


@pytest.mark.parametrize(
    "toml_edit, csv, expected",
    [
        (lambda t: t, "text,label\na,neutral\n", "reviews.csv:2: 'label' 'neutral' is not one of the options: 'negative', 'positive'"),
        (lambda t: t + 'lable_field = "x"\n', "text,label\na,positive\n", "t.toml: lable_field: unknown key"),
        (lambda t: t.replace('data = "reviews.csv"\n', ""), "text\na\n", "t.toml: data: missing required key"),
        (lambda t: t.replace("reviews.csv", "missing.csv"), "text\na\n", "t.toml: data: file not found"),
        (lambda t: t.replace("reviews.csv", "reviews.tsv"), "text\na\n", "t.toml: data: unsupported data file type"),
        (lambda t: t.replace('["negative", "positive"]', '["only"]'), "text\na\n", "t.toml: options: expected at least 2 options"),
        (lambda t: t + "ignore_fields = \"date\"\n", "text\na\n", "t.toml: ignore_fields: expected an array"),
        (lambda t: t + 'text_field = "label"\n', "text\na\n", "must name different columns"),
        (lambda t: t, "text,label,date\na,positive,1\n", "reviews.csv:1: unknown column 'date'"),
    ],
)
def test_task_file_errors(tmp_path, toml_edit, csv, expected):
    write(tmp_path, "reviews.csv", csv)
    path = write(tmp_path, "t.toml", toml_edit(TOML))
    assert expected in error(load_text_task_file, path)


def test_fingerprint_changes_with_texts_not_with_object_identity():
    def task(texts):
        return TextTask("t", "q?", "p", ("a", "b"), tuple(TextExample(str(i), x, None) for i, x in enumerate(texts)), "test")

    assert task(["x", "y"]).fingerprint() == task(["x", "y"]).fingerprint()
    assert task(["x", "y"]).fingerprint()["examples_sha256"] != task(["x", "z"]).fingerprint()["examples_sha256"]
    # ids and texts are hashed unambiguously: ("x", "y") != ("xy", "")-style concatenation clashes
    a = TextTask("t", "q?", "p", ("a", "b"), (TextExample("1", "2", None),), "test")
    b = TextTask("t", "q?", "p", ("a", "b"), (TextExample("12", "", None),), "test")
    assert a.fingerprint() != b.fingerprint()
    assert set(a.fingerprint()) >= {"name", "question", "options"}


def test_kind_is_a_class_attribute_not_a_field():
    import dataclasses

    assert TextTask.kind == "text"
    assert [f.name for f in dataclasses.fields(TextTask)] == ["name", "question", "preamble", "options", "examples", "source"]


# --- built-in sentiment sample ----------------------------------------------------------------

def test_sentiment_sample_is_400_balanced_and_clean():
    task = load_sentiment()
    assert task.name == "sentiment" and task.options == ("negative", "positive")
    assert len(task.examples) == 400
    assert collections.Counter(e.gold for e in task.examples) == {"negative": 200, "positive": 200}
    assert len({e.id for e in task.examples}) == 400 and len({e.text for e in task.examples}) == 400
    assert all(0 < len(e.text) <= 300 for e in task.examples)


def test_sentiment_file_labels_follow_scores():
    rows = [json.loads(line) for line in (SENTIMENT_DIR / "movie_reviews_sample.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 400
    for row in rows:
        assert set(row) == {"id", "text", "label", "score"}
        assert abs(row["score"]) >= 0.5  # near-neutral snippets excluded
        assert row["label"] == ("positive" if row["score"] > 0 else "negative")
    assert [int(r["id"]) for r in rows] == sorted(int(r["id"]) for r in rows)


def test_sentiment_licence_and_readme_present():
    licence = (SENTIMENT_DIR / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in licence and "C.J. Hutto" in licence and "WITHOUT WARRANTY" in licence
    readme = (SENTIMENT_DIR / "README.md").read_text(encoding="utf-8")
    assert "Hutto, C.J. & Gilbert, E.E. (2014)" in readme and "ICWSM-14" in readme
