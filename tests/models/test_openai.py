"""The openai backend against a real HTTP server on 127.0.0.1 (tests/openai_server.py)."""

from __future__ import annotations

import json
import math
import os
import time

import pytest

from sce_checks.errors import BackendError, UserInputError
from sce_checks.models import Decoding, ModelOptions, load_model, supports_scoring
from sce_checks.models.openai import (PROBE_CONVERSATION, OpenAIChatModel, OptionScoringWarning, _continues,
                                      _option_scores, _prefill_prefix, _token_logprobs)
from sce_checks.prompts.common import canonical_answer
from sce_checks.prompts.schemas import answer_schema, text_sce_schema
from tests.openai_server import ChoiceLM, FakeOpenAIServer



@pytest.fixture(autouse=True)
def _slots_in_tmp(tmp_path, monkeypatch):
    """The server slots' lock files (sce_checks/models/slots.py) go to a temporary cache dir."""
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))

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
    # the probe finds no logprobs before any scoring request: checks generate from the start
    with FakeOpenAIServer(lambda m, b: OPTIONS[0], logprobs=False) as server:
        model = fast(server)
        with pytest.warns(OptionScoringWarning, match="returned no usable logprobs: no option scoring"):
            assert not supports_scoring(model)
        assert model.scoring_support().method == "none"
        sent = len(server.requests)
        with pytest.raises(BackendError, match="no usable logprobs"):
            model.score_options([conv("q")], OPTIONS)
        assert len(server.requests) == sent  # nothing more was asked


# -- structured elicitation ------------------------------------------------------------------------


def test_schema_goes_out_as_response_format():
    schema = answer_schema(["Positive", "Negative"])
    with FakeOpenAIServer(lambda m, b: '{"answer": "Positive"}') as server:
        model = fast(server)
        assert model.chat([conv("a"), conv("b")], Decoding().with_schema(schema)) == ['{"answer": "Positive"}'] * 2
        model.chat([conv("c")], Decoding())
        bodies = [r["body"] for r in server.requests]
        for body in bodies[:2]:
            assert body["response_format"] == {
                "type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}}
            assert json.dumps(body["response_format"]["json_schema"]["schema"]) == json.dumps(schema)  # key order too
        assert "response_format" not in bodies[2]  # free elicitation sends none


@pytest.mark.parametrize("status", [400, 404, 422, 501, 500, 200])
def test_server_refusing_response_format_gives_one_line(status):
    # 400/404/422/501 to a request with response_format, or any answer whose error names it
    # (a 500 that would otherwise be retried, a 200 carrying an error): one line, no retry
    with FakeOpenAIServer(echo, refuse_response_format=status) as server:
        with pytest.raises(UserInputError) as info:
            fast(server).chat([conv("a")], Decoding().with_schema(text_sce_schema()))
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"{server.url} (model 'fake-model') refused response_format json_schema, "
                                   "which --elicitation schema needs: use a server with structured outputs "
                                   "(vLLM, llama.cpp server, SGLang, OpenAI) or --elicitation free")
        assert len(server.requests) == 1
        assert fast(server).chat([conv("b")], Decoding()) == ["echo: b"]  # free requests still work


def test_a_400_without_response_format_is_not_called_a_refusal():
    with FakeOpenAIServer(echo, flavour="openai") as server:
        server.faults.append("401")
        with pytest.raises(BackendError, match="HTTP 401"):
            fast(server).chat([conv("a")], Decoding())


# -- option scoring: prefill, walk, detection ------------------------------------------------------

SENTIMENT = ["Positive", "Negative"]
REPLIES = [canonical_answer(o) for o in SENTIMENT]
PROBS = {"Positive": 0.7, "Negative": 0.3}


def digresses(messages):
    return "digress" in messages[0]["content"]


def distribution(scores):
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    return [w / sum(weights) for w in weights]


def probe_requests(server):
    return [r for r in server.requests if r["body"]["messages"][: len(PROBE_CONVERSATION)] == PROBE_CONVERSATION]


def scoring_requests(server):
    return [r for r in server.requests if r["body"]["messages"][: len(PROBE_CONVERSATION)] != PROBE_CONVERSATION]


def test_prefill_prefix_is_the_shared_part_cut_at_punctuation():
    assert _prefill_prefix(REPLIES) == '{"answer": "'
    assert _prefill_prefix([canonical_answer("Below $50,000"), canonical_answer("Above $50,000")]) == '{"answer": "'
    assert _prefill_prefix([canonical_answer("Positive"), canonical_answer("Postal")]) == '{"answer": "'
    assert _prefill_prefix([canonical_answer("very good"), canonical_answer("very bad")]) == '{"answer": "'
    assert _prefill_prefix(["x.", "x.y"]) == ""
    assert _prefill_prefix(["only one"]) == ""


@pytest.mark.parametrize("flavour, prefill, fields", [
    ("vllm", "continue_final_message", {"continue_final_message": True, "add_generation_prompt": False}),
    ("sglang", "continue_final_message", {"continue_final_message": True}),
    ("llama-server", "message", {}),
])
def test_prefill_servers_read_the_choice_of_a_digressing_model(flavour, prefill, fields):
    with FakeOpenAIServer(logprobs=True, flavour=flavour, lm=ChoiceLM(PROBS, digresses)) as server:
        model = fast(server)
        assert supports_scoring(model)
        support = model.scoring_support()
        assert (support.method, support.prefill, support.fields) == ("prefill", prefill, fields)
        rows = model.score_options([conv("a digress review"), conv("a plain review")], REPLIES)
        for row in rows:  # the digressing conversation is read as well as the other
            assert distribution(row) == pytest.approx([0.7, 0.3])
            assert row == pytest.approx([math.log(0.7), math.log(0.3)])
        for request in scoring_requests(server):
            body = request["body"]
            assert body["messages"][-1] == {"role": "assistant", "content": '{"answer": "'}
            assert {k: body[k] for k in fields} == fields
            assert not ({"continue_final_message", "add_generation_prompt"} - set(fields)) & set(body)
            assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] <= 4


def test_server_that_opens_a_new_turn_falls_back_to_the_walk():
    # llama-cpp-python's server: a final assistant message starts a new turn. The walk reads the
    # format-following reply; the digressing one is undecided (-inf everywhere), not a guess
    with FakeOpenAIServer(logprobs=True, flavour="llama-cpp-python", lm=ChoiceLM(PROBS, digresses)) as server:
        model = fast(server)
        assert model.scoring_support().method == "walk"
        digressing, plain = model.score_options([conv("a digress review"), conv("a plain review")], REPLIES)
        assert digressing == [-math.inf, -math.inf]
        assert distribution(plain) == pytest.approx([0.7, 0.3])
        for request in scoring_requests(server):
            assert request["body"]["messages"][-1]["role"] == "user"  # no prefill sent
            assert "continue_final_message" not in request["body"]
            # tokens up to where the options part and one more: the shared text's characters + 2
            shared = os.path.commonprefix([canonical_answer(o) for o in PROBS])
            assert request["body"]["max_tokens"] == len(shared) + 2 < max(len(canonical_answer(o)) for o in PROBS)


def test_walk_on_a_prefill_server_when_asked():
    with FakeOpenAIServer(logprobs=True, flavour="llama-server", lm=ChoiceLM(PROBS, digresses)) as server:
        model = fast(server, option_scoring="walk")
        assert model.scoring_support().method == "walk"
        assert model.score_options([conv("a digress review")], REPLIES) == [[-math.inf, -math.inf]]


def test_openai_like_server_never_gets_vllm_fields():
    # OpenAI answers 400 to unknown body fields: detection must not send continue_final_message
    with FakeOpenAIServer(logprobs=True, flavour="openai", lm=ChoiceLM(PROBS, digresses)) as server:
        model = fast(server)
        assert supports_scoring(model) and model.scoring_support().method == "walk"
        _, plain = model.score_options([conv("a digress review"), conv("a plain review")], REPLIES)
        assert distribution(plain) == pytest.approx([0.7, 0.3])
        for request in server.requests:
            assert not {"continue_final_message", "add_generation_prompt", "echo", "prompt_logprobs"} & set(request["body"])
            assert set(request["body"]) <= {"model", "messages", "temperature", "max_tokens", "top_p", "logprobs", "top_logprobs"}


def test_vllm_without_continue_fields_would_open_a_new_turn():
    # the vLLM flavour does not continue a bare final assistant message: the fields are what
    # make the prefill work there (the probe tries them first on a server that says owned_by vllm)
    with FakeOpenAIServer(logprobs=True, flavour="vllm", lm=ChoiceLM(PROBS, digresses)) as server:
        model = fast(server)
        model.scoring_support()
        (probe,) = probe_requests(server)
        assert probe["body"]["continue_final_message"] is True and probe["body"]["add_generation_prompt"] is False


def test_server_refusing_a_final_assistant_message_is_walked():
    # llama-server with a thinking template answers 400 to a prefill: walk the reply instead
    with FakeOpenAIServer(logprobs=True, flavour="llama-server", lm=ChoiceLM(PROBS), refuse_prefill=True) as server:
        model = fast(server)
        assert model.scoring_support().method == "walk"
        assert distribution(model.score_options([conv("a plain review")], REPLIES)[0]) == pytest.approx([0.7, 0.3])


def test_detection_happens_once_per_model_even_from_many_threads():
    from concurrent.futures import ThreadPoolExecutor

    with FakeOpenAIServer(logprobs=True, flavour="vllm", lm=ChoiceLM(PROBS, digresses)) as server:
        model = fast(server, max_concurrency=4)
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda i: model.score_options([conv(f"review {i}")], REPLIES) if i % 2 else model.can_score(), range(12)))
        model.score_options([conv("again")], REPLIES)
        assert len(probe_requests(server)) == 1 and server.gets == 1
        fresh = fast(server)  # another model object probes for itself
        fresh.can_score()
        assert len(probe_requests(server)) == 2 and server.gets == 2


def test_probe_failing_for_want_of_the_server_is_not_remembered_as_no_scoring():
    # a server that is down (HTTP 503 to the probe): scoring is not ruled out (answers may come
    # from the cache), and a scoring call reports the server's failure at once, asking nothing more
    with FakeOpenAIServer(logprobs=True, flavour="llama-server", lm=ChoiceLM(PROBS)) as server:
        model = fast(server, max_retries=0)
        server.faults.append("503")
        assert model.can_score()
        sent = len(server.requests)
        with pytest.raises(BackendError, match="failed after 1 attempts; last: HTTP 503"):
            model.score_options([conv("a plain review")], REPLIES)
        assert len(server.requests) == sent


def test_probe_form_the_server_fails_is_skipped():
    # HTTP 500 to the prefill form (retries exhausted): that form gives nothing, the walk is used
    with FakeOpenAIServer(logprobs=True, flavour="llama-server", lm=ChoiceLM(PROBS)) as server:
        model = fast(server, max_retries=0)
        server.faults.append("500")
        assert model.scoring_support().method == "walk"


def logprobs(entries):
    """The validated tokens of a response whose logprobs content is ``entries``."""
    return _token_logprobs({"choices": [{"message": {"content": ""}, "logprobs": {"content": entries}}]})


def test_walk_reads_nothing_from_a_digression():
    # the greedy reply leaves the answer format before the options part: a top token that
    # only restarts the format ('{"an') is common to every option and decides nothing
    tokens = [{"token": "The ", "logprob": math.log(0.6),
               "top_logprobs": [{"token": "The ", "logprob": math.log(0.6)}, {"token": '{"an', "logprob": math.log(0.3)}]}]
    assert _option_scores(logprobs(tokens), REPLIES) == [-math.inf, -math.inf]
    # a reply cut before the options part decides nothing either (it used to be a tie)
    shared = [{"token": t, "logprob": math.log(0.9), "top_logprobs": []} for t in ('{"an', "swer", '": "')]
    assert _option_scores(logprobs(shared), REPLIES) == [-math.inf, -math.inf]
    # a token spanning the parting point tells the options apart
    spanning = shared[:2] + [{"token": '": "P', "logprob": math.log(0.7),
                              "top_logprobs": [{"token": '": "N', "logprob": math.log(0.2)}, {"token": '":', "logprob": -1.0}]}]
    assert _option_scores(logprobs(spanning), REPLIES) == pytest.approx([2 * math.log(0.9) + math.log(0.7), 2 * math.log(0.9) + math.log(0.2)])


def test_probe_reads_a_closing_brace_as_a_continued_prefill():
    # the first generated position after {"answer": "blue" as two real servers answered it
    # (SmolLM2-135M): llama-server continues the prefill, llama-cpp-python opens a new turn
    def position(token, top):
        return logprobs([{"token": token, "logprob": top[0][1], "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}])

    llama_server = position("}", [("}", -0.35), (" or", -2.84), (" }", -3.28), (',"', -3.6), (" when", -3.63)])
    llama_cpp_python = position('{"', [('{"', -0.98), ("{", -2.12), ("```", -2.38), ('"', -2.86), ("This", -3.33)])
    assert _continues(llama_server) and not _continues(llama_cpp_python)
    assert not _continues(position("The", [("The", -0.5), ("Blue", -1.0)]))  # prose: no brace at all


def test_requests_sharing_a_prefix_are_sent_together_and_replies_keep_the_callers_order():
    """A server's prefix cache (llama.cpp cache_prompt, vLLM prefix caching) reuses the prompt
    of the previous request when the next one shares it: a batch goes out sorted by its text."""
    with FakeOpenAIServer(echo) as server:
        model = fast(server, max_concurrency=1)  # one at a time: the server sees the sending order
        texts = ["record B: age 30", "record A: age 40", "record B: age 20", "record A: age 10"]
        assert model.chat([conv(t) for t in texts], Decoding()) == [f"echo: {t}" for t in texts]
        sent = [r["body"]["messages"][-1]["content"] for r in server.requests]
        assert sent == sorted(texts)
