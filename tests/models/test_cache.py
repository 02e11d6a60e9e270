"""The SQLite response cache and the CachedModel wrapper: real files, real processes."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import warnings
from pathlib import Path

import pytest

from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.base import Decoding, supports_reply_scoring, supports_scoring
from sce_checks.models.cache import CacheCorruptionWarning, CachedModel, ResponseCache, cache_key
from sce_checks.paths import cache_root

GREEDY = Decoding()
SAMPLED = Decoding(temperature=0.7)


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


class EchoModel:
    """Replies with the upper-cased last message; records every batch it receives."""

    def __init__(self, name: str = "echo") -> None:
        self.name = name
        self.batches: list[list[str]] = []
        self.score_batches: list[list[str]] = []

    def identity(self):
        return {"backend": "test", "model": self.name}

    def chat(self, conversations, decoding):
        texts = [c[-1]["content"] for c in conversations]
        self.batches.append(texts)
        return [t.upper() for t in texts]

    def score_options(self, conversations, options):
        texts = [c[-1]["content"] for c in conversations]
        self.score_batches.append(texts)
        # the first option is impossible: exercises -inf through JSON and SQLite
        return [[-math.inf] + [-float(len(t) + i) for i in range(1, len(options))] for t in texts]


class ChatOnly:
    def chat(self, conversations, decoding):
        return ["x" for _ in conversations]


@pytest.fixture
def store(tmp_path):
    cache = ResponseCache(tmp_path / "responses.sqlite")
    yield cache
    cache.close()


def test_second_identical_run_makes_zero_inner_calls(tmp_path):
    batch = [conv("a"), conv("b"), conv("c")]
    first_inner = EchoModel()
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        first = CachedModel(first_inner, cache).chat(batch, GREEDY)
    assert first == ["A", "B", "C"] and len(first_inner.batches) == 1

    # a new process would open the file afresh: do the same
    second_inner = EchoModel()
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        model = CachedModel(second_inner, cache)
        assert model.chat(batch, GREEDY) == first
    assert second_inner.batches == []
    assert model.stats.cache_hits == 3 and model.stats.chat_calls == 0


def test_only_misses_are_sent_in_one_batch_and_order_is_kept(store):
    inner = EchoModel()
    model = CachedModel(inner, store)
    model.chat([conv("a"), conv("b")], GREEDY)
    assert model.chat([conv("c"), conv("a"), conv("d"), conv("b")], GREEDY) == ["C", "A", "D", "B"]
    assert inner.batches == [["a", "b"], ["c", "d"]]
    assert model.stats.chat_calls == 2 and model.stats.chat_conversations == 4 and model.stats.cache_hits == 2


def test_duplicates_in_one_batch_are_sent_once(store):
    inner = EchoModel()
    model = CachedModel(inner, store)
    assert model.chat([conv("a"), conv("b"), conv("a"), conv("a")], GREEDY) == ["A", "B", "A", "A"]
    assert inner.batches == [["a", "b"]]
    assert len(store) == 2


def test_sampling_requests_bypass_the_cache(store):
    inner = EchoModel()
    model = CachedModel(inner, store)
    model.chat([conv("a"), conv("a")], SAMPLED)
    model.chat([conv("a")], SAMPLED)
    assert inner.batches == [["a", "a"], ["a"]]  # sent every time, duplicates included
    assert len(store) == 0 and model.stats.cache_hits == 0


def test_key_covers_identity_decoding_and_whole_conversation(store):
    inner = EchoModel()
    CachedModel(inner, store).chat([conv("a")], GREEDY)
    CachedModel(inner, store).chat([conv("a")], Decoding(max_new_tokens=8))  # other decoding
    CachedModel(EchoModel("other"), store).chat([conv("a")], GREEDY)  # other backend identity
    longer = [{"role": "system", "content": "be brief"}, *conv("a")]
    CachedModel(inner, store).chat([longer], GREEDY)  # same last message, other conversation
    assert len(store) == 4
    assert cache_key({"m": 1}, "chat", conv("a"), GREEDY.as_dict()) != cache_key(
        {"m": 1}, "score", conv("a"), GREEDY.as_dict()
    )
    # canonical: key order inside the identity does not matter
    assert cache_key({"a": 1, "b": 2}, "chat", conv("a"), {}) == cache_key({"b": 2, "a": 1}, "chat", conv("a"), {})


def test_scores_with_minus_infinity_round_trip(tmp_path):
    path = tmp_path / "r.sqlite"
    options = ['{"answer": "no"}', '{"answer": "yes"}']
    with ResponseCache(path) as cache:
        first = CachedModel(EchoModel(), cache).score_options([conv("ab")], options)
    assert first == [[-math.inf, -3.0]]
    inner = EchoModel()
    with ResponseCache(path) as cache:
        again = CachedModel(inner, cache).score_options([conv("ab")], options)
        assert cache.get_many(["nope"]) == {}
        cache.put_many([("k", [float("-inf"), 0.5])])
        assert cache.get_many(["k"]) == {"k": [-math.inf, 0.5]}
    assert again == first and inner.score_batches == []


def test_scores_are_keyed_by_the_backends_scoring_version(store):
    """Scores computed before a backend changed how it scores are not reused; unversioned
    backends keep the keys they always had."""
    options = ['{"answer": "no"}', '{"answer": "yes"}']
    CachedModel(EchoModel(), store).score_options([conv("ab")], options)  # unversioned
    versioned = EchoModel()
    versioned.scoring_version = 2
    CachedModel(versioned, store).score_options([conv("ab")], options)
    assert versioned.score_batches == [["ab"]]  # asked again
    CachedModel(versioned, store).score_options([conv("ab")], options)
    assert versioned.score_batches == [["ab"]]  # then cached under its version
    plain = EchoModel()
    CachedModel(plain, store).score_options([conv("ab")], options)
    assert plain.score_batches == []
    identity = {"backend": "test", "model": "echo"}
    assert cache_key(identity, "score", conv("ab"), options) in store.get_many([cache_key(identity, "score", conv("ab"), options)])


def test_scoring_only_when_the_inner_model_scores(store):
    assert supports_scoring(CachedModel(EchoModel(), store))
    chat_only = CachedModel(ChatOnly(), store)
    assert chat_only.can_score() is False and not supports_scoring(chat_only)
    with pytest.raises(UserInputError, match="score_options"):
        chat_only.score_options([conv("a")], ["x", "y"])
    assert chat_only.identity() == {"backend": "ChatOnly"}


def test_score_options_keys_are_unchanged(store):
    """Option scores keep the keys users' caches hold: kind "score", params = the options list."""
    options = ['{"answer": "no"}', '{"answer": "yes"}']
    CachedModel(EchoModel(), store).score_options([conv("ab"), conv("cde")], options)
    identity = {"backend": "test", "model": "echo"}
    keys = [cache_key(identity, "score", conv(t), options) for t in ("ab", "cde")]
    assert store.get_many(keys) == {keys[0]: [-math.inf, -3.0], keys[1]: [-math.inf, -4.0]}
    assert len(store) == 2


class ReplyScorer(EchoModel):
    """Scores reply r of a conversation c as -(len(c) + len(r)), minus 0.5 for a whole reply."""

    def __init__(self, name: str = "echo") -> None:
        super().__init__(name)
        self.reply_batches: list[tuple[list[str], list[list[str]], bool]] = []

    def score_replies(self, conversations, replies, complete=True):
        texts = [c[-1]["content"] for c in conversations]
        self.reply_batches.append((texts, [list(r) for r in replies], complete))
        return [[-float(len(t) + len(r)) - (0.5 if complete else 0.0) for r in row] for t, row in zip(texts, replies)]


def test_reply_scores_are_cached_per_conversation_and_row(tmp_path):
    path = tmp_path / "r.sqlite"
    batch = [conv("a"), conv("bb"), conv("a")]
    rows = [["x", "yy"], ["because"], ["x", "yy"]]  # rows differ; the third repeats the first
    first_inner = ReplyScorer()
    with ResponseCache(path) as cache:
        first = CachedModel(first_inner, cache).score_replies(batch, rows, complete=False)
    assert first == [[-2.0, -3.0], [-9.0], [-2.0, -3.0]]
    assert first_inner.reply_batches == [(["a", "bb"], [["x", "yy"], ["because"]], False)]  # duplicate sent once
    again_inner = ReplyScorer()
    with ResponseCache(path) as cache:
        model = CachedModel(again_inner, cache)
        assert model.score_replies(batch, rows, complete=False) == first
        assert again_inner.reply_batches == [] and model.stats.score_calls == 0 and model.stats.cache_hits == 3
        # complete is part of the key, and so is the row of replies
        assert model.score_replies([conv("a")], [["x", "yy"]], complete=True) == [[-2.5, -3.5]]
        assert model.score_replies([conv("a")], [["x"]], complete=False) == [[-2.0]]
        assert [b[2] for b in again_inner.reply_batches] == [True, False]
        identity = {"backend": "test", "model": "echo"}
        key = cache_key(identity, "score_replies", conv("bb"), {"replies": ["because"], "complete": False})
        assert cache.get_many([key]) == {key: [-9.0]}
        # option scores and reply scores never share entries
        assert cache.get_many([cache_key(identity, "score", conv("a"), ["x", "yy"])]) == {}


def test_reply_scores_are_keyed_by_the_backends_scoring_version(store):
    plain, versioned = ReplyScorer(), ReplyScorer()
    versioned.scoring_version = 3
    CachedModel(plain, store).score_replies([conv("a")], [["x"]])
    CachedModel(versioned, store).score_replies([conv("a")], [["x"]])
    assert len(versioned.reply_batches) == 1
    identity = {"backend": "test", "model": "echo"}
    key = cache_key(identity, "score_replies", conv("a"), {"replies": ["x"], "complete": True, "scoring_version": 3})
    assert key in store.get_many([key])


def test_reply_scoring_only_when_the_inner_model_scores_replies(store):
    assert supports_reply_scoring(CachedModel(ReplyScorer(), store))
    assert supports_reply_scoring(CachedModel(CachedModel(ReplyScorer(), None), store))  # nested wrappers
    for inner in (EchoModel(), ChatOnly()):
        model = CachedModel(inner, store)
        assert model.can_score_replies() is False and not supports_reply_scoring(model)
        with pytest.raises(UserInputError, match="score_replies"):
            model.score_replies([conv("a")], [["x"]])
    assert supports_scoring(CachedModel(EchoModel(), store))  # option scoring is probed on its own


def test_malformed_reply_scores_are_an_error_not_cached(store):
    class Short(ReplyScorer):
        def score_replies(self, conversations, replies, complete=True):
            return [[-1.0] for _ in conversations]

    with pytest.raises(BackendError, match="expected 2 numbers"):
        CachedModel(Short(), store).score_replies([conv("a")], [["x", "y"]])
    assert len(store) == 0
    with pytest.raises(UserInputError, match="LIST of replies"):
        CachedModel(ReplyScorer(), store).score_replies([conv("a")], ["x"])
    with pytest.raises(UserInputError, match="1 rows of replies for 2 conversations"):
        CachedModel(ReplyScorer(), store).score_replies([conv("a"), conv("b")], [["x"]])


def test_no_cache_passes_through(tmp_path):
    inner = EchoModel()
    model = CachedModel(inner, None)
    model.chat([conv("a")], GREEDY)
    model.chat([conv("a")], GREEDY)
    assert inner.batches == [["a"], ["a"]] and model.stats.chat_calls == 2
    assert model.identity() == inner.identity()
    assert model.score_options([conv("a")], ["x", "y"]) == [[-math.inf, -2.0]]


def test_replies_are_stored_per_batch_so_an_interrupted_run_resumes(store):
    class Flaky(EchoModel):
        def chat(self, conversations, decoding):
            if any(c[-1]["content"] == "boom" for c in conversations):
                raise BackendError("server went away")
            return super().chat(conversations, decoding)

    inner = Flaky()
    model = CachedModel(inner, store)
    model.chat([conv("a"), conv("b")], GREEDY)
    with pytest.raises(BackendError):
        model.chat([conv("boom")], GREEDY)
    resumed = EchoModel()
    CachedModel(resumed, store).chat([conv("a"), conv("b"), conv("c")], GREEDY)
    assert resumed.batches == [["c"]]


def test_malformed_backend_output_is_an_error_not_cached(store):
    class Short(EchoModel):
        def chat(self, conversations, decoding):
            return ["only one"]

    with pytest.raises(BackendError, match="1 replies for 2"):
        CachedModel(Short(), store).chat([conv("a"), conv("b")], GREEDY)
    assert len(store) == 0


def test_clear_empties(store):
    store.put_many({"a": "1", "b": "2"})
    assert len(store) == 2
    store.clear()
    assert len(store) == 0 and store.get_many(["a", "b"]) == {}


def test_garbage_file_is_set_aside_with_one_warning(tmp_path):
    path = tmp_path / "responses.sqlite"
    garbage = b"this is not sqlite at all\n" * 100
    path.write_bytes(garbage)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = ResponseCache(path)
    relevant = [w for w in caught if issubclass(w.category, CacheCorruptionWarning)]
    assert len(relevant) == 1
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("responses.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    message = str(relevant[0].message)
    assert str(path) in message and str(aside[0]) in message
    # the fresh cache works
    inner = EchoModel()
    CachedModel(inner, cache).chat([conv("a")], GREEDY)
    CachedModel(inner, cache).chat([conv("a")], GREEDY)
    assert inner.batches == [["a"]] and len(cache) == 1
    cache.close()


def test_corruption_found_during_use_recovers(tmp_path):
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    cache.put_many({"a": "A"})
    # the file is clobbered under an open cache: its next query meets a non-database
    cache._conn.close()
    for companion in (tmp_path / "responses.sqlite-wal", tmp_path / "responses.sqlite-shm"):
        companion.unlink(missing_ok=True)
    path.write_bytes(b"\x00garbage" * 512)
    cache._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    with pytest.warns(CacheCorruptionWarning, match="corrupt-"):
        assert cache.get_many(["a"]) == {}
    cache.put_many({"b": "B"})
    assert cache.get_many(["a", "b"]) == {"b": "B"}
    cache.close()


def _writer(path: str, worker: int, n: int, start) -> None:
    start.wait()
    cache = ResponseCache(Path(path))
    for batch in range(0, n, 10):
        cache.put_many({f"{worker}-{i}": f"reply {worker} {i}" for i in range(batch, batch + 10)})
        cache.get_many([f"{worker}-{batch}"])
    cache.close()


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite"
    # no file yet: the workers also race on creating it and switching it to WAL
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    workers, n = 3, 300
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(path), w, n, start)) for w in range(workers)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * workers
    with ResponseCache(path) as cache:
        assert len(cache) == workers * n
        got = cache.get_many(f"{w}-{i}" for w in range(workers) for i in range(n))
    assert got == {f"{w}-{i}": f"reply {w} {i}" for w in range(workers) for i in range(n)}


def test_default_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "deep" / "cache"))
    assert cache_root() == tmp_path / "deep" / "cache" and cache_root().is_dir()
    with ResponseCache() as cache:
        assert cache.path == tmp_path / "deep" / "cache" / "responses.sqlite"
        cache.put_many({"k": "v"})
    assert (tmp_path / "deep" / "cache" / "responses.sqlite").is_file()
