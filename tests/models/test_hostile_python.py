"""Python models that misbehave (issue 26, item 8): whatever a ``python:`` model does (raise with a
message full of terminal escapes and its API key, call ``sys.exit``, return a ``str`` subclass
whose methods raise, have an ``identity()`` that raises or is not JSON), the run ends with exit 2
and one line, or with the right figures, through ``sce-audit`` and through the pytest plugin;
never with a traceback, never with pytest's "gate failed" (exit 1), and never showing the value
of a secret-named environment variable (sce_checks/errors.py: `redact_secrets`).

Before (commit 5ad9b1e): the raising model's line held the raw escapes and the key; the str
subclass, ``sys.exit(0)`` and the raising ``identity()`` gave exit 1 and about 2,000 lines of
pytest tracebacks; the identity holding an ``object()`` gave an 88-line traceback from the JSON
report writer."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from sce_checks.cli import main
from sce_checks.errors import BackendError, UserInputError, redact_secrets
from sce_checks.models import Decoding
from sce_checks.models.python import load_python_model

KEY = "sk-hostile-0123456789abcdef"
HOSTILE = textwrap.dedent(
    '''
    import os
    import sys

    ANSWER = '{"answer": "No"}'


    def raises(messages):
        raise RuntimeError("\\x1b[2J\\x1b[31mFAKE PASS\\x1b[0m key=" + os.environ["MY_API_KEY"] + "\\nsecond line")


    def raises_at_length(messages):
        raise ValueError("x" * 100_000)


    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no message either")


    def raises_unprintable(messages):
        raise Unprintable()


    def exits(messages):
        sys.exit(0)


    class Exits:
        def chat(self, conversations, decoding):
            sys.exit(3)


    class ExitsWhenMade:
        def __init__(self):
            sys.exit(0)

        def chat(self, conversations, decoding):
            return [ANSWER] * len(conversations)


    class Evil(str):
        def __hash__(self):
            raise RuntimeError("evil hash")

        def __eq__(self, other):
            raise RuntimeError("evil eq")

        def __len__(self):
            raise RuntimeError("evil len")

        def strip(self, *args):
            raise RuntimeError("evil strip")

        def encode(self, *args, **kwargs):
            raise RuntimeError("evil encode")

        def __str__(self):
            raise RuntimeError("evil str")


    def evil_str(messages):
        return Evil(ANSWER)


    def plain_str(messages):
        return ANSWER


    class EvilObject:
        def chat(self, conversations, decoding):
            return [Evil(ANSWER) for _ in conversations]


    class BreaksMidway:
        def chat(self, conversations, decoding):
            yield ANSWER
            raise KeyError(os.environ["MY_API_KEY"])


    class Answering:
        def chat(self, conversations, decoding):
            return [ANSWER] * len(conversations)


    class IdentityRaises(Answering):
        def identity(self):
            raise ValueError("no identity today, key " + os.environ["MY_API_KEY"])


    class IdentityExits(Answering):
        def identity(self):
            sys.exit(0)


    class IdentityObject(Answering):
        def identity(self):
            return {"weights": object()}


    class IdentitySet(Answering):
        def identity(self):
            return {"layers": {1, 2}}


    class IdentityNaN(Answering):
        def identity(self):
            return {"temperature": float("nan")}


    class IdentityList(Answering):
        def identity(self):
            return 7


    class IdentityFine(Answering):
        def identity(self):
            return {"weights": "v1", "layers": [1, 2]}
    '''
)

# model -> what its one line says
REFUSED = {
    "raises": "failed on conversation 0: RuntimeError: FAKE PASS key=<redacted> second line",
    "raises_at_length": "failed on conversation 0: ValueError: xxxx",
    "raises_unprintable": "Unprintable: <its message could not be shown: RuntimeError>",
    "exits": "failed on conversation 0: called sys.exit(0) (SystemExit)",
    "Exits": "chat failed: called sys.exit(3) (SystemExit)",
    "ExitsWhenMade": "could not instantiate ExitsWhenMade with no arguments: called sys.exit(0) (SystemExit)",
    "BreaksMidway": "chat failed: KeyError: '<redacted>'",
    "IdentityRaises": "identity() failed: ValueError: no identity today, key <redacted>",
    "IdentityExits": "identity() failed: called sys.exit(0) (SystemExit)",
    "IdentityObject": "identity() must return a JSON object",
    "IdentitySet": "it returned dict data (TypeError: Object of type set is not JSON serializable)",
    "IdentityNaN": "it returned dict data (ValueError: Out of range float values are not JSON compliant",
    "IdentityList": "it returned int data (TypeError",
}


@pytest.fixture
def hostile(workdir, monkeypatch):
    (workdir / "hostile_python_models.py").write_text(HOSTILE)
    monkeypatch.setenv("MY_API_KEY", KEY)
    yield workdir
    sys.modules.pop("hostile_python_models", None)  # the next test that writes the module imports its own


def audit(model: str, *extra: str) -> int:
    return main(["--model", f"python:hostile_python_models:{model}", "--dataset", "toy.toml", "--limit", "3",
                 "--prediction", "generate", "-q", *extra])


def assert_clean(text: str) -> None:
    assert "Traceback" not in text and KEY not in text and "\x1b" not in text, text[-3000:]


@pytest.mark.parametrize("model", sorted(REFUSED))
def test_sce_audit_ends_a_misbehaving_model_with_one_line(hostile, capsys, model):
    code = audit(model)
    out, err = capsys.readouterr()
    assert_clean(out + err)
    assert code == 2, out[-2000:] + err
    [line] = err.splitlines()
    assert line.startswith("sce-audit: ") and REFUSED[model] in line, line
    assert len(line) < 700


@pytest.mark.parametrize("model", ["evil_str", "EvilObject"])
def test_a_str_subclass_is_read_as_its_text(hostile, capsys, model):
    """Nothing of the subclass runs: its text is copied by str's own method, so the figures are
    those of the same model returning plain str (numpy's str_ is such a subclass too)."""
    assert audit("plain_str", "--json", "plain.json", "--no-cache") == 0
    code = audit(model, "--json", "evil.json", "--no-cache")
    out, err = capsys.readouterr()
    assert_clean(out + err)
    assert code == 0, out[-2000:] + err
    plain, evil = (json.loads((hostile / name).read_text())["results"] for name in ("plain.json", "evil.json"))
    for row in plain + evil:
        row.pop("model", None)
        row.pop("wall_seconds", None)
    assert evil == plain


def test_an_identity_that_is_json_is_kept_and_reported(hostile):
    model = load_python_model("hostile_python_models:IdentityFine")
    identity = model.identity()
    assert identity["weights"] == "v1" and identity["layers"] == [1, 2] and identity["backend"] == "python"
    identity["weights"] = "changed"  # a copy: the model's own stays
    assert model.identity()["weights"] == "v1"
    assert model.chat([[{"role": "user", "content": "q"}]], Decoding()) == ['{"answer": "No"}']


def test_library_users_get_the_errors_one_line_too(hostile):
    with pytest.raises(UserInputError, match="identity\\(\\) failed") as opened:
        load_python_model("hostile_python_models:IdentityRaises")
    model = load_python_model("hostile_python_models:Exits")
    with pytest.raises(BackendError, match="sys.exit\\(3\\)") as called:
        model.chat([[{"role": "user", "content": "q"}]], Decoding())
    assert opened.value.__cause__ is None and opened.value.__suppress_context__  # bad input: the line says it all
    assert isinstance(called.value.__cause__, SystemExit)  # a failure in use: chained, for whoever debugs it
    assert KEY not in str(opened.value) + str(called.value)


AUDIT_FILE = ('model = "python:hostile_python_models:{model}"\ndatasets = ["toy.toml"]\nlimit = 3\n'
              'prediction = "generate"\n')


@pytest.mark.parametrize("model", ["raises", "exits", "Exits", "BreaksMidway", "IdentityRaises", "IdentityExits",
                                   "IdentityObject"])
def test_pytest_plugin_ends_a_misbehaving_model_with_one_line(project, monkeypatch, model):
    project.makepyfile(hostile_python_models=HOSTILE)
    monkeypatch.setenv("MY_API_KEY", KEY)
    project.makefile(".sce.toml", audit=AUDIT_FILE.format(model=model))
    result = project.runpytest("-p", "no:cacheprovider", "audit.sce.toml")
    out = result.stdout.str() + result.stderr.str()
    assert_clean(out)
    assert result.ret == 2, out[-3000:]
    # one message, however often pytest repeats it (its failure sections, and its short summary,
    # whose "FAILED <item> - <message>" lines hold the whole message where the terminal is not
    # cut to a width: CI=true)
    said = {line.strip() for line in out.splitlines() if REFUSED[model] in line and not line.startswith("FAILED ")}
    assert len(said) == 1, out[-3000:]


def test_pytest_plugin_reads_a_str_subclass_as_its_text(project, monkeypatch):
    project.makepyfile(hostile_python_models=HOSTILE)
    project.makefile(".sce.toml", audit=AUDIT_FILE.format(model="evil_str"))
    result = project.runpytest("-p", "no:cacheprovider", "audit.sce.toml")
    out = result.stdout.str() + result.stderr.str()
    assert_clean(out)
    assert result.ret == 0, out[-3000:]


# -- the redaction rule ------------------------------------------------------------------------------


def test_secret_named_variables_are_redacted_and_others_are_not():
    env = {"OPENAI_API_KEY": "sk-abc123456", "HF_TOKEN": "hf_tokenvalue", "aws_secret": "  s3cr3t-value ",
           "DB_PASSWORD": "hunter22", "PATH": "/usr/local/bin", "MONKEY": "bananas!", "SHORT_KEY": "abc123",
           "KEYBOARD": "qwertyuiop"}
    text = "sk-abc123456 hf_tokenvalue s3cr3t-value hunter22 /usr/local/bin bananas! abc123 qwertyuiop"
    assert redact_secrets(text, env) == ("<redacted> <redacted> <redacted> <redacted> /usr/local/bin <redacted> "
                                         "abc123 qwertyuiop")
