"""Sampling and tempered scoring through the openai and python backends and the model wrappers
(CachedModel, LazyModel): each reply's seed is its own (`conversation_seed`), seeded sampled
replies are cached under keys holding temperature, top-p, seed and sample, an interrupted sampled
run resumes exactly, and scores at a temperature other than 1 pass through and are keyed apart.
No torch needed: the models here are Python and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.base import Decoding, conversation_seed, supports_tempered_scoring
from sce_checks.models.cache import CachedModel, ResponseCache, cache_key
from sce_checks.models.lazy import LazyModel
from sce_checks.models.openai import OpenAIChatModel, request_seed
from sce_checks.models.python import FunctionModel, PythonObjectModel
from tests.openai_server import FakeOpenAIServer, sampled_reply

SAMPLED = Decoding(temperature=0.8, top_p=0.9, seed=11, max_new_tokens=16)
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


CONVERSATIONS = [conv(f"example {i}") for i in range(4)]


@pytest.fixture(autouse=True)
def _slots_in_tmp(tmp_path, monkeypatch):
    """The openai backend's server slots (sce_checks/models/slots.py) go to a temporary dir."""
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "slots"))


# -- the python backend: what a model function and a batched object are given ---------------------

def drawing(messages, decoding):
    """A model function that samples as a user's would: words drawn with its decoding's seed."""
    if decoding.temperature == 0:
        return messages[-1]["content"]
    draw = random.Random(decoding.seed)
    return " ".join(draw.choice(WORDS) for _ in range(6))


class Killable:
    """`drawing` that counts its calls and raises on the call numbered ``die_at`` (a killed run)."""

    def __init__(self, die_at: int | None = None) -> None:
        self.calls = 0
        self.die_at = die_at
        self.seen: list[Decoding] = []

    def __call__(self, messages, decoding):
        self.calls += 1
        self.seen.append(decoding)
        if self.calls == self.die_at:
            raise RuntimeError("killed")
        return drawing(messages, decoding)


def function_model(fn) -> FunctionModel:
    return FunctionModel(fn, "python:test:drawing", {"backend": "python", "target": "test:drawing"})


def test_a_model_function_gets_the_run_settings_and_its_conversation_s_own_seed():
    fn = Killable()
    function_model(fn).chat(CONVERSATIONS, replace(SAMPLED, sample=2))
    for decoding, conversation in zip(fn.seen, CONVERSATIONS):
        assert decoding == replace(SAMPLED, sample=2, seed=conversation_seed(replace(SAMPLED, sample=2), conversation))
    assert len({d.seed for d in fn.seen}) == len(CONVERSATIONS)
    fn.seen.clear()
    function_model(fn).chat(CONVERSATIONS[:1], Decoding(temperature=0.8))  # no run seed: none to derive
    assert fn.seen == [Decoding(temperature=0.8)]


def test_a_model_function_draws_the_same_reply_in_any_batch():
    model = function_model(drawing)
    batched = model.chat(CONVERSATIONS, SAMPLED)
    assert batched == [model.chat([c], SAMPLED)[0] for c in CONVERSATIONS]
    assert batched == model.chat(CONVERSATIONS[::-1], SAMPLED)[::-1]
    assert len(set(batched)) == len(batched)
    assert model.chat(CONVERSATIONS, replace(SAMPLED, seed=12)) != batched
    assert model.chat(CONVERSATIONS, replace(SAMPLED, sample=1)) != batched


class BatchedSampler:
    """A batched python model that seeds each conversation with `conversation_seed`, as
    docs/writing-backends.md says, and scores at a temperature."""

    tempered_scoring = True

    def __init__(self) -> None:
        self.decodings: list[Decoding] = []
        self.score_calls: list[float] = []

    def chat(self, conversations, decoding):
        self.decodings.append(decoding)
        out = []
        for c in conversations:
            draw = random.Random(conversation_seed(decoding, c) if decoding.seed is not None else None)
            out.append(" ".join(draw.choice(WORDS) for _ in range(6)))
        return out

    def score_options(self, conversations, options, temperature=1.0):
        self.score_calls.append(temperature)
        return [[-float(i) / temperature for i in range(len(options))] for _ in conversations]


def test_a_batched_object_gets_the_run_decoding_as_it_is():
    inner = BatchedSampler()
    model = PythonObjectModel(inner, "python:test:BatchedSampler", {"backend": "python"})
    replies = model.chat(CONVERSATIONS, SAMPLED)
    assert inner.decodings == [SAMPLED]
    assert replies == model.chat(CONVERSATIONS[::-1], SAMPLED)[::-1]
    assert replies == function_model(drawing).chat(CONVERSATIONS, SAMPLED)  # the two forms draw alike


# -- tempered scoring through the wrappers ---------------------------------------------------------

class PlainScorer:
    """An older backend: scoring without ``temperature=``."""

    def chat(self, conversations, decoding):
        return ["x" for _ in conversations]

    def score_options(self, conversations, options):
        return [[-1.0] * len(options) for _ in conversations]

    def score_replies(self, conversations, replies, complete=True):
        return [[-1.0] * len(row) for row in replies]


def test_the_wrappers_pass_the_temperature_and_key_tempered_scores_apart(tmp_path):
    inner = BatchedSampler()
    wrapped = PythonObjectModel(inner, "python:test:BatchedSampler", {"backend": "python", "target": "t"})
    with ResponseCache(tmp_path / "c.sqlite") as store:
        model = CachedModel(wrapped, store)
        assert supports_tempered_scoring(model) and supports_tempered_scoring(wrapped)
        options = ["no", "yes", "maybe"]
        plain = model.score_options(CONVERSATIONS[:2], options)
        cold = model.score_options(CONVERSATIONS[:2], options, temperature=0.5)
        assert plain == [[0.0, -1.0, -2.0]] * 2 and cold == [[0.0, -2.0, -4.0]] * 2
        assert model.score_options(CONVERSATIONS[:2], options, temperature=0.5) == cold  # from the cache
        assert inner.score_calls == [1.0, 0.5] and len(store) == 4
        identity = model.identity()
        old = [cache_key(identity, "score", c, options) for c in CONVERSATIONS[:2]]  # the key of earlier versions
        tempered = [cache_key(identity, "score", c, {"options": options, "temperature": 0.5}) for c in CONVERSATIONS[:2]]
        assert set(store.get_many(old + tempered)) == set(old + tempered)


def test_a_backend_without_tempered_scoring_is_asked_as_before_and_refused_at_a_temperature(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as store:
        model = CachedModel(PlainScorer(), store)
        assert not supports_tempered_scoring(model)
        assert model.score_options(CONVERSATIONS[:1], ["a", "b"], temperature=1.0) == [[-1.0, -1.0]]
        assert model.score_replies(CONVERSATIONS[:1], [["a"]]) == [[-1.0]]
        for call in (lambda: model.score_options(CONVERSATIONS[:1], ["a", "b"], temperature=0.5),
                     lambda: model.score_replies(CONVERSATIONS[:1], [["a"]], temperature=2.0)):
            with pytest.raises(UserInputError, match="cannot score at a temperature"):
                call()
        with pytest.raises(UserInputError, match="scoring temperature must be a finite number above 0"):
            CachedModel(BatchedSampler(), store).score_options(CONVERSATIONS[:1], ["a"], temperature=0)


class TemperedReplyScorer(PlainScorer):
    tempered_scoring = True

    def __init__(self) -> None:
        self.asked: list[tuple[str, float]] = []

    def identity(self):
        return {"backend": "lazy-test"}

    def score_options(self, conversations, options, temperature=1.0):
        self.asked.append(("options", temperature))
        return [[-temperature] * len(options) for _ in conversations]

    def score_replies(self, conversations, replies, complete=True, temperature=1.0):
        self.asked.append(("replies", temperature))
        return [[-temperature] * len(row) for row in replies]


def test_a_lazy_model_answers_from_its_backend_class_and_passes_the_temperature(tmp_path):
    built: list[TemperedReplyScorer] = []

    def load():
        built.append(TemperedReplyScorer())
        return built[-1]

    lazy = LazyModel({"backend": "lazy-test"}, load, TemperedReplyScorer)
    assert supports_tempered_scoring(lazy) and not built  # nothing loaded to answer that
    assert not supports_tempered_scoring(LazyModel({"backend": "p"}, PlainScorer, PlainScorer))
    with ResponseCache(tmp_path / "c.sqlite") as store:
        model = CachedModel(lazy, store)
        assert model.score_replies(CONVERSATIONS[:1], [["a", "b"]], temperature=0.25) == [[-0.25, -0.25]]
        assert model.score_replies(CONVERSATIONS[:1], [["a", "b"]]) == [[-1.0, -1.0]]
        assert model.score_options(CONVERSATIONS[:1], ["a"], temperature=3.0) == [[-3.0]]
    assert built[0].asked == [("replies", 0.25), ("replies", 1.0), ("options", 3.0)]


# -- the cache: sampled replies keyed by their sampling, resumed exactly ----------------------------

def test_a_sampled_reply_s_key_holds_temperature_top_p_seed_and_sample():
    keys = {cache_key({"backend": "x"}, "chat", CONVERSATIONS[0], d.as_dict())
            for d in (SAMPLED, replace(SAMPLED, temperature=0.9), replace(SAMPLED, top_p=0.8),
                      replace(SAMPLED, seed=12), replace(SAMPLED, sample=1))}
    assert len(keys) == 5
    assert SAMPLED.deterministic and not Decoding(temperature=0.8).deterministic
    assert "sample" not in SAMPLED.as_dict() and replace(SAMPLED, sample=1).as_dict()["sample"] == 1


def run_samples(model: CachedModel, samples: int) -> list[list[str]]:
    """A sampled audit's requests: one batch per sample index, as the checks send them."""
    return [model.chat(CONVERSATIONS, replace(SAMPLED, sample=k)) for k in range(samples)]


def test_an_interrupted_sampled_run_resumes_exactly_making_only_the_missing_calls(tmp_path):
    with ResponseCache(tmp_path / "whole.sqlite") as store:
        whole = run_samples(CachedModel(function_model(drawing), store), 3)
    assert len({reply for row in whole for reply in row}) == 12  # every sample its own draw
    killed = Killable(die_at=7)  # the 3rd call of sample 1's batch: sample 0 is stored, sample 1 is not
    with ResponseCache(tmp_path / "resumed.sqlite") as store:
        with pytest.raises(BackendError, match="killed"):
            run_samples(CachedModel(function_model(killed), store), 3)
        assert len(store) == 4
    rerun = Killable()
    with ResponseCache(tmp_path / "resumed.sqlite") as store:
        model = CachedModel(function_model(rerun), store)
        assert run_samples(model, 3) == whole
        assert rerun.calls == 8 and model.stats.cache_hits == 4
        again = Killable()
        assert run_samples(CachedModel(function_model(again), store), 3) == whole and again.calls == 0


def test_unseeded_sampled_requests_are_never_cached(tmp_path):
    fn = Killable()
    with ResponseCache(tmp_path / "c.sqlite") as store:
        model = CachedModel(function_model(fn), store)
        model.chat(CONVERSATIONS, Decoding(temperature=0.8))
        model.chat(CONVERSATIONS, Decoding(temperature=0.8))
        assert fn.calls == 8 and len(store) == 0


# -- the openai backend: per-request seeds, honoured by the test server -----------------------------

def openai_model(server) -> OpenAIChatModel:
    return OpenAIChatModel("fake-model", server.url, timeout_s=2, max_retries=1, backoff_base_s=0.01)


def test_each_request_carries_temperature_top_p_and_its_own_seed_and_no_n():
    with FakeOpenAIServer(sampled_reply, flavour="openai") as server:  # unknown fields would be refused
        openai_model(server).chat(CONVERSATIONS, replace(SAMPLED, sample=1))
        bodies = sorted((r["body"] for r in server.requests), key=lambda b: b["messages"][0]["content"])
    for body, conversation in zip(bodies, CONVERSATIONS):
        assert body["temperature"] == 0.8 and body["top_p"] == 0.9 and "n" not in body
        assert body["seed"] == request_seed(replace(SAMPLED, sample=1), conversation)
        assert body["seed"] == conversation_seed(replace(SAMPLED, sample=1), conversation) % 2**31
    assert len({b["seed"] for b in bodies}) == len(CONVERSATIONS)


def test_a_sampled_openai_audit_reruns_with_no_call_and_another_seed_draws_anew(tmp_path):
    with FakeOpenAIServer(sampled_reply) as server, ResponseCache(tmp_path / "c.sqlite") as store:
        first = run_samples(CachedModel(openai_model(server), store), 2)
        assert len(server.requests) == 8 and len({r for row in first for r in row}) == 8
        uncached = run_samples(CachedModel(openai_model(server), None), 2)
        assert uncached == first  # the server honours the seed: the same draws without the cache
        server.requests.clear()
        assert run_samples(CachedModel(openai_model(server), store), 2) == first
        assert server.requests == []  # a rerun: 0 calls
        other = CachedModel(openai_model(server), store).chat(CONVERSATIONS, replace(SAMPLED, seed=12))
        assert all(a != b for a, b in zip(other, first[0])) and len(server.requests) == 4


def test_the_test_server_samples_afresh_without_a_seed():
    with FakeOpenAIServer(sampled_reply) as server:
        model = openai_model(server)
        draws = {model.chat(CONVERSATIONS[:1], Decoding(temperature=1.0))[0] for _ in range(5)}
        greedy = {model.chat(CONVERSATIONS[:1], Decoding())[0] for _ in range(3)}
    assert len(draws) > 1 and len(greedy) == 1
    assert "seed" not in server.requests[0]["body"]
