"""Opening a run's models (sce_checks/models/opening.py) and collecting its warnings
(sce_checks/notices.py), without a pytest run around them."""

from __future__ import annotations

import json
import sys
import warnings

import pytest

from sce_checks import notices
from sce_checks.audit import AuditConfig, run_audit
from sce_checks.errors import UserInputError
from sce_checks.models import Decoding, ModelOptions, parse_spec
from sce_checks.models import opening
from sce_checks.models.cache import CachedModel, CacheUnavailableWarning, ResponseCache
from sce_checks.models.openai import OptionScoringWarning
from tests.openai_server import FakeOpenAIServer

GREEDY = Decoding(max_new_tokens=8)
needs_linux_proc = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                      reason="a folder no one can make, even root: one under /proc")
UNMAKEABLE = "/proc/sce-checks-no-such-folder"


def conv(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# -- notices ---------------------------------------------------------------------------------------


def test_a_warning_outside_a_collecting_run_is_a_python_warning():
    with pytest.warns(CacheUnavailableWarning, match="the cache"):
        notices.warn(CacheUnavailableWarning("the cache"))


def test_a_collecting_run_keeps_each_warning_once_as_one_line_and_issues_none():
    kept = notices.Notices()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning would raise here
        with notices.collecting(kept):
            for _ in range(3):
                notices.warn(OptionScoringWarning("no logprobs:\n  no option scoring"))
            notices.warn(CacheUnavailableWarning("the cache"))
            with notices.collecting(None):  # None keeps the collector in place
                notices.warn(CacheUnavailableWarning("the cache"))
    assert kept.lines == ["no logprobs: no option scoring", "the cache"]
    with pytest.warns(CacheUnavailableWarning):  # the block ended: no collector any more
        notices.warn(CacheUnavailableWarning("after"))
    assert kept.lines == ["no logprobs: no option scoring", "the cache"]


def test_an_echoing_collector_also_issues_each_new_warning_once():
    kept = notices.Notices(echo=True)
    with warnings.catch_warnings(record=True) as caught, notices.collecting(kept):
        warnings.simplefilter("always")
        notices.warn(CacheUnavailableWarning("x"))
        notices.warn(CacheUnavailableWarning("x"))
    assert [(w.category, str(w.message)) for w in caught] == [(CacheUnavailableWarning, "x")]
    assert kept.lines == ["x"]


# -- the opener ------------------------------------------------------------------------------------


def test_each_model_is_opened_once_behind_one_cache_from_one_parse(workdir, monkeypatch):
    parsed: list[str] = []
    real = opening.parse_spec
    monkeypatch.setattr(opening, "parse_spec", lambda spec: parsed.append(spec) or real(spec))
    opener = opening.ModelOpener(ModelOptions())
    first = opener.open("python:toy_models:boundary")
    assert isinstance(first, CachedModel) and isinstance(first.cache, ResponseCache)
    assert opener.open("python:toy_models:boundary") is first
    other = opener.open("python:toy_models:far")
    assert other is not first and other.cache is first.cache  # one cache for the run
    assert parsed == ["python:toy_models:boundary", "python:toy_models:far"]
    assert opening.ModelOpener(cache=False).open("python:toy_models:far").cache is None


def test_the_cache_path_is_checked_before_the_model_is_built(workdir, monkeypatch):
    (workdir / "bad" / "responses.sqlite").mkdir(parents=True)
    built: list[object] = []
    monkeypatch.setattr(opening, "load_model_lazily", lambda spec, options: built.append(spec))
    opener = opening.ModelOpener(cache_path=str(workdir / "bad" / "responses.sqlite"))
    with pytest.raises(UserInputError, match="is a directory, not a file"):
        opener.open("python:toy_models:boundary")
    assert built == []


def test_a_model_that_cannot_be_opened_fails_again_without_a_second_try(workdir, monkeypatch):
    tries: list[object] = []
    real = opening.load_model_lazily
    monkeypatch.setattr(opening, "load_model_lazily", lambda spec, options: tries.append(spec) or real(spec, options))
    opener = opening.ModelOpener(cache=False)
    for _ in range(2):
        with pytest.raises(UserInputError, match="no_such_module"):
            opener.open("python:no_such_module:f")
    assert tries == [parse_spec("python:no_such_module:f")]  # handed on parsed, tried once


@needs_linux_proc
def test_an_unusable_cache_is_one_notice_of_the_run_and_a_python_warning_for_library_use(workdir):
    """run_audit from Python: the warning is in the environment AND a Python warning (filters and
    pytest.warns work for library users); a session's opener collects it silently."""
    config = AuditConfig(model="python:toy_models:boundary", datasets=("toy.toml",), checks=("sce",), limit=3,
                         prediction="generate", cache_dir=UNMAKEABLE)
    with pytest.warns(CacheUnavailableWarning, match="cannot be used") as caught:
        run = run_audit(config)
    assert len([w for w in caught if w.category is CacheUnavailableWarning]) == 1
    [line] = run.environment["warnings"]
    assert line.startswith(f"response cache {UNMAKEABLE}/responses.sqlite cannot be used") and "\n" not in line

    quiet = notices.Notices()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = run_audit(config, models=opening.ModelOpener.for_run(config, quiet))
    assert run.environment["warnings"] == quiet.lines == [line]


def test_the_model_collects_what_its_backend_warns_about_in_any_caller(workdir):
    """A server without logprobs, asked through the run's model by code other than an audit (a
    test using the sce_model fixture): the warning still lands in the run's notices."""
    kept = notices.Notices()
    with FakeOpenAIServer(lambda messages, body: "hi") as server:
        model = opening.ModelOpener(ModelOptions(timeout_s=3, max_retries=1), cache=False,
                                    notices=kept).open(f"openai:m@{server.url}")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert model.can_score() is False and model.can_score() is False
            assert model.chat([conv("x")], GREEDY) == ["hi"]
    [line] = kept.lines
    assert f"{server.url} (model 'm')" in line and "no option scoring" in line


def test_sce_audit_clear_cache_empties_the_cache_the_run_then_uses(workdir, capsys):
    from sce_checks.cli import main

    def calls(*extra: str) -> int:
        assert main(["--model", "python:toy_models:boundary", "--dataset", "toy.toml", "--limit", "3", "-q",
                     "--prediction", "generate", "--json", "r.json", *extra]) == 0
        return json.loads((workdir / "r.json").read_text())["environment"]["model_calls"]["chat_calls"]

    assert calls() > 0 and calls() == 0  # the rerun is answered from the cache
    assert calls("--clear-cache") > 0 and calls() == 0  # cleared, then filled again by the same run
    capsys.readouterr()
