"""The python:<module>:<attr> backend, with real modules written to a temporary directory."""

from __future__ import annotations

import hashlib
import itertools
import sys
import textwrap

import pytest

from sce_checks.errors import BackendError, UserInputError
from sce_checks.models import load_model, supports_scoring
from sce_checks.models.base import Decoding
from sce_checks.models.cache import CachedModel, ResponseCache
from sce_checks.models.python import FunctionModel, load_python_model

GREEDY = Decoding()
_names = itertools.count()


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """Write a module into tmp_path (the working directory) under a fresh name; return the name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader prepends the cwd; undo it after
    written: list[str] = []

    def write(source: str, name: str | None = None) -> str:
        name = name or f"sce_user_models_{next(_names)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


FUNCTION = """
def shout(messages):
    return messages[-1]["content"].upper()

def bad_type(messages):
    return 42 if messages[-1]["content"] == "b" else "ok"

def explode(messages):
    if messages[-1]["content"] == "b":
        raise ValueError("no b please")
    return "ok"

answer = 3
"""

OBJECT = """
class Model:
    def __init__(self):
        self.calls = 0

    def identity(self):
        return {"backend": "mine", "model": "toy-7b", "revision": "r1"}

    def chat(self, conversations, decoding):
        self.calls += 1
        return [f"{c[-1]['content']}@{decoding.temperature}" for c in conversations]

    def score_options(self, conversations, options):
        return [[-float(i) for i in range(len(options))] for _ in conversations]

class NoChat:
    pass

class NeedsArgs:
    def __init__(self, path):
        pass

    def chat(self, conversations, decoding):
        return []

instance = Model()

class holder:
    nested = Model()
"""


def test_plain_function_is_wrapped_in_a_batched_chat(write_module, tmp_path):
    name = write_module(FUNCTION)
    model = load_python_model(f"{name}:shout")
    assert isinstance(model, FunctionModel)
    assert model.chat([conv("hi"), conv("there")], GREEDY) == ["HI", "THERE"]
    assert not supports_scoring(model)
    identity = model.identity()
    assert identity["backend"] == "python" and identity["target"] == f"{name}:shout"
    assert identity["source_sha256"] == hashlib.sha256((tmp_path / f"{name}.py").read_bytes()).hexdigest()


def test_spec_goes_through_load_model(write_module):
    name = write_module(FUNCTION)
    assert load_model(f"python:{name}:shout").chat([conv("x")], GREEDY) == ["X"]


def test_object_instance_keeps_its_identity_and_scoring(write_module):
    name = write_module(OBJECT)
    model = load_python_model(f"{name}:instance")
    assert model.chat([conv("a"), conv("b")], Decoding(temperature=0.5)) == ["a@0.5", "b@0.5"]
    assert supports_scoring(model)
    assert model.score_options([conv("a")], ["x", "y", "z"]) == [[0.0, -1.0, -2.0]]
    identity = model.identity()
    # the object's own keys are kept; backend/target/source hash are the loader's
    assert identity["model"] == "toy-7b" and identity["revision"] == "r1"
    assert identity["backend"] == "python" and identity["target"] == f"{name}:instance"
    assert len(identity["source_sha256"]) == 64


def test_class_is_instantiated_and_dotted_attributes_resolve(write_module):
    name = write_module(OBJECT)
    from_class = load_python_model(f"{name}:Model")
    assert from_class.chat([conv("q")], GREEDY) == ["q@0.0"]
    nested = load_python_model(f"{name}:holder.nested")
    assert nested.chat([conv("n")], GREEDY) == ["n@0.0"]


def test_cached_python_model_second_run_calls_nothing(write_module, tmp_path):
    name = write_module(OBJECT)
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        first = CachedModel(load_python_model(f"{name}:Model"), cache)
        first.chat([conv("a"), conv("b")], GREEDY)
        second = CachedModel(load_python_model(f"{name}:Model"), cache)
        assert second.chat([conv("a"), conv("b")], GREEDY) == ["a@0.0", "b@0.0"]
        assert second.inner.obj.calls == 0 and second.stats.cache_hits == 2


def test_identity_changes_when_the_source_file_changes(write_module, tmp_path):
    name = write_module(FUNCTION)
    before = load_python_model(f"{name}:shout").identity()
    sys.modules.pop(name)  # a later run imports afresh
    write_module(FUNCTION + "\n# tuned the prompt\n", name=name)
    after = load_python_model(f"{name}:shout").identity()
    assert before["source_sha256"] != after["source_sha256"]
    assert {k: v for k, v in before.items() if k != "source_sha256"} == {
        k: v for k, v in after.items() if k != "source_sha256"
    }


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_module_says_where_it_looked(write_module, tmp_path, monkeypatch):
    extra = tmp_path / "elsewhere"
    monkeypatch.setenv("PYTHONPATH", str(extra))
    with pytest.raises(UserInputError) as exc:
        load_python_model("no_such_module_here:f")
    message = one_line(exc)
    assert "'no_such_module_here' not found" in message
    assert str(tmp_path) in message and str(extra) in message
    assert message.index(str(tmp_path)) < message.index(str(extra))  # cwd first, then PYTHONPATH


def test_module_found_in_pythonpath(write_module, tmp_path, monkeypatch):
    other = tmp_path / "lib"
    other.mkdir()
    (other / "pp_only_model_mod.py").write_text("def f(messages):\n    return 'from pythonpath'\n")
    monkeypatch.setenv("PYTHONPATH", str(other))
    try:
        assert load_python_model("pp_only_model_mod:f").chat([conv("x")], GREEDY) == ["from pythonpath"]
    finally:
        sys.modules.pop("pp_only_model_mod", None)


def test_import_error_inside_the_user_module_is_reported_as_such(write_module):
    name = write_module("import numpy_that_does_not_exist_xyz\n\ndef f(messages):\n    return ''\n")
    with pytest.raises(UserInputError) as exc:
        load_python_model(f"{name}:f")
    message = one_line(exc)
    assert "failed inside the module" in message and f"{name}.py:1" in message
    assert "No module named 'numpy_that_does_not_exist_xyz'" in message


def test_syntax_error_inside_the_user_module(write_module):
    name = write_module("def f(messages):\n    return (\n")
    with pytest.raises(UserInputError) as exc:
        load_python_model(f"{name}:f")
    message = one_line(exc)
    assert "SyntaxError" in message and f"{name}.py" in message


def test_missing_attribute_lists_close_names(write_module):
    name = write_module(FUNCTION)
    with pytest.raises(UserInputError) as exc:
        load_python_model(f"{name}:shuot")
    message = one_line(exc)
    assert "no attribute 'shuot'" in message and "close names: shout" in message


def test_not_callable_and_no_chat(write_module):
    name = write_module(FUNCTION + OBJECT)
    with pytest.raises(UserInputError, match="neither callable nor with a 'chat' method"):
        load_python_model(f"{name}:answer")
    with pytest.raises(UserInputError, match="class NoChat has no 'chat' method"):
        load_python_model(f"{name}:NoChat")
    with pytest.raises(UserInputError, match="could not instantiate NeedsArgs with no arguments"):
        load_python_model(f"{name}:NeedsArgs")


def test_function_returning_a_non_string_is_a_backend_error(write_module):
    name = write_module(FUNCTION)
    model = load_python_model(f"{name}:bad_type")
    with pytest.raises(BackendError) as exc:
        model.chat([conv("a"), conv("b")], GREEDY)
    message = one_line(exc)
    assert f"python:{name}:bad_type" in message and "conversation 1" in message and "int" in message


def test_function_raising_is_a_backend_error_chained_to_the_cause(write_module):
    name = write_module(FUNCTION)
    model = load_python_model(f"{name}:explode")
    with pytest.raises(BackendError) as exc:
        model.chat([conv("a"), conv("b")], GREEDY)
    message = one_line(exc)
    assert f"python:{name}:explode" in message and "conversation 1" in message and "no b please" in message
    assert isinstance(exc.value.__cause__, ValueError)


def test_function_gets_a_copy_of_the_messages(write_module):
    name = write_module("def f(messages):\n    messages[0]['content'] = 'mutated'\n    return 'ok'\n")
    conversation = conv("original")
    load_python_model(f"{name}:f").chat([conversation], GREEDY)
    assert conversation == conv("original")
