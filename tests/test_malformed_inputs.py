"""Malformed input, case by case (issue 13): every case exits 2 with one line naming the file and
the key or line, shows no traceback, and makes no model call, through ``sce-audit`` (in-process
`cli.main`, a few in a subprocess), pytest options, markers and audit files.

Every case's model is ``python:rec_models:Recorder``, which appends to a log file when it is
loaded and each time it is asked anything: the log must stay absent. The control cases show that
good input does write it, so that check can fail.

``SCE_MALFORMED_TALLY=<file>`` appends one JSON line per case (its outcome before the assertions)
for the counts in docs/reliability.md; the suite itself needs no such file.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sce_checks.cli import main
from tests.helpers.projects import MODELS, REPO, TOY_TOML

RECORDER = textwrap.dedent(
    """
    import os


    def _log(what):
        with open(os.environ["SCE_TEST_MODEL_LOG"], "a", encoding="utf-8") as f:
            f.write(what + "\\n")


    class Recorder:
        def __init__(self):
            _log("load")

        def chat(self, conversations, decoding):
            _log("chat")
            return ['{"answer": "No"}'] * len(conversations)
    """
)
MODEL = "python:rec_models:Recorder"
BASE = ["--model", MODEL, "--limit", "3", "--prediction", "generate", "-q"]
LOG = "model.log"


def tally(case: str, code: int, text: str, lines: list[str], called: bool) -> None:
    """One outcome for the counts in docs/reliability.md (only with SCE_MALFORMED_TALLY set)."""
    target = os.environ.get("SCE_MALFORMED_TALLY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps({"case": case, "code": code, "traceback": "Traceback" in text, "lines": len(lines),
                                "model_called": called}) + "\n")


def case_id(request: pytest.FixtureRequest) -> str:
    return request.node.nodeid.split("::", 1)[1]


@pytest.fixture
def bench(workdir, monkeypatch):
    """The toy project (tests/conftest.py) plus the recording model and its log path."""
    (workdir / "rec_models.py").write_text(RECORDER)
    monkeypatch.setenv("SCE_TEST_MODEL_LOG", str(workdir / LOG))
    (workdir / "adir").mkdir()
    return workdir


def write(where: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def cli(capsys, args: list[str]) -> tuple[int, str, str]:
    argv = [*BASE, *args] + ([] if "--dataset" in args else ["--dataset", "toy.toml"])
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(request, where: Path, code: int, out: str, err: str, names: list[str]) -> None:
    """Exit 2, one line on stderr naming every one of ``names``, no traceback, no model call."""
    lines = err.strip().splitlines()
    called = (where / LOG).exists()
    tally(case_id(request), code, out + err, lines, called)
    assert code == 2, (code, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert not called, (where / LOG).read_text()


# -- controls: the recorder writes when the input is good --------------------------------------------


def test_control_good_input_calls_the_model(bench, capsys):
    code, out, err = cli(capsys, [])
    assert code == 0, out + err
    assert (bench / LOG).read_text().splitlines()[0] == "load" and "chat" in (bench / LOG).read_text()


def test_control_files_with_a_byte_order_mark_are_read(bench, capsys):
    """TOML files (a grid task here) take a BOM like CSV and JSONL files do."""
    (bench / "bom.toml").write_bytes(b"\xef\xbb\xbf" + TOY_TOML.encode())
    code, out, err = cli(capsys, ["--dataset", "bom.toml", "--limit", "1"])
    assert code == 0, out + err


# -- command-line flags ------------------------------------------------------------------------------

FLAGS = [
    (["--limit", "-1"], ["--limit"]),
    (["--limit", "abc"], ["--limit"]),
    (["--limit", "1.5"], ["--limit"]),
    (["--limit", "9" * 30], ["--limit", "at most"]),
    (["--limit", "9" * 5000], ["--limit", "characters"]),
    (["--seed", "x"], ["--seed"]),
    (["--seed", "1e3"], ["--seed"]),
    (["--seed", "-" + "9" * 25], ["--seed"]),
    (["--perturbations", "0"], ["--perturbations"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--concurrency", "-2"], ["--concurrency"]),
    (["--max-retries", "-1"], ["--max-retries"]),
    (["--text-search-budget", "-3"], ["--text-search-budget"]),
    (["--timeout", "-1"], ["--timeout"]),
    (["--timeout", "nan"], ["--timeout"]),
    (["--timeout", "inf"], ["--timeout"]),
    (["--timeout", "-inf"], ["--timeout"]),
    (["--timeout", "0"], ["--timeout"]),
    (["--timeout", "1e300"], ["--timeout", "at most"]),
    (["--timeout", "ten"], ["--timeout"]),
    (["--prediction", "bogus"], ["--prediction"]),
    (["--elicitation", "json"], ["--elicitation"]),
    (["--parsing", "loose"], ["--parsing"]),
    (["--variant", "sideways"], ["--variant", "sideways"]),
    (["--check", "nope"], ["--check", "nope"]),
    (["--check", " "], ["--check", "empty"]),
    (["--attribution", "lime"], ["--attribution"]),
    (["--dtype", "float8"], ["--dtype"]),
    (["--model", "nope:thing"], ["nope:thing"]),
    (["--model", "python:"], ["python:"]),
    (["--model", "python:rec_models"], ["python:rec_models"]),
    (["--model", "openai:gpt"], ["openai:gpt"]),
    (["--model", "openai:gpt@ftp://host"], ["openai:gpt@ftp://host"]),
    (["--model", " "], ["--model", "empty"]),
    (["--tolerance", "-1"], ["--tolerance"]),
    (["--tolerance", "nan"], ["--tolerance"]),
    (["--tolerance", "inf"], ["--tolerance"]),
    (["--tolerance", "validty=0.1"], ["--tolerance", "validty"]),
    (["--tolerance", "validity=abc"], ["--tolerance", "validity"]),
    (["--dataset", "no_such_dataset"], ["no_such_dataset"]),
    (["--dataset", "missing.csv"], ["missing.csv"]),
    (["--dataset", "notes.txt"], ["notes.txt", "unsupported file type"]),
    (["--dataset", "adir/x.toml"], ["adir/x.toml"]),
    (["--json", ""], ["--json", "empty"]),
]


@pytest.mark.parametrize("args, names", FLAGS, ids=[" ".join(a)[:40] for a, _ in FLAGS])
def test_flag_refused(bench, capsys, request, args, names):
    (bench / "notes.txt").write_text("hello")
    code, out, err = cli(capsys, args)
    assert_refused(request, bench, code, out, err, names)


def test_a_model_module_that_is_missing_is_an_unusable_backend(bench, capsys, request):
    """Found when pytest loads it, still before any call: one line, exit 2."""
    code, out, err = cli(capsys, ["--model", "python:no_such_module_xyz:f"])
    assert_refused(request, bench, code, out, err, ["no_such_module_xyz"])


# -- thresholds: form, the results they apply to, metric names ----------------------------------------

THRESHOLDS = [
    (["--threshold", "vality>=0.5"], ["--threshold", "'vality'", "did you mean 'validity'", "known: validity"]),
    (["--threshold", "validity>>1"], ["--threshold", "validity>>1"]),
    (["--threshold", "validity>="], ["--threshold", "validity>="]),
    (["--threshold", ">=0.5"], ["--threshold", ">=0.5"]),
    (["--threshold", "validity=0.5"], ["--threshold", "validity=0.5"]),
    (["--threshold", "validity>=abc"], ["--threshold", "validity>=abc"]),
    (["--threshold", "validity>=1e999"], ["--threshold", "out of range"]),
    (["--threshold", "validity>=0.5;rm"], ["--threshold"]),
    (["--threshold", "phi_cct:phi>=0.2"], ["--threshold", "'phi_cct'"]),
    (["--threshold", "nope:validity>=0.5"], ["--threshold", "'nope'"]),
    (["--threshold", "inv:failure_rate<=0.1"], ["--threshold", "'inv'"]),
    (["--threshold", "validity_lowr>=0.5"], ["--threshold", "'validity_lowr'"]),
    (["--threshold", "n_generated_lower>=1"], ["--threshold", "'n_generated_lower'"]),
    (["--threshold", "mean_rcf_a_upper<=0.1"], ["--threshold", "'mean_rcf_a_upper'"]),
    (["--check", "sce", "--check", "phi_cct", "--threshold", "phi>=0.1"], ["--threshold", "'phi'", "for sce", "prefix"]),
    (["--check", "sce", "--check", "phi_cct", "--threshold", "sce:phi>=0.1"], ["--threshold", "'phi'", "for sce"]),
    (["--check", "inv", "--dataset", "sentiment", "--threshold", "validity>=0.5"], ["--threshold", "'validity'", "for inv"]),
    (["--threshold", "minimal:failure_rate<=0.5"], ["--threshold", "'failure_rate'", "for sce"]),
    (["--dataset", "sentiment", "--threshold", "mean_rcf_a<=0.1"], ["--threshold", "'mean_rcf_a'", "text tasks", "'sentiment'"]),
    (["--threshold", "accuracy>=0.5"], ["--threshold", "'accuracy'", "grid tasks", "'toy'"]),
    (["--dataset", "toy.toml", "--dataset", "sentiment", "--threshold", "tm_a<=0.1"], ["--threshold", "'tm_a'", "text tasks"]),
]


@pytest.mark.parametrize("args, names", THRESHOLDS, ids=[" ".join(a)[-40:] for a, _ in THRESHOLDS])
def test_threshold_refused(bench, capsys, request, args, names):
    code, out, err = cli(capsys, args)
    assert_refused(request, bench, code, out, err, names)


# -- report paths: checked at the start, not after the model run ---------------------------------------

PATHS = [
    (["--json", "adir"], ["--json", "adir", "is a directory"]),
    (["--json", "toy.toml/r.json"], ["--json", "toy.toml is a file"]),
    (["--html", "adir"], ["--html", "is a directory"]),
    (["--markdown", "toy.toml/deeper/r.md"], ["--markdown", "toy.toml is a file"]),
    (["--save-baseline", "adir"], ["--save-baseline", "is a directory"]),
    (["--json", "r.out", "--html", "r.out"], ["--html", "the same file as --json"]),
    (["--markdown", "adir/../r.md", "--json", "r.md"], ["--markdown", "the same file as --json"]),
    (["--baseline", "base.json", "--save-baseline", "base.json"], ["--save-baseline", "the same file as --baseline"]),
]


@pytest.mark.parametrize("args, names", PATHS, ids=[" ".join(a) for a, _ in PATHS])
def test_report_path_refused(bench, capsys, request, good_baseline, args, names):
    (bench / "base.json").write_text(json.dumps(good_baseline))
    code, out, err = cli(capsys, args)
    assert_refused(request, bench, code, out, err, names)
    assert not list(bench.glob(".*.tmp-*")) and not list((bench / "adir").iterdir())


def test_github_step_summary_that_is_a_directory_refused(bench, capsys, request, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(bench / "adir"))
    code, out, err = cli(capsys, [])
    assert_refused(request, bench, code, out, err, ["$GITHUB_STEP_SUMMARY", "adir", "is a directory"])


CACHE_PATHS = [  # (name, what to make at the cache path, where, names in the line)
    ("fifo-file", "fifo", "cdir/responses.sqlite", ["responses.sqlite", "is a FIFO", "--no-cache"]),
    ("fifo-wal", "fifo", "cdir/responses.sqlite-wal", ["responses.sqlite-wal", "is a FIFO"]),
    ("fifo-dir", "fifo", "cdir", ["cdir", "is a FIFO, not a directory"]),
    ("socket-file", "socket", "cdir/responses.sqlite", ["responses.sqlite", "is a socket"]),
    ("device-dir", "device", "cdir", ["cdir", "is a device, not a directory"]),
]


@pytest.mark.parametrize("kind, at, names", [c[1:] for c in CACHE_PATHS], ids=[c[0] for c in CACHE_PATHS])
def test_cache_path_that_is_no_file_refused(bench, capsys, request, kind, at, names):
    """A FIFO at the cache path once hung the run with no output (opening it blocks): refused in
    one line before anything is opened, in preflight."""
    target = bench / at
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
        request.addfinalizer(server.close)
    else:  # a character device, reached through a link
        target.symlink_to("/dev/null")
    code, out, err = cli(capsys, ["--cache-dir", str(bench / "cdir")])
    assert_refused(request, bench, code, out, err, names)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_report_in_a_read_only_directory_refused(bench, capsys, request):
    locked = bench / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, out, err = cli(capsys, ["--json", "locked/r.json"])
    finally:
        locked.chmod(0o755)
    assert_refused(request, bench, code, out, err, ["--json", "cannot write"])


# -- baselines: read whole, figures numeric and finite, same task and sample ----------------------------


@pytest.fixture(scope="module")
def good_baseline(tmp_path_factory) -> dict:
    """A baseline saved by a real run of the toy model (limit 3, seed 0), for the cases to break."""
    where = tmp_path_factory.mktemp("good-baseline")
    write(where, {"toy.toml": TOY_TOML, "toy_models.py": MODELS})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(where)
        mp.setenv("SCE_CHECKS_CACHE_DIR", str(where / "cache"))
        code = main(["--model", "python:toy_models:boundary", "--dataset", "toy.toml", "--limit", "3", "--prediction",
                     "generate", "-q", "--save-baseline", "base.json"])
    assert code == 0
    data = json.loads((where / "base.json").read_text())
    assert set(data["entries"]) == {"sce/toy/unconstrained", "sce/toy/minimal"}
    return data


def _figure(value):
    """A baseline with the unconstrained validity replaced by ``value`` (raw JSON text)."""
    def make(good: dict) -> str:
        data = copy.deepcopy(good)
        data["entries"]["sce/toy/unconstrained"]["figures"]["validity"] = "@@FIGURE@@"
        return json.dumps(data).replace('"@@FIGURE@@"', value)
    return make


def _edit(change):
    def make(good: dict) -> str:
        data = copy.deepcopy(good)
        change(data)
        return json.dumps(data)
    return make


def _entry(data: dict) -> dict:
    return data["entries"]["sce/toy/unconstrained"]


FIGURE = "base.json: entries.sce/toy/unconstrained.figures.validity"
BASELINES = [
    ("missing", None, [], ["base.json", "no such file"]),
    ("directory", "dir", [], ["base.json", "is a directory"]),
    ("not utf-8", b"\xff\xfe{\x00", [], ["base.json", "not UTF-8"]),
    ("not json", "{", [], ["base.json", "invalid JSON"]),
    ("empty", "", [], ["base.json", "invalid JSON"]),
    ("a list", "[]", [], ["base.json", "not an sce-checks baseline"]),
    ("other schema", _edit(lambda d: d.update(schema="x/v1")), [], ["base.json", "not an sce-checks baseline"]),
    ("metrics version", _edit(lambda d: d.update(metrics_version=0)), [], ["base.json", "metric definitions changed"]),
    ("entries a list", _edit(lambda d: d.update(entries=[])), [], ["base.json: entries"]),
    ("entry a number", _edit(lambda d: d["entries"].update({"sce/toy/minimal": 3})), [], ["entries.sce/toy/minimal"]),
    ("figures missing", _edit(lambda d: _entry(d).pop("figures")), [], ["entries.sce/toy/unconstrained"]),
    ("sample missing", _edit(lambda d: _entry(d).pop("sample")), [], ["entries.sce/toy/unconstrained.sample"]),
    ("task a number", _edit(lambda d: _entry(d).update(task=7)), [], ["entries.sce/toy/unconstrained.task"]),
    ("figure a string", _figure('"0.5"'), [], [FIGURE, "'0.5'"]),
    ("figure NaN", _figure("NaN"), [], [FIGURE, "nan"]),
    ("figure Infinity", _figure("Infinity"), [], [FIGURE, "inf"]),
    ("figure -Infinity", _figure("-Infinity"), [], [FIGURE]),
    ("figure true", _figure("true"), [], [FIGURE, "True"]),
    ("figure a list", _figure("[1]"), [], [FIGURE]),
    ("figure 5000 digits", _figure("9" * 5000), [], ["base.json", "5,000 digits"]),
    ("figure 1e400", _figure("1e400"), [], ["base.json", "out of range"]),
    ("nested 100000 deep", _figure("[" * 100_000 + "]" * 100_000), [], ["base.json", "nested too deeply"]),
    ("other sample", "good", ["--seed", "4"], ["base.json", "sce/toy/", "different sample"]),
    ("other limit", "good", ["--limit", "5"], ["base.json", "different sample"]),
    ("other task", "good", ["--dataset", "toy2.toml"], ["base.json", "different task definition"]),
]


@pytest.mark.parametrize("content, args, names", [b[1:] for b in BASELINES], ids=[b[0] for b in BASELINES])
def test_baseline_refused(bench, capsys, request, good_baseline, content, args, names):
    write(bench, {"toy2.toml": TOY_TOML.replace("Is this record a yes?", "Is this record a no?")})
    path = bench / "base.json"
    if content == "dir":
        path.mkdir()
    elif content == "good":
        path.write_text(json.dumps(good_baseline))
    elif callable(content):
        path.write_text(content(good_baseline))
    elif content is not None:
        write(bench, {"base.json": content})
    code, out, err = cli(capsys, ["--baseline", "base.json", *args])
    assert_refused(request, bench, code, out, err, names)


# -- grid task files ---------------------------------------------------------------------------------


def _grid(old: str, new: str) -> str:
    assert old in TOY_TOML, old
    return TOY_TOML.replace(old, new, 1)


GRIDS = [
    ("max above 2^64", _grid("max = 10", f"max = {2**64}"), ["g.toml: features[0].max", "out of range"]),
    ("min below -2^70", _grid("min = 0", f"min = {-2**70}"), ["g.toml: features[0].min"]),
    ("step 2^64", _grid("max = 10", f"max = 10\nstep = {2**64}"), ["g.toml: features[0].step"]),
    ("10^15 values", _grid("max = 10", "max = 1000000000000000"), ["g.toml: features[0]", "values"]),
    ("8 million points", TOY_TOML + "\n".join(
        f'[[features]]\nname = "f{i}"\nlabel = "F{i}"\ntype = "integer"\nmin = 0\nmax = 199\n' for i in range(3)),
     ["g.toml: features", "points"]),
    ("5000-digit integer", _grid("max = 10", "max = 1" + "0" * 5000), ["g.toml", "invalid TOML"]),
    ("nested 100000 deep", TOY_TOML + "\nextra = " + "[" * 100_000 + "]" * 100_000, ["g.toml", "invalid TOML"]),
    ("option with spaces", _grid('options = ["No", "Yes"]', 'options = [" No", "Yes"]'), ["g.toml: options[0]", "whitespace"]),
    ("value with spaces", _grid('values = ["a", "b",', 'values = ["a", "b ",'), ["g.toml: features[1].values[1]", "whitespace"]),
    ("not utf-8", TOY_TOML.encode().replace(b"toy", b"t\xffy", 1), ["g.toml", "not UTF-8"]),
    ("unclosed array", _grid('options = ["No", "Yes"]', 'options = ["No", "Yes"'), ["g.toml", "invalid TOML", "line"]),
    ("unknown key", _grid('label = "X value"', 'lable = "X value"'), ["g.toml: features[0].lable"]),
    ("eleven options", _grid('options = ["No", "Yes"]', f"options = {[f'O{i}' for i in range(11)]}"),
     ["g.toml: options", "2 to 10"]),
    ("unknown type", _grid('type = "integer"', 'type = "float"'), ["g.toml: features[0].type"]),
    ("duplicate feature", _grid('name = "level"', 'name = "x"'), ["g.toml: features[1].name", "duplicate"]),
    ("bad feature name", _grid('name = "x"', 'name = "x-y"'), ["g.toml: features[0].name"]),
    ("min above max", _grid("min = 0", "min = 20"), ["g.toml: features[0].max", "empty range"]),
    ("float bound", _grid("min = 0", "min = 1.5"), ["g.toml: features[0].min"]),
    ("nan bound", _grid("max = 10", "max = nan"), ["g.toml: features[0].max"]),
    ("increases unknown", _grid("max = 10", 'max = 10\nincreases = "Maybe"'), ["g.toml: features[0].increases"]),
    ("no features", TOY_TOML.split("[[features]]")[0] + "features = []\n", ["g.toml: features"]),
    ("empty file", "", ["g.toml", "not a task file"]),
    # issue 26 item 10: a runaway label is refused where the file is read, not sent to the model
    ("label of 10,001 characters", _grid('label = "X value"', 'label = "' + "x" * 10_001 + '"'),
     ["g.toml: features[0].label", "10,001 characters"]),
    ("NUL byte", _grid('label = "X value"', 'label = "X\x00 value"'), ["g.toml:", "NUL byte"]),
]


@pytest.mark.parametrize("text, names", [g[1:] for g in GRIDS], ids=[g[0] for g in GRIDS])
def test_grid_file_refused(bench, capsys, request, text, names):
    write(bench, {"g.toml": text})
    code, out, err = cli(capsys, ["--dataset", "g.toml"])
    assert_refused(request, bench, code, out, err, names)


# -- text datasets: JSONL and CSV rows, text task files -------------------------------------------------

ROW1 = '{"id": "a", "text": "a good film", "label": "positive"}'
JSONL_ROWS = [
    ("id of 5000 digits", '{"id": ' + "9" * 5000 + ', "text": "bad", "label": "negative"}', ["d.jsonl:2", "5,000 digits"]),
    ("label of 5000 digits", '{"text": "bad", "label": ' + "1" * 5000 + "}", ["d.jsonl:2", "5,000 digits"]),
    ("text nested 100000 deep", '{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "label": "negative"}',
     ["d.jsonl:2", "nested too deeply"]),
    ("object nested 5000 deep", '{"text": "bad", "label": "negative", "id": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
     ["d.jsonl:2", "nested too deeply"]),
    ("label 1e400", '{"text": "bad", "label": 1e400}', ["d.jsonl:2", "out of range"]),
    ("label NaN", '{"text": "bad", "label": NaN}', ["d.jsonl:2", "'label'"]),
    ("row a list", "[1, 2]", ["d.jsonl:2", "expected a JSON object"]),
    ("truncated row", '{"text": "bad", "label": "neg', ["d.jsonl:2", "invalid JSON"]),
    ("label with spaces", '{"text": "bad", "label": " negative"}', ["d.jsonl:2", "'label'", "whitespace"]),
    ("no text", '{"label": "negative"}', ["d.jsonl:2", "'text'"]),
    ("empty text", '{"text": "  ", "label": "negative"}', ["d.jsonl:2", "'text'"]),
    ("text a number", '{"text": 5, "label": "negative"}', ["d.jsonl:2", "'text'"]),
    ("duplicate id", '{"id": "a", "text": "bad", "label": "negative"}', ["d.jsonl:2", "duplicate id"]),
    ("id a float", '{"id": 1.5, "text": "bad", "label": "negative"}', ["d.jsonl:2", "'id'"]),
    ("id true", '{"id": true, "text": "bad", "label": "negative"}', ["d.jsonl:2", "'id'"]),
    ("unknown field", '{"text": "bad", "label": "negative", "score": 1}', ["d.jsonl:2", "unknown field 'score'"]),
    ("one label only", '{"text": "another good one", "label": "positive"}', ["d.jsonl", "1 distinct label"]),
    # issue 26 item 10: a runaway text or label, a NUL character, refused with the line
    ("text of 20,001 characters", '{"text": "' + "x" * 20_001 + '", "label": "negative"}',
     ["d.jsonl:2", "'text' is 20,001 characters long"]),
    ("label of 201 characters", '{"text": "bad", "label": "' + "n" * 201 + '"}', ["d.jsonl:2", "'label' is 201 characters"]),
    ("text with an escaped NUL", '{"text": "ba\\u0000d", "label": "negative"}', ["d.jsonl:2", "NUL character"]),
    ("raw NUL byte", '{"text": "ba\x00d", "label": "negative"}', ["d.jsonl:2", "NUL byte"]),
]


@pytest.mark.parametrize("row2, names", [r[1:] for r in JSONL_ROWS], ids=[r[0] for r in JSONL_ROWS])
def test_jsonl_row_refused(bench, capsys, request, row2, names):
    write(bench, {"d.jsonl": f"{ROW1}\n{row2}\n"})
    code, out, err = cli(capsys, ["--dataset", "d.jsonl"])
    assert_refused(request, bench, code, out, err, names)


def test_jsonl_not_utf8_refused(bench, capsys, request):
    write(bench, {"d.jsonl": (ROW1 + "\n").encode() + b'{"text": "\xff", "label": "negative"}\n'})
    code, out, err = cli(capsys, ["--dataset", "d.jsonl"])
    assert_refused(request, bench, code, out, err, ["d.jsonl", "not UTF-8"])


CSV_HEAD = "id,text,label\na,a good film,positive\n"
CSV_ROWS = [
    ("label with spaces", "b,bad,negative \n", ["d.csv:3", "'label'", "whitespace"]),
    ("too many fields", "b,bad,negative,extra\n", ["d.csv:3", "expected 3 fields"]),
    ("field past the CSV limit", "b,\"" + "x" * 200_000 + "\",negative\n", ["d.csv", "invalid CSV"]),
    ("duplicate id", "a,bad,negative\n", ["d.csv:3", "duplicate id"]),
    ("no label", "b,bad,\n", ["d.csv:3", "'label'"]),
    ("NUL byte", "b,ba\x00d,negative\n", ["d.csv:3", "NUL byte (column 5)"]),
    ("text of 20,001 characters", "b," + "x" * 20_001 + ",negative\n", ["d.csv:3", "20,001 characters"]),
]


@pytest.mark.parametrize("row, names", [r[1:] for r in CSV_ROWS], ids=[r[0] for r in CSV_ROWS])
def test_csv_row_refused(bench, capsys, request, row, names):
    write(bench, {"d.csv": CSV_HEAD + row})
    code, out, err = cli(capsys, ["--dataset", "d.csv"])
    assert_refused(request, bench, code, out, err, names)


TEXT_TASK = textwrap.dedent(
    """
    name = "reviews"
    question = "Is this review positive?"
    preamble = "A short review."
    options = ["negative", "positive"]
    data = "rows.jsonl"
    """
)
TEXT_TASKS = [
    ("option with spaces", TEXT_TASK.replace('"negative", "positive"', '"negative ", "positive"'), {},
     ["t.toml: options[0]", "whitespace"]),
    ("data missing", TEXT_TASK.replace("rows.jsonl", "absent.jsonl"), {}, ["t.toml: data", "absent.jsonl"]),
    ("data with a huge id", TEXT_TASK, {"rows.jsonl": '{"id": ' + "7" * 4400 + ', "text": "ok"}\n'},
     ["rows.jsonl:1", "4,400 digits"]),
    ("label not an option", TEXT_TASK, {"rows.jsonl": '{"text": "ok", "label": "neutral"}\n'},
     ["rows.jsonl:1", "'neutral' is not one of the options"]),
    ("directional empty sentence", TEXT_TASK + '[directional]\npositive = [""]\n', {},
     ["t.toml: directional.positive[0]"]),
    ("question of 10,001 characters", TEXT_TASK.replace("Is this review positive?", "x" * 10_001), {},
     ["t.toml: question", "10,001 characters"]),
    ("parquet data that is not parquet", TEXT_TASK.replace("rows.jsonl", "rows.parquet"), {"rows.parquet": "id,text\n"},
     ["rows.parquet", "not a readable Parquet file"]),
]


@pytest.mark.parametrize("text, files, names", [t[1:] for t in TEXT_TASKS], ids=[t[0] for t in TEXT_TASKS])
def test_text_task_file_refused(bench, capsys, request, text, files, names):
    write(bench, {"t.toml": text, "rows.jsonl": '{"text": "fine", "label": "positive"}\n', **files})
    code, out, err = cli(capsys, ["--dataset", "t.toml"])
    assert_refused(request, bench, code, out, err, names)


# -- audit files and pytest options (the plugin) ----------------------------------------------------------


@pytest.fixture
def plugin_bench(project, monkeypatch):
    (project.path / "rec_models.py").write_text(RECORDER)
    monkeypatch.setenv("SCE_TEST_MODEL_LOG", str(project.path / LOG))
    (project.path / "adir").mkdir()
    return project


def assert_plugin_refused(request, project, result, names: list[str]) -> None:
    """Exit 2; the message is one line (pytest may show it twice: its banner and stderr) naming
    every one of ``names``; no traceback; no model call."""
    out, err = result.stdout.str(), result.stderr.str()
    lines = [line for line in (out + "\n" + err).splitlines() if "sce-checks: " in line]
    called = (project.path / LOG).exists()
    tally(case_id(request), int(result.ret), out + err, lines, called)
    assert result.ret == 2, (out + err)[-3000:]
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert 1 <= len(lines) <= 2, lines
    for name in names:
        assert all(name in line for line in lines), (name, lines)
    assert not called


AUDIT = 'model = "python:rec_models:Recorder"\ndatasets = ["toy.toml"]\nlimit = 3\nprediction = "generate"\n'
BIG_GRID = _grid("max = 10", f"max = {2**64}")
AUDITS = [
    ("unknown key", AUDIT + "limt = 3\n", {}, ["bad.sce.toml", "limt: unknown key"]),
    ("model missing", AUDIT.replace('model = "python:rec_models:Recorder"\n', ""), {}, ["bad.sce.toml", "model"]),
    ("model not a spec", AUDIT.replace("python:rec_models:Recorder", "nope:thing"), {}, ["bad.sce.toml: model", "nope:thing"]),
    ("datasets missing", AUDIT.replace('datasets = ["toy.toml"]\n', ""), {}, ["bad.sce.toml", "datasets"]),
    ("dataset not found", AUDIT.replace("toy.toml", "absent.toml"), {}, ["bad.sce.toml: datasets[0]", "absent.toml"]),
    ("dataset with a 2^64 bound", AUDIT.replace("toy.toml", "big.toml"), {"big.toml": BIG_GRID},
     ["bad.sce.toml: datasets[0]", "big.toml: features[0].max"]),
    ("dataset with a huge JSONL id", AUDIT.replace("toy.toml", "rows.jsonl"),
     {"rows.jsonl": ROW1 + '\n{"id": ' + "9" * 5000 + ', "text": "x", "label": "negative"}\n'},
     ["bad.sce.toml: datasets[0]", "rows.jsonl:2"]),
    ("baseline missing", AUDIT + 'baseline = "absent.json"\n', {}, ["bad.sce.toml: baseline", "no such file"]),
    ("baseline NaN figure", AUDIT + 'baseline = "base.json"\n', {"base.json": _figure("NaN")},
     ["bad.sce.toml: baseline", "figures.validity"]),
    ("baseline string figure", AUDIT + 'baseline = "base.json"\n', {"base.json": _figure('"0.9"')},
     ["bad.sce.toml: baseline", "figures.validity"]),
    ("baseline not utf-8", AUDIT + 'baseline = "base.json"\n', {"base.json": b"\xff\xfe"},
     ["bad.sce.toml: baseline", "not UTF-8"]),
    ("baseline of another sample", AUDIT + 'seed = 5\nbaseline = "base.json"\n', {"base.json": _edit(lambda d: None)},
     ["bad.sce.toml: baseline", "different sample"]),
    ("baseline not a string", AUDIT + "baseline = 5\n", {}, ["bad.sce.toml: baseline"]),
    ("unknown metric", AUDIT + '[thresholds]\nvality = ">= 0.5"\n', {}, ["bad.sce.toml: thresholds.vality", "'vality'"]),
    ("unreadable rule", AUDIT + '[thresholds]\nvalidity = "about 0.8"\n', {}, ["bad.sce.toml: thresholds.validity"]),
    ("rule out of range", AUDIT + '[thresholds]\nvalidity = ">= 1e999"\n', {}, ["bad.sce.toml: thresholds.validity"]),
    ("check not run", AUDIT + '[thresholds.phi_cct]\nphi = ">= 0.1"\n', {}, ["bad.sce.toml: thresholds.phi_cct"]),
    ("grid figure on a text task", AUDIT.replace('"toy.toml"', '"toy.toml", "sentiment"') + '[thresholds]\ntm_a = "<= 0.1"\n', {},
     ["bad.sce.toml: thresholds.tm_a", "text tasks", "'sentiment'"]),
    ("override of a text task", AUDIT.replace('"toy.toml"', '"toy.toml", "sentiment"')
     + '[[override]]\ndataset = "sentiment"\nthresholds = { exact_match = ">= 0.1" }\n', {},
     ["bad.sce.toml: override[0].thresholds.exact_match", "text tasks"]),
    ("thresholds not a table", AUDIT + "thresholds = 3\n", {}, ["bad.sce.toml: thresholds"]),
    ("override unknown key", AUDIT + "[[override]]\nbogus = 1\n", {}, ["bad.sce.toml: override[0].bogus"]),
    ("override other dataset", AUDIT + '[[override]]\ndataset = "other.toml"\n', {}, ["bad.sce.toml: override[0].dataset"]),
    ("override unknown metric", AUDIT + '[[override]]\nvariant = "minimal"\nthresholds = { mean_rcf = "<= x" }\n', {},
     ["bad.sce.toml: override[0].thresholds.mean_rcf"]),
    ("override metric of another check", AUDIT + '[[override]]\nthresholds = { phi = ">= 0.1" }\n', {},
     ["bad.sce.toml: override[0].thresholds.phi", "'phi'"]),
    ("override empty xfail", AUDIT + '[[override]]\nthresholds = { validity = ">= 0.1" }\nxfail = ""\n', {},
     ["bad.sce.toml: override[0].xfail"]),
    ("negative tolerance", AUDIT + "tolerance = -0.1\n", {}, ["bad.sce.toml: tolerance"]),
    ("NaN tolerance", AUDIT + "tolerance = nan\n", {}, ["bad.sce.toml: tolerance"]),
    ("tolerance of an unknown metric", AUDIT + "tolerance = { validty = 0.1 }\n", {}, ["bad.sce.toml: tolerance", "validty"]),
    ("limit above 2^63", AUDIT.replace("limit = 3", f"limit = {2**64}"), {}, ["bad.sce.toml: limit"]),
    ("limit a float", AUDIT.replace("limit = 3", "limit = 1e3"), {}, ["bad.sce.toml: limit"]),
    ("seed of 5000 digits", AUDIT + "seed = 1" + "0" * 5000 + "\n", {}, ["bad.sce.toml", "invalid TOML"]),
    ("not utf-8", AUDIT.encode() + b'# \xff\n', {}, ["bad.sce.toml", "not UTF-8"]),
    ("invalid TOML", AUDIT + "[thresholds\n", {}, ["bad.sce.toml", "invalid TOML"]),
    ("unknown variant", AUDIT + 'variants = ["sideways"]\n', {}, ["bad.sce.toml", "variants", "sideways"]),
    ("unknown check", AUDIT + 'checks = ["nope"]\n', {}, ["bad.sce.toml", "checks", "nope"]),
]


@pytest.mark.parametrize("text, files, names", [a[1:] for a in AUDITS], ids=[a[0] for a in AUDITS])
def test_audit_file_refused(plugin_bench, request, good_baseline, text, files, names):
    files = {k: (v(good_baseline) if callable(v) else v) for k, v in files.items()}
    write(plugin_bench.path, {"bad.sce.toml": text, **files})
    result = plugin_bench.runpytest("-p", "no:cacheprovider", "bad.sce.toml")
    assert_plugin_refused(request, plugin_bench, result, names)


def test_control_gates_on_the_figures_each_task_reports_are_collected(plugin_bench):
    """A mixed audit gating a grid figure on its grid dataset only is not refused."""
    audit = (AUDIT.replace('"toy.toml"', '"toy.toml", "sentiment"')
             + '[[override]]\ndataset = "toy.toml"\nthresholds = { mean_rcf_a = "<= 0.1" }\n')
    (plugin_bench.path / "ok.sce.toml").write_text(audit)
    result = plugin_bench.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "ok.sce.toml")
    assert result.ret == 0, result.stdout.str()
    assert "ok.sce.toml::toy.toml/minimal::mean_rcf_a<=0.1" in result.stdout.str()


def test_control_audit_file_runs_the_model(plugin_bench):
    """The same audit, well formed (with a BOM, as editors write): it runs and calls the model."""
    (plugin_bench.path / "ok.sce.toml").write_bytes(b"\xef\xbb\xbf" + AUDIT.encode())
    result = plugin_bench.runpytest("-p", "no:cacheprovider", "ok.sce.toml")
    assert result.ret == 0, result.stdout.str()
    assert "chat" in (plugin_bench.path / LOG).read_text()


USES_AUDIT = "def test_a(sce_audit):\n    sce_audit()\n"
MARKED = "import pytest\n\n\n@pytest.mark.sce({})\n"
PYTEST_CASES = [
    ("--sce-limit -1", ["--sce-limit", "-1"], {}, ["--sce-limit"]),
    ("--sce-timeout nan", ["--sce-timeout", "nan"], {}, ["--sce-timeout"]),
    ("--sce-seed huge", ["--sce-seed", "9" * 40], {}, ["--sce-seed"]),
    ("ini sce_limit", [], {"pytest.ini": "[pytest]\nsce_limit = abc\n"}, ["ini sce_limit"]),
    ("pyproject limit above 2^63", [], {"pyproject.toml": f"[tool.sce-checks]\nlimit = {2**64}\n"},
     ["[tool.sce-checks] limit"]),
    ("pyproject baseline missing", [], {"pyproject.toml": '[tool.sce-checks]\nbaseline = "absent.json"\n'},
     ["absent.json", "no such file"]),
    ("--sce-threshold unknown metric", ["--sce-run", "--sce-threshold", "vality>=0.5"], {}, ["--sce-threshold", "'vality'"]),
    ("--sce-json a directory", ["--sce-json", "adir"], {"test_a.py": USES_AUDIT}, ["--sce-json", "is a directory"]),
    ("--sce-baseline NaN", ["--sce-run", "--sce-baseline", "base.json"], {"base.json": _figure("NaN")},
     ["base.json", "figures.validity"]),
    ("--sce-dataset huge JSONL id", ["--sce-run", "--sce-dataset", "rows.jsonl"],
     {"rows.jsonl": ROW1 + '\n{"id": ' + "9" * 5000 + ', "text": "x", "label": "negative"}\n'}, ["rows.jsonl:2"]),
    ("marker dataset missing", [], {"test_a.py": MARKED.format('dataset="nope.csv"') + USES_AUDIT},
     ["nope.csv"]),
    ("marker unknown argument", [], {"test_a.py": MARKED.format("lmit=3") + USES_AUDIT},
     ["test_a.py::test_a", "lmit"]),
    ("sce_example marker grid 2^64", [],
     {"big.toml": BIG_GRID, "test_a.py": MARKED.format('dataset="big.toml"') + "def test_e(sce_example):\n    pass\n"},
     ["test_a.py::test_e", "big.toml: features[0].max"]),
]


@pytest.mark.parametrize("args, files, names", [p[1:] for p in PYTEST_CASES], ids=[p[0] for p in PYTEST_CASES])
def test_pytest_option_refused(plugin_bench, request, good_baseline, args, files, names):
    files = {k: (v(good_baseline) if callable(v) else v) for k, v in files.items()}
    write(plugin_bench.path, {"test_a.py": USES_AUDIT, **files})
    result = plugin_bench.runpytest("-p", "no:cacheprovider", "--sce-model", MODEL, "--sce-dataset", "toy.toml",
                                    "--sce-limit", "3", "--sce-prediction", "generate", *args)
    assert_plugin_refused(request, plugin_bench, result, names)


def test_pytest_xdist_workers_refuse_for_the_controller(plugin_bench, request):
    """Under -n the workers collect: they find the bad input, run nothing, and the controller
    prints the line and exits 2 (an exit on a worker would read as a crash and be retried)."""
    pytest.importorskip("xdist")
    write(plugin_bench.path, {"test_a.py": USES_AUDIT})
    result = plugin_bench.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--sce-model", MODEL, "--sce-dataset",
                                               "toy.toml", "--sce-limit", "3", "--sce-prediction", "generate",
                                               "--sce-json", "adir")
    assert_plugin_refused(request, plugin_bench, result, ["--sce-json", "is a directory"])


def test_bad_input_inside_a_test_exits_2(plugin_bench):
    """A metric a test names only when it runs (after the model): exit 2 and one line, not the
    exit 1 of a failed gate."""
    write(plugin_bench.path, {"test_a.py": "from sce_checks.assertions import assert_threshold\n\n\n"
                                           "def test_a(sce_audit):\n    assert_threshold(sce_audit(), 'vality>=0.5')\n"})
    result = plugin_bench.runpytest("-p", "no:cacheprovider", "--sce-model", MODEL, "--sce-dataset", "toy.toml",
                                    "--sce-limit", "3", "--sce-prediction", "generate")
    out = result.stdout.str()
    assert result.ret == 2 and "Traceback" not in out
    result.stdout.fnmatch_lines(["*sce-checks: unknown metric 'vality' for toy/unconstrained; known: *"])


# -- real processes: what a shell sees ------------------------------------------------------------------

SUBPROCESS = [
    ("grid with a 2^64 bound", ["sce_checks.cli", *BASE, "--dataset", "big.toml"], ["big.toml: features[0].max"]),
    ("baseline NaN figure", ["sce_checks.cli", *BASE, "--dataset", "toy.toml", "--baseline", "base.json"],
     ["figures.validity"]),
    ("--json a directory", ["sce_checks.cli", *BASE, "--dataset", "toy.toml", "--json", "adir"], ["--json"]),
    ("unknown metric", ["sce_checks.cli", *BASE, "--dataset", "toy.toml", "--threshold", "vality>=0.5"], ["'vality'"]),
    ("--timeout nan", ["sce_checks.cli", *BASE, "--dataset", "toy.toml", "--timeout", "nan"], ["--timeout"]),
]


@pytest.mark.parametrize("argv, names", [s[1:] for s in SUBPROCESS], ids=[s[0] for s in SUBPROCESS])
def test_subprocess_refused(bench, request, good_baseline, argv, names):
    write(bench, {"big.toml": BIG_GRID, "base.json": _figure("NaN")(good_baseline)})
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", *argv], cwd=bench, env=env, capture_output=True, text=True, timeout=120)
    assert_refused(request, bench, proc.returncode, proc.stdout, proc.stderr, names)


def test_subprocess_pytest_on_a_bad_audit_file(bench, request):
    write(bench, {"big.toml": BIG_GRID, "bad.sce.toml": AUDIT.replace("toy.toml", "big.toml")})
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "bad.sce.toml"], cwd=bench, env=env,
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stdout.splitlines() if "sce-checks: " in line]
    called = (bench / LOG).exists()
    tally(case_id(request), proc.returncode, proc.stdout + proc.stderr, lines, called)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr and not called
    assert len(lines) == 1 and "bad.sce.toml: datasets[0]" in lines[0] and "features[0].max" in lines[0]


# -- issue 26: a baseline that matches nothing of the run, or another elicitation --------------------
# Refused in the preflight, before the model is loaded (the recorder's log stays absent); before,
# the whole run was made first (270 model calls on the income task) and then refused.


def _only(key: str):
    """The good baseline holding only its ``key`` entry."""
    return _edit(lambda d: d.update(entries={key: d["entries"][key]}))


def _elicited(value: str):
    return _edit(lambda d: d["environment"].update(elicitation=value))


UNMATCHED = [
    ("another task", "good", ["--dataset", "sentiment"], ["base.json", "shares no entry", "sce/sentiment/"]),
    ("another variant", _only("sce/toy/minimal"), ["--variant", "unconstrained"],
     ["base.json", "shares no entry", "sce/toy/minimal", "sce/toy/unconstrained"]),
    ("another check", "good", ["--check", "ct"], ["base.json", "shares no entry", "ct/toy/-"]),
    ("saved under schema, run free", _elicited("schema"), [],
     ["base.json", "saved under --elicitation schema", "this run uses --elicitation free"]),
    ("saved sampled, run greedy",
     _edit(lambda d: d["environment"].update(sampling={"temperature": 1.0, "top_p": 1.0, "samples": 5})), [],
     ["base.json", "saved with --temperature 1", "this run uses --temperature 0"]),
    ("saved greedy, run sampled", "good", ["--temperature", "0.7"],
     ["base.json", "saved with --temperature 0", "this run uses --temperature 0.7"]),
    ("saved with another top-p", _edit(lambda d: d["environment"].update(sampling={"temperature": 0.0, "top_p": 0.9})),
     [], ["base.json", "saved with --top-p 0.9", "this run uses --top-p 1"]),
]


@pytest.mark.parametrize("content, args, names", [u[1:] for u in UNMATCHED], ids=[u[0] for u in UNMATCHED])
def test_baseline_matching_nothing_is_refused_before_any_model_call(bench, capsys, request, good_baseline, content,
                                                                    args, names):
    (bench / "base.json").write_text(json.dumps(good_baseline) if content == "good" else content(good_baseline))
    code, out, err = cli(capsys, ["--baseline", "base.json", *args])
    assert_refused(request, bench, code, out, err, names)


def test_control_a_baseline_sharing_some_entries_is_taken(bench, capsys, good_baseline):
    """A result the baseline lacks is refused only after the run (it may be a skipped check):
    sharing one entry is enough to start."""
    (bench / "base.json").write_text(_only("sce/toy/minimal")(good_baseline))
    code, out, err = cli(capsys, ["--baseline", "base.json", "--variant", "minimal"])
    assert code in (0, 1), out + err
    assert "chat" in (bench / LOG).read_text()


AUDIT_UNMATCHED = [
    ("audit baseline of another variant", AUDIT + 'variants = ["unconstrained"]\nbaseline = "base.json"\n',
     {"base.json": _only("sce/toy/minimal")}, ["bad.sce.toml: baseline", "shares no entry"]),
    ("audit baseline of another task", AUDIT.replace('"toy.toml"', '"sentiment"') + 'baseline = "base.json"\n',
     {"base.json": _edit(lambda d: None)}, ["bad.sce.toml: baseline", "shares no entry"]),
    ("audit baseline saved under schema", AUDIT + 'baseline = "base.json"\n', {"base.json": _elicited("schema")},
     ["bad.sce.toml: baseline", "saved under elicitation = schema"]),
]


@pytest.mark.parametrize("text, files, names", [a[1:] for a in AUDIT_UNMATCHED], ids=[a[0] for a in AUDIT_UNMATCHED])
def test_audit_file_baseline_matching_nothing_is_refused(plugin_bench, request, good_baseline, text, files, names):
    files = {k: (v(good_baseline) if callable(v) else v) for k, v in files.items()}
    write(plugin_bench.path, {"bad.sce.toml": text, **files})
    result = plugin_bench.runpytest("-p", "no:cacheprovider", "bad.sce.toml")
    assert_plugin_refused(request, plugin_bench, result, names)


def test_pytest_sce_run_baseline_of_another_variant_is_refused(plugin_bench, request, good_baseline):
    write(plugin_bench.path, {"base.json": _only("sce/toy/minimal")(good_baseline)})
    result = plugin_bench.runpytest("-p", "no:cacheprovider", "--sce-run", "--sce-model", MODEL, "--sce-dataset",
                                    "toy.toml", "--sce-limit", "3", "--sce-prediction", "generate", "--sce-variant",
                                    "unconstrained", "--sce-baseline", "base.json")
    assert_plugin_refused(request, plugin_bench, result, ["base.json", "shares no entry"])
