"""Text tasks: user CSV/JSONL data, text task files, and the built-in sentiment sample.
Every error message must name the file and the line (or key) so users can fix it by hand."""

from __future__ import annotations

import collections
import importlib.util
import json
import os
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
    load_text_dataset,
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


# --- load_text_dataset (the Python API) ---------------------------------------------------------

def test_load_text_dataset_keywords(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"rid": "a", "body": "fine", "y": "pos", "extra": 1}\n{"rid": "b", "body": "meh"}\n')
    task = load_text_dataset(path, text_field="body", label_field="y", id_field="rid", ignore_fields=("extra",),
                             options=["neg", "pos"], question="Pos or neg?", preamble="A review.", name="mine")
    assert (task.name, task.question, task.preamble, task.options, task.source) == (
        "mine", "Pos or neg?", "A review.", ("neg", "pos"), str(path))
    assert task.examples == (TextExample("a", "fine", "pos"), TextExample("b", "meh", None))


def test_load_text_dataset_defaults_match_direct_file(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\nx,b\ny,a\n")
    assert load_text_dataset(path) == load_text_data(path)
    assert load_text_dataset(path).options == ("a", "b") and load_text_dataset(path).name == "d"


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(options=["neg", "pos"]), "d.csv:3: 'label' 'neutral' is not one of the options: 'neg', 'pos'"),
        (dict(options=["pos"]), "load_text_dataset: options: expected at least 2 options, got 1"),
        (dict(options=["pos", "pos"]), "load_text_dataset: options: duplicate option 'pos'"),
        (dict(text_field="label"), "load_text_dataset: text_field/label_field/id_field/ignore_fields: must name different"),
        (dict(question=""), "load_text_dataset: question: must not be empty"),
        (dict(ignore_fields="date"), "load_text_dataset: ignore_fields: expected a sequence"),
        (dict(label_field="rating"), "d.csv:1: unknown column 'label'; accepted columns: id, text, rating"),
    ],
)
def test_load_text_dataset_errors(tmp_path, kwargs, expected):
    path = write(tmp_path, "d.csv", "text,label\ngood,pos\nso-so,neutral\n")
    with pytest.raises(UserInputError) as info:
        load_text_dataset(path, **kwargs)
    assert expected in str(info.value)


def test_load_text_dataset_unsupported_suffix(tmp_path):
    path = write(tmp_path, "d.tsv", "text\ta\n")
    with pytest.raises(UserInputError, match=r"d\.tsv: unsupported data file type '\.tsv'; expected a \.csv, \.jsonl or \.parquet file"):
        load_text_dataset(path)


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
    assert [f.name for f in dataclasses.fields(TextTask)] == [
        "name", "question", "preamble", "options", "examples", "source", "directional"]


def test_directional_sentences_change_neither_the_fingerprint_nor_hashing():
    """The DIR test's sentences (CheckList, Ribeiro et al. 2020) are a check's probes, not the
    task: baselines compare fingerprints, which must stay as they were before the field existed."""
    examples = (TextExample("1", "x", None),)
    plain = TextTask("t", "q?", "p", ("a", "b"), examples, "test")
    with_dir = TextTask("t", "q?", "p", ("a", "b"), examples, "test", directional={"a": ("Yes.",)})
    assert plain.directional == {} and plain.fingerprint() == with_dir.fingerprint()
    assert set(plain.fingerprint()) == {"name", "question", "options", "n_examples", "examples_sha256"}
    assert hash(plain) == hash(with_dir)


def test_load_text_dataset_takes_directional_sentences(tmp_path):
    path = write(tmp_path, "r.csv", "text,label\ngood,positive\nbad,negative\n")
    task = load_text_dataset(path, directional={"positive": ["I loved it."]})
    assert task.directional == {"positive": ("I loved it.",)}
    with pytest.raises(UserInputError, match=r"load_text_dataset: directional.neutral: 'neutral' is not one of the options"):
        load_text_dataset(path, directional={"neutral": ["Ok."]})


def test_sentiment_directional_sentences_are_bundled_and_documented():
    task = load_sentiment()
    assert {o: len(s) for o, s in task.directional.items()} == {"negative": 10, "positive": 10}
    readme = (REPO / "sce_checks" / "data" / "words" / "README.md").read_text(encoding="utf-8")
    assert "directional_sentiment.txt" in readme


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


@pytest.mark.skipif(not os.environ.get("SCE_VADER_SDIST"), reason="set SCE_VADER_SDIST to vaderSentiment-3.3.2.tar.gz")
def test_shipped_sample_reproduces_from_the_sdist(tmp_path, monkeypatch):
    """The shipped files are exactly what scripts/make_sentiment_sample.py makes (run offline
    on a downloaded sdist: pip download --no-deps --no-binary :all: vaderSentiment==3.3.2)."""
    spec = importlib.util.spec_from_file_location("make_sentiment_sample", REPO / "scripts" / "make_sentiment_sample.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr("sys.argv", ["make", os.environ["SCE_VADER_SDIST"], "--out", str(tmp_path)])
    script.main()
    for name in ("movie_reviews_sample.jsonl", "LICENSE"):
        assert (tmp_path / name).read_bytes() == (SENTIMENT_DIR / name).read_bytes(), name
