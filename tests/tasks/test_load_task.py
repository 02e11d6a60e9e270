"""`load_task` dispatch, seeded sampling and the (id, input) pairs the audit runs on."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from sce_checks.errors import UserInputError
from sce_checks.tasks import BUILTIN_TASKS, load_task, sample_indices, task_examples
from sce_checks.tasks.builtin_grids import BUILTIN_GRIDS, INCOME
from sce_checks.tasks.grid import GridTask
from sce_checks.tasks.text import TextTask

REPO = Path(__file__).resolve().parents[2]
GRID = """\
name = "tiny"
question = "Yes or no?"
preamble = "A record."
options = ["No", "Yes"]
[[features]]
name = "a"
label = "A"
type = "integer"
min = 0
max = 2
"""
TEXT = """\
name = "tt"
question = "Good or bad?"
preamble = "A text."
options = ["bad", "good"]
data = "d.jsonl"
"""


def test_builtins_dispatch():
    assert BUILTIN_TASKS == ("income", "house_prices", "heart_disease", "credit_risk", "sentiment", "sentiment3")
    for name in BUILTIN_GRIDS:
        assert load_task(name) is BUILTIN_GRIDS[name]
    sentiment = load_task("sentiment")
    assert isinstance(sentiment, TextTask) and sentiment.kind == "text" and len(sentiment.examples) == 400


def test_multiclass_builtins():
    """credit_risk: three options over a 12 x 7 x 6 x 4 grid; sentiment3: the sentiment snippets in
    three classes by their mean human rating, cut at -1.5 and +1.5 (sce_checks/tasks/text.py)."""
    credit = load_task("credit_risk")
    assert credit.options == ("Low risk", "Medium risk", "High risk") and credit.size == 12 * 7 * 6 * 4
    three = load_task("sentiment3")
    assert three.options == ("negative", "neutral", "positive") and three.name == "sentiment3"
    gold = [e.gold for e in three.examples]
    assert (gold.count("negative"), gold.count("neutral"), gold.count("positive")) == (134, 122, 144)
    two = {e.id: e for e in load_task("sentiment").examples}
    # the same texts; a snippet keeps its polarity unless it is weak (neutral)
    assert all(e.text == two[e.id].text and e.gold in ("neutral", two[e.id].gold) for e in three.examples)
    assert set(three.directional) == {"negative", "positive"}


def test_file_dispatch_by_extension_and_content(tmp_path):
    (tmp_path / "grid.toml").write_text(GRID)
    (tmp_path / "d.jsonl").write_text('{"text": "nice", "label": "good"}\n{"text": "awful", "label": "bad"}\n')
    (tmp_path / "text.toml").write_text(TEXT)
    (tmp_path / "d.csv").write_text("text,label\nnice,good\nawful,bad\n")
    grid = load_task(str(tmp_path / "grid.toml"))
    assert isinstance(grid, GridTask) and grid.kind == "grid" and grid.size == 3
    text_toml = load_task(tmp_path / "text.toml")  # PathLike accepted too
    assert isinstance(text_toml, TextTask) and text_toml.question == "Good or bad?"
    for name in ("d.jsonl", "d.csv"):
        task = load_task(str(tmp_path / name))
        assert isinstance(task, TextTask) and task.options == ("bad", "good") and task.name == "d"


def test_example_grid_file_via_load_task():
    task = load_task(str(REPO / "audits" / "examples" / "loan.grid.toml"))
    assert task.name == "loan" and task.kind == "grid"


def test_unknown_name_lists_builtins_and_file_types():
    with pytest.raises(UserInputError) as info:
        load_task("incme")
    message = str(info.value)
    assert "'incme'" in message
    for name in BUILTIN_TASKS:
        assert name in message
    assert ".toml" in message and ".csv" in message and ".jsonl" in message


def test_unsupported_existing_file(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("x")
    with pytest.raises(UserInputError, match=r"data\.tsv.*unsupported file type '\.tsv'.*\.jsonl"):
        load_task(str(path))


def test_missing_file_with_known_extension(tmp_path):
    with pytest.raises(UserInputError, match=r"nope\.csv: dataset file not found.*sentiment"):
        load_task(str(tmp_path / "nope.csv"))


def test_toml_that_is_neither_kind(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\n')
    with pytest.raises(UserInputError, match=r"x\.toml: not a task file: expected \[\[features\]\].*'data'"):
        load_task(str(path))
    path.write_text('data = "d.csv"\n' + GRID)
    with pytest.raises(UserInputError, match=r"x\.toml: has both 'features'"):
        load_task(str(path))


def test_sample_indices():
    assert sample_indices(5, None, 0) == [0, 1, 2, 3, 4]
    assert sample_indices(5, 5, 3) == [0, 1, 2, 3, 4]
    assert sample_indices(5, 99, 3) == [0, 1, 2, 3, 4]
    got = sample_indices(1000, 10, 42)
    assert got == sorted(got) and len(set(got)) == 10 and all(0 <= i < 1000 for i in got)
    assert got == sample_indices(1000, 10, 42)  # reproducible
    assert got == sorted(__import__("random").Random(42).sample(range(1000), 10))
    assert got != sample_indices(1000, 10, 43)
    with pytest.raises(UserInputError, match="limit"):
        sample_indices(10, -1, 0)


def test_grid_examples_carry_grid_index_and_point():
    examples = task_examples(INCOME, 5, seed=7)
    indices = sample_indices(INCOME.size, 5, 7)
    assert [i for i, _ in examples] == [f"income-{i:05d}" for i in indices]
    assert [p for _, p in examples] == [INCOME.point_at(i) for i in indices]
    first = task_examples(INCOME, None, 0)[0]
    assert first == ("income-00000", (17, "N/A - no schooling completed"))
    assert len(task_examples(INCOME, None, 0)) == 1920
    assert task_examples(INCOME, 5, seed=7) == examples


def test_text_examples_are_id_and_text():
    task = load_task("sentiment")
    examples = task_examples(task, 3, seed=1)
    indices = sample_indices(400, 3, 1)
    assert examples == [(task.examples[i].id, task.examples[i].text) for i in indices]
    assert len(task_examples(task, None, 0)) == 400


def test_loading_tasks_imports_no_torch():
    code = "import sys, sce_checks.tasks as t; t.load_task('sentiment'); t.load_task('income'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def _sampling_script():
    spec = importlib.util.spec_from_file_location("make_sentiment_sample", REPO / "scripts" / "make_sentiment_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sentiment_sampling_rules_on_synthetic_rows():
    script = _sampling_script()
    rows = [(str(i), (1.0 if i % 2 else -1.0) * (0.2 + (i % 7) * 0.3), f"text {i}") for i in range(1, 2001)]
    rows += [("3000", 2.0, "x" * 301), ("3001", 2.0, "dup"), ("3002", -2.0, "dup")]
    records = script.sample(rows, seed=0)
    assert len(records) == 2 * script.PER_CLASS
    assert sum(r["label"] == "positive" for r in records) == script.PER_CLASS
    assert all(abs(r["score"]) >= 0.5 and len(r["text"]) <= 300 and r["text"] != "dup" for r in records)
    assert all(r["label"] == ("positive" if r["score"] > 0 else "negative") for r in records)
    assert [int(r["id"]) for r in records] == sorted(int(r["id"]) for r in records)
    assert records == script.sample(rows, seed=0) and records != script.sample(rows, seed=1)
