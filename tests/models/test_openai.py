"""The openai backend against a real HTTP server on 127.0.0.1 (tests/openai_server.py)."""

from __future__ import annotations

import json
import math
import time

import pytest

from sce_checks.errors import BackendError
from sce_checks.models import Decoding, ModelOptions, load_model, supports_scoring
from sce_checks.models.openai import OpenAIChatModel
from tests.openai_server import FakeOpenAIServer


def echo(messages, body):
    return "echo: " + messages[-1]["content"]


def conv(text):
    return [{"role": "user", "content": text}]


def fast(server, **kw):
    kw.setdefault("timeout_s", 0.5)
    kw.setdefault("max_retries", 3)
    return OpenAIChatModel("fake-model", server.url, backoff_base_s=0.01, backoff_max_s=1.0, **kw)


def test_replies_in_order_with_bounded_concurrency():
    with FakeOpenAIServer(echo) as server:
        model = fast(server, max_concurrency=3)
        texts = [f"message {i}" for i in range(12)]
        assert model.chat([conv(t) for t in texts], Decoding(max_new_tokens=7)) == [f"echo: {t}" for t in texts]
        assert 1 < server.max_in_flight <= 3
        body = server.requests[0]["body"]
        assert body["model"] == "fake-model" and body["temperature"] == 0.0 and body["max_tokens"] == 7


def test_spec_builds_the_backend():
    with FakeOpenAIServer(echo) as server:
        model = load_model(f"openai:fake-model@{server.url}", ModelOptions(max_concurrency=2, timeout_s=3))
        assert isinstance(model, OpenAIChatModel)
        assert model.identity() == {"backend": "openai", "model": "fake-model", "base_url": server.url}
        assert model.chat([conv("x")], Decoding()) == ["echo: x"]


def test_429_with_retry_after_is_honoured():
    with FakeOpenAIServer(echo) as server:
        server.faults.append("429")
        started = time.perf_counter()
        assert fast(server).chat([conv("a")], Decoding()) == ["echo: a"]
        assert time.perf_counter() - started >= 0.2  # waited Retry-After: 0.2
        assert len(server.requests) == 2


@pytest.mark.parametrize("faults", [["500", "503"], ["hang"], ["badjson"], ["nochoices"], ["drop"]])
def test_transient_faults_are_retried(faults):
    with FakeOpenAIServer(echo, hang_s=1.0) as server:
        server.faults.extend(faults)
        assert fast(server, timeout_s=0.3).chat([conv("a")], Decoding()) == ["echo: a"]
        assert len(server.requests) == len(faults) + 1


def test_final_error_after_the_last_retry():
    with FakeOpenAIServer(echo) as server:
        server.faults.extend(["500"] * 10)
        with pytest.raises(BackendError) as info:
            fast(server, max_retries=2).chat([conv("a")], Decoding())
        message = str(info.value)
        assert "after 3 attempts" in message and "HTTP 500" in message and server.url in message
        assert len(server.requests) == 3


def test_401_is_not_retried():
    with FakeOpenAIServer(echo) as server:
        server.faults.append("401")
        with pytest.raises(BackendError, match="HTTP 401"):
            fast(server).chat([conv("a")], Decoding())
        assert len(server.requests) == 1


def test_unreachable_server_says_so():
    with FakeOpenAIServer(echo) as server:
        url = server.url
    with pytest.raises(BackendError, match="unreachable"):
        OpenAIChatModel("m", url, max_retries=1, backoff_base_s=0.01).chat([conv("a")], Decoding())


def test_api_key_sent_but_never_shown(monkeypatch):
    monkeypatch.setenv("SCE_CHECKS_API_KEY", "sk-secret-123")
    with FakeOpenAIServer(echo) as server:
        model = fast(server)
        model.chat([conv("a")], Decoding())
        assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-secret-123"
        server.faults.extend(["401"])
        with pytest.raises(BackendError) as info:
            model.chat([conv("b")], Decoding())
        for shown in (repr(model), json.dumps(model.identity()), str(info.value)):
            assert "sk-secret" not in shown


OPTIONS = ['{"answer": "Below"}', '{"answer": "Above"}']


def test_logprob_scoring_ranks_options():
    # the server's tokens are 4 characters: '{"an' 'swer' '": "' 'Belo' 'w"}'; the options part
    # at token 3 ('Belo' vs 'Abov'), where the server offers 'Abov' with probability 0.05
    def alternatives(messages, position):
        return {"Abov": math.log(0.05)} if position == 3 else {}

    with FakeOpenAIServer(lambda m, b: OPTIONS[0], logprobs=True, alternatives=alternatives) as server:
        model = fast(server)
        (scores,) = model.score_options([conv("q")], OPTIONS)
        # three shared tokens (3 x log 0.9), then 'Belo' (log 0.9) vs 'Abov' (log 0.05)
        assert scores[0] == pytest.approx(4 * math.log(0.9))
        assert scores[1] == pytest.approx(3 * math.log(0.9) + math.log(0.05))
        assert server.requests[0]["body"]["logprobs"] is True
        assert supports_scoring(model)


def test_server_without_logprobs_turns_scoring_off():
    with FakeOpenAIServer(lambda m, b: OPTIONS[0], logprobs=False) as server:
        model = fast(server)
        assert supports_scoring(model)
        with pytest.raises(BackendError, match="no logprobs"):
            model.score_options([conv("q")], OPTIONS)
        assert not supports_scoring(model)
