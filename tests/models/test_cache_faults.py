"""An unusable response cache never gives a traceback or a different figure (issue 13): a wrong
path is one `UserInputError`; a cache that cannot be written or read is one warning and a run
with fewer (or no) cache writes; a row that is not what its kind stores is a counted miss.

The tests run as root here, and root ignores permission bits, so each fault is made the way
SQLite itself meets it: a real read-only connection (``mode=ro``, what SQLite opens when a file
cannot be written), a real lock held by another connection, a real full database
(``max_page_count``), or the exact error SQLite raises (read-only folder, disk I/O error) where
only the operating system can cause it. The permission-bit tests run for real under any other
user (CI)."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

from sce_checks.cli import main
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.cache import (
    CacheCorruptionWarning,
    CacheRowWarning,
    CacheUnavailableWarning,
    CacheWarning,
    CachedModel,
    ResponseCache,
    cache_key,
)
from sce_checks.parsing import OverlongReply, parse_answer
from tests.models.test_cache import GREEDY, EchoModel, ReplyScorer, conv

REAL_CONNECT = sqlite3.connect
IDENTITY = {"backend": "test", "model": "echo"}
OPTIONS = ['{"answer": "no"}', '{"answer": "yes"}']
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@contextmanager
def recorded():
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        yield got


def messages(got, category=CacheWarning) -> list[str]:
    return [str(w.message) for w in got if issubclass(w.category, category)]


def sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    """The error SQLite raises, with its extended result code (as Python 3.11+ sets it)."""
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code
    return exc


def filled(path: Path, texts=("a", "b", "c")) -> list[str]:
    """A cache at ``path`` holding the echo model's replies to ``texts``; returns them."""
    with ResponseCache(path) as cache:
        return CachedModel(EchoModel(), cache).chat([conv(t) for t in texts], GREEDY)


def fault_on_connect(monkeypatch, path: Path, fault) -> None:
    """Every connection SQLite opens on ``path`` goes through ``fault(target, kwargs)``, which
    returns a connection or raises what SQLite would."""

    def connect(target, *args, **kwargs):
        if Path(str(target).split("?")[0].removeprefix("file://")) == path.absolute():
            return fault(str(target), kwargs)
        return REAL_CONNECT(target, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)


def read_only_file(target: str, kwargs):
    """What SQLite opens for a file it may not write: a read-only connection."""
    if target.startswith("file:"):
        return REAL_CONNECT(target, **kwargs)
    kwargs = {**kwargs, "uri": True}
    return REAL_CONNECT(Path(target).absolute().as_uri() + "?mode=ro", **kwargs)


def read_only_folder(with_code: bool):
    """A WAL database in a folder that cannot be written (as seen for real as another user):
    where its WAL index (-shm) is there, SQLite opens it read-only; where it is not, SQLite
    cannot make it, and only an ``immutable`` read opens the file (SQLITE_READONLY_DIRECTORY)."""

    def fault(target: str, kwargs):
        if "immutable=1" in target:
            return REAL_CONNECT(target, **kwargs)
        file = Path(target.split("?")[0].removeprefix("file://"))
        if file.with_name(file.name + "-shm").exists():
            return read_only_file(target, kwargs)
        message = "attempt to write a readonly database"
        raise sqlite_error(message, 1544) if with_code else sqlite3.OperationalError(message)

    return fault


# -- the path -------------------------------------------------------------------------------------


def test_a_cache_path_that_is_a_directory_is_one_user_error(tmp_path):
    (tmp_path / "responses.sqlite").mkdir()
    with pytest.raises(UserInputError, match=r"responses\.sqlite is a directory, not a file.*--no-cache"):
        ResponseCache(tmp_path / "responses.sqlite")


def test_a_cache_directory_under_a_file_is_one_user_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    for path in (tmp_path / "afile" / "responses.sqlite", tmp_path / "afile" / "deeper" / "responses.sqlite"):
        with pytest.raises(UserInputError, match=f"{tmp_path / 'afile'} is a file, not a directory"):
            ResponseCache(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_directory_that_cannot_be_made_means_a_run_without_cache(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with recorded() as got:
        cache = ResponseCache(tmp_path / "locked" / "responses.sqlite")
        inner = EchoModel()
        model = CachedModel(inner, cache)
        assert model.chat([conv("a")], GREEDY) == ["A"] and model.chat([conv("a")], GREEDY) == ["A"]
    assert inner.batches == [["a"], ["a"]]  # every answer computed
    assert not cache.readable and not cache.writable and len(cache) == 0
    [warning] = messages(got, CacheUnavailableWarning)
    assert "cannot be created: Permission denied" in warning and str(cache.path) in warning


def test_an_unwritable_directory_without_a_file_means_a_run_without_cache(tmp_path, monkeypatch):
    path = tmp_path / "responses.sqlite"

    def cannot_open(target, kwargs):
        raise sqlite_error("unable to open database file", 14)

    fault_on_connect(monkeypatch, path, cannot_open)
    with recorded() as got:
        cache = ResponseCache(path)
        inner = EchoModel()
        assert CachedModel(inner, cache).chat([conv("a"), conv("b")], GREEDY) == ["A", "B"]
    assert inner.batches == [["a", "b"]] and not cache.readable
    [warning] = messages(got)
    assert "unable to open database file" in warning and "without it" in warning
    cache.clear()  # nothing stored there: nothing to clear


# -- read-only ------------------------------------------------------------------------------------


def test_a_read_only_file_answers_everything_it_holds_and_skips_writes_with_one_warning(tmp_path, monkeypatch):
    path = tmp_path / "responses.sqlite"
    expected = filled(path)
    before = path.read_bytes()
    fault_on_connect(monkeypatch, path, read_only_file)
    with recorded() as got:
        cache = ResponseCache(path)
        inner = EchoModel()
        model = CachedModel(inner, cache)
        assert model.chat([conv("a"), conv("b"), conv("c")], GREEDY) == expected
        assert inner.batches == [] and messages(got) == []  # all cached: nothing lost, nothing to say
        assert model.chat([conv("d"), conv("a")], GREEDY) == ["D", "A"]
        assert model.chat([conv("e")], GREEDY) == ["E"]
        assert model.chat([conv("d")], GREEDY) == ["D"]
    assert inner.batches == [["d"], ["e"], ["d"]]  # computed, not stored
    [warning] = messages(got)
    assert "cannot be written (attempt to write a readonly database)" in warning and str(path) in warning
    assert cache.readable and not cache.writable and len(cache) == 3
    with pytest.raises(UserInputError, match="--clear-cache.*cannot be written"):
        cache.clear()
    cache.close()
    assert path.read_bytes() == before


@pytest.mark.parametrize("with_code", [True, False], ids=["error-code", "message-only"])
def test_a_read_only_folder_is_read_immutable_and_never_written(tmp_path, monkeypatch, with_code):
    path = tmp_path / "responses.sqlite"
    expected = filled(path)
    fault_on_connect(monkeypatch, path, read_only_folder(with_code))
    with recorded() as got:
        cache = ResponseCache(path)
        inner = EchoModel()
        model = CachedModel(inner, cache)
        assert model.chat([conv("a"), conv("b"), conv("c")], GREEDY) == expected and inner.batches == []
        assert messages(got) == []
        assert model.chat([conv("z")], GREEDY) == ["Z"] and model.chat([conv("y")], GREEDY) == ["Y"]
    [warning] = messages(got)
    assert "cannot be written (attempt to write a readonly database)" in warning
    assert len(cache) == 3 and not cache.writable
    cache.close()


def test_a_damaged_file_that_cannot_be_moved_aside_is_not_used(tmp_path, monkeypatch):
    path = tmp_path / "responses.sqlite"
    garbage = b"not a database\n" * 64
    path.write_bytes(garbage)

    def refuse(self, target):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "replace", refuse)
    with recorded() as got:
        cache = ResponseCache(path)
        assert CachedModel(EchoModel(), cache).chat([conv("a")], GREEDY) == ["A"]
    [warning] = messages(got)
    assert "cannot be used (Permission denied)" in warning
    assert path.read_bytes() == garbage and not cache.readable


def test_damage_found_mid_run_that_cannot_be_moved_aside_turns_the_cache_off(tmp_path, monkeypatch):
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    model = CachedModel(EchoModel(), cache)
    model.chat([conv("a")], GREEDY)
    cache._conn.close()  # the file is clobbered under the open cache
    for companion in (tmp_path / "responses.sqlite-wal", tmp_path / "responses.sqlite-shm"):
        companion.unlink(missing_ok=True)
    path.write_bytes(b"\x00garbage" * 512)
    cache._conn = REAL_CONNECT(path, isolation_level=None, check_same_thread=False)

    def refuse(self, target):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "replace", refuse)
    with recorded() as got:
        assert model.chat([conv("a"), conv("b")], GREEDY) == ["A", "B"]
        assert model.chat([conv("c")], GREEDY) == ["C"]
    [warning] = messages(got)
    assert "cannot be used (Permission denied)" in warning and not cache.readable
    assert path.read_bytes() == b"\x00garbage" * 512


def test_a_damaged_read_only_file_is_dropped_not_moved(tmp_path, monkeypatch):
    """A read-only file damaged past its header: the first read finds it; it is left where it is."""
    path = tmp_path / "responses.sqlite"
    filled(path, [f"text {i}" * 50 for i in range(200)])
    data = bytearray(path.read_bytes())
    data[4096:len(data)] = b"\xff" * (len(data) - 4096)  # keep page 1 (header, schema), wreck the rest
    path.write_bytes(bytes(data))
    fault_on_connect(monkeypatch, path, read_only_folder(True))
    with recorded() as got:
        cache = ResponseCache(path)
        inner = EchoModel()
        texts = [f"text {i}" * 50 for i in range(200)]
        assert CachedModel(inner, cache).chat([conv(t) for t in texts], GREEDY) == [t.upper() for t in texts]
    assert inner.batches == [texts] and not cache.readable
    assert messages(got, CacheCorruptionWarning) == []
    assert "malformed" in messages(got, CacheUnavailableWarning)[0]
    assert path.read_bytes() == bytes(data) and sorted(p.name for p in tmp_path.iterdir()) == ["responses.sqlite"]


# -- locks, full disk, I/O errors ------------------------------------------------------------------


def exclusive_holder(path: Path) -> sqlite3.Connection:
    """Another process's connection holding the whole file: neither readers nor writers get in."""
    holder = REAL_CONNECT(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT OR REPLACE INTO responses (key, value) VALUES ('held', '\"x\"')")
    return holder


def test_a_lock_held_beyond_the_timeout_at_open_means_a_run_without_cache(tmp_path):
    path = tmp_path / "responses.sqlite"
    filled(path)
    holder = exclusive_holder(path)
    try:
        with recorded() as got:
            cache = ResponseCache(path, timeout=0.2)
            inner = EchoModel()
            assert CachedModel(inner, cache).chat([conv("a")], GREEDY) == ["A"]
        assert inner.batches == [["a"]] and not cache.readable
        [warning] = messages(got)
        assert "database is locked" in warning and "without it" in warning
    finally:
        holder.close()


def test_a_write_lock_beyond_the_timeout_stops_writes_and_keeps_reads(tmp_path):
    path = tmp_path / "responses.sqlite"
    expected = filled(path)
    cache = ResponseCache(path, timeout=0.2)
    writer = REAL_CONNECT(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # in WAL mode readers still get in; writers wait
    try:
        with recorded() as got:
            inner = EchoModel()
            model = CachedModel(inner, cache)
            assert model.chat([conv("x")], GREEDY) == ["X"]
            assert model.chat([conv("a"), conv("y")], GREEDY) == [expected[0], "Y"]
        assert inner.batches == [["x"], ["y"]] and cache.readable and not cache.writable
        [warning] = messages(got)
        assert "cannot be written (database is locked)" in warning
    finally:
        writer.close()
    cache.close()


def test_a_full_disk_mid_run_stops_writes_and_changes_no_answer(tmp_path):
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    inner = EchoModel()
    model = CachedModel(inner, cache)
    first = [conv(f"{i} " + "x" * 400) for i in range(20)]
    model.chat(first, GREEDY)
    pages = cache._conn.execute("PRAGMA page_count").fetchone()[0]
    cache._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
    big = [conv(f"{i} " + "y" * 4000) for i in range(50)]
    with recorded() as got:
        assert model.chat(big, GREEDY) == [c[0]["content"].upper() for c in big]
        assert model.chat(first + big[:3], GREEDY) == [c[0]["content"].upper() for c in first + big[:3]]
    [warning] = messages(got)
    assert "cannot be written (database or disk is full)" in warning
    assert inner.batches[-1] == [c[0]["content"] for c in big[:3]]  # stored rows answered, the rest computed
    assert cache.readable and not cache.writable and not cache._conn.in_transaction and len(cache) == 20
    cache.close()
    with ResponseCache(path) as again:  # the file is intact
        assert len(again) == 20


class FailingConnection(sqlite3.Connection):
    """A connection whose statements starting with ``fail_on`` meet ``error`` (message, code)."""

    fail_on = "SELECT key"
    error = ("disk I/O error", 10)

    def execute(self, sql, *args):
        if sql.startswith(self.fail_on):
            raise sqlite_error(*self.error)
        return super().execute(sql, *args)


@pytest.mark.parametrize("error", [("disk I/O error", 10), ("database is locked", 5)], ids=["io", "locked"])
@pytest.mark.parametrize("fail_on, reading", [("SELECT key", True), ("BEGIN IMMEDIATE", False)], ids=["read", "write"])
def test_a_failing_read_or_write_mid_run_is_one_warning(tmp_path, monkeypatch, fail_on, reading, error):
    """A read that fails turns the cache off; a write that fails stops the writes."""
    path = tmp_path / "responses.sqlite"
    expected = filled(path)
    monkeypatch.setattr(FailingConnection, "fail_on", fail_on)
    monkeypatch.setattr(FailingConnection, "error", error)
    fault_on_connect(monkeypatch, path, lambda target, kwargs: REAL_CONNECT(target, factory=FailingConnection, **kwargs))
    with recorded() as got:
        cache = ResponseCache(path)
        inner = EchoModel()
        model = CachedModel(inner, cache)
        assert model.chat([conv("a"), conv("q")], GREEDY) == [expected[0], "Q"]
        assert model.chat([conv("r")], GREEDY) == ["R"]
    [warning] = messages(got)
    assert error[0] in warning and ("cannot be used" if reading else "cannot be written") in warning
    assert cache.readable is not reading and not cache.writable
    assert inner.batches == ([["a", "q"], ["r"]] if reading else [["q"], ["r"]])


# -- rows -------------------------------------------------------------------------------------------

HUGE_INT = "9" * 5000  # beyond Python's int-from-text digit limit
DEEP = "[" * 100_000 + "]" * 100_000  # beyond the JSON reader's recursion


@pytest.mark.parametrize(
    "raw",
    ["{not json", "5", "null", "[\"A\"]", "{\"reply\": \"A\"}", HUGE_INT, DEEP, b"\xff\xfe\x00 not utf-8", "true"],
    ids=["not-json", "integer", "null", "list", "object", "huge-int", "deep", "not-utf8", "bool"],
)
def test_a_chat_row_of_the_wrong_kind_is_a_counted_miss(tmp_path, raw):
    path = tmp_path / "responses.sqlite"
    key = cache_key(IDENTITY, "chat", conv("a"), GREEDY.as_dict())
    with ResponseCache(path) as cache:
        cache.put_many({"placeholder": "x"})
        cache._conn.execute("INSERT INTO responses (key, value) VALUES (?, ?)", (key, raw))
        inner = EchoModel()
        model = CachedModel(inner, cache)
        with recorded() as got:
            assert model.chat([conv("b"), conv("a"), conv("b")], GREEDY) == ["B", "A", "B"]
        assert inner.batches == [["b", "a"]]  # the bad row was recomputed with the other miss
        [warning] = messages(got)
        assert "1 entry unusable" in warning and key[:12] in warning and str(path) in warning
        assert cache.rejected_rows == 1 and model.stats.extra == {"cache_rows_rejected": 1}
        assert cache.get_many([key]) == {key: "A"}  # overwritten
        assert model.chat([conv("a")], GREEDY) == ["A"] and inner.batches == [["b", "a"]]


@pytest.mark.parametrize(
    "value",
    ['"-1.0"', "[-1.0]", "[-1.0, -2.0, -3.0]", '[-1.0, "x"]', "[-1.0, true]", "[[-1.0], [-2.0]]", '{"a": -1.0}',
     f"[-1.0, {'9' * 400}]", "-1.0"],
    ids=["string", "short", "long", "string-in", "bool-in", "nested", "object", "int-beyond-float", "number"],
)
def test_an_option_score_row_of_the_wrong_shape_is_a_counted_miss(tmp_path, value):
    key = cache_key(IDENTITY, "score", conv("ab"), OPTIONS)
    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        cache._conn.execute("INSERT INTO responses (key, value) VALUES (?, ?)", (key, value))
        inner = EchoModel()
        model = CachedModel(inner, cache)
        with recorded() as got:
            assert model.score_options([conv("ab")], OPTIONS) == [[-math.inf, -3.0]]
        assert inner.score_batches == [["ab"]] and cache.rejected_rows == 1
        assert len(messages(got, CacheRowWarning)) == 1
        assert cache.get_many([key]) == {key: [-math.inf, -3.0]}


def test_integer_scores_are_read_as_the_numbers_they_are(tmp_path):
    """JSON has one number type: ``[-1, -3]`` is the same scores as ``[-1.0, -3.0]``."""
    key = cache_key(IDENTITY, "score", conv("ab"), OPTIONS)
    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        cache._conn.execute("INSERT INTO responses (key, value) VALUES (?, '[-1, -3]')", (key,))
        inner = EchoModel()
        assert CachedModel(inner, cache).score_options([conv("ab")], OPTIONS) == [[-1.0, -3.0]]
        assert inner.score_batches == [] and cache.rejected_rows == 0


def test_reply_score_rows_are_checked_against_their_own_row_of_replies(tmp_path):
    rows = [["x", "yy"], ["because"]]
    keys = [cache_key(IDENTITY, "score_replies", conv(t), {"replies": r, "complete": True}) for t, r in zip("ab", rows)]
    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        # the first holds one score for two replies; the second is right
        cache._conn.executemany("INSERT INTO responses (key, value) VALUES (?, ?)",
                                [(keys[0], "[-1.0]"), (keys[1], "[-7.0]")])
        inner = ReplyScorer()
        model = CachedModel(inner, cache)
        with recorded() as got:
            assert model.score_replies([conv("a"), conv("b")], rows) == [[-2.5, -3.5], [-7.0]]
        assert inner.reply_batches == [(["a"], [["x", "yy"]], True)]
        assert "not a list of 2 numbers" in messages(got, CacheRowWarning)[0]


def test_many_bad_rows_are_counted_and_reported_once(tmp_path):
    texts = [f"t{i}" for i in range(30)]
    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        keys = [cache_key(IDENTITY, "chat", conv(t), GREEDY.as_dict()) for t in texts]
        cache._conn.executemany("INSERT INTO responses (key, value) VALUES (?, ?)",
                                [(k, str(i)) for i, k in enumerate(keys)])
        model = CachedModel(EchoModel(), cache)
        with recorded() as got:
            assert model.chat([conv(t) for t in texts[:10]], GREEDY) == [t.upper() for t in texts[:10]]
            assert model.chat([conv(t) for t in texts], GREEDY) == [t.upper() for t in texts]
        [warning] = messages(got)
        assert "10 entries unusable" in warning
        assert cache.rejected_rows == 30 and model.stats.extra == {"cache_rows_rejected": 30}


def test_a_backend_returning_booleans_for_scores_is_an_error(tmp_path):
    class BoolScores(EchoModel):
        def score_options(self, conversations, options):
            return [[True, False] for _ in conversations]

    with ResponseCache(tmp_path / "r.sqlite") as cache, pytest.raises(BackendError, match="expected 2 numbers"):
        CachedModel(BoolScores(), cache).score_options([conv("a")], OPTIONS)


# -- real permission bits (any user but root) -----------------------------------------------------

needs_permissions = pytest.mark.skipif(AS_ROOT, reason="root ignores permission bits; the fault tests above cover root")


@contextmanager
def mode(path: Path, bits: int):
    old = path.stat().st_mode & 0o777
    path.chmod(bits)
    try:
        yield
    finally:
        path.chmod(old)


@needs_permissions
@pytest.mark.parametrize("what", ["file", "folder"])
def test_real_read_only_file_or_folder(tmp_path, what):
    folder = tmp_path / "cache"
    folder.mkdir()
    path = folder / "responses.sqlite"
    expected = filled(path)
    target, bits = (path, 0o444) if what == "file" else (folder, 0o555)
    with mode(target, bits), recorded() as got:
        cache = ResponseCache(path)
        inner = EchoModel()
        model = CachedModel(inner, cache)
        assert model.chat([conv("a"), conv("b"), conv("c")], GREEDY) == expected and inner.batches == []
        assert model.chat([conv("n")], GREEDY) == ["N"] and model.chat([conv("m")], GREEDY) == ["M"]
        cache.close()
    [warning] = messages(got)
    assert "cannot be written" in warning and "readonly" in warning


@needs_permissions
def test_real_unwritable_folder_without_a_file(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    with mode(folder, 0o555), recorded() as got:
        cache = ResponseCache(folder / "responses.sqlite")
        assert CachedModel(EchoModel(), cache).chat([conv("a")], GREEDY) == ["A"]
    [warning] = messages(got)
    assert "cannot be used" in warning and not cache.readable


@needs_permissions
def test_real_directory_that_cannot_be_made(tmp_path):
    with mode(tmp_path, 0o555), recorded() as got:
        cache = ResponseCache(tmp_path / "new" / "responses.sqlite")
    assert "cannot be created" in messages(got)[0] and not cache.readable


# -- end to end: sce-audit -------------------------------------------------------------------------


def audit(*args: str) -> int:
    return main(["--dataset", "toy.toml", "--limit", "12", "--seed", "3", "--prediction", "generate", "-q",
                 "--model", "python:toy_models:boundary", *args])


def results(path: Path) -> list:
    return json.loads(path.read_text())["results"]


def said_once(out: str, report: Path, text: str) -> None:
    """The cache's warning reached the user as one line of the audit's summary (never as a source
    path and a line of code: sce_checks/notices.py) and is recorded in the report."""
    lines = [line for line in out.splitlines() if line.startswith("sce-checks: warning: ")]
    assert len(lines) == 1 and text in lines[0], out
    assert "Warning" not in out and ".py:" not in out and "Traceback" not in out
    assert json.loads(report.read_text())["environment"]["warnings"] == [lines[0].removeprefix("sce-checks: warning: ")]


def test_cli_a_cache_path_that_is_a_directory_exits_2_with_one_line(workdir, capsys):
    (workdir / "bad" / "responses.sqlite").mkdir(parents=True)
    for extra in ([], ["--clear-cache"]):
        assert audit("--cache-dir", "bad", *extra) == 2
        out = capsys.readouterr()
        assert "is a directory, not a file" in out.err + out.out and "Traceback" not in out.err + out.out
    (workdir / "afile").write_text("")
    assert audit("--cache-dir", "afile") == 2
    assert "afile is a file, not a directory" in capsys.readouterr().err


def test_cli_rows_holding_integers_change_no_figure(workdir, capsys):
    assert audit("--json", "first.json") == 0
    path = workdir / "cache" / "responses.sqlite"
    with REAL_CONNECT(path, isolation_level=None) as conn:
        changed = conn.execute("UPDATE responses SET value = '5' WHERE value LIKE '\"%'").rowcount
    assert changed > 10
    capsys.readouterr()
    assert audit("--json", "second.json") == 0
    out = capsys.readouterr().out
    assert results(workdir / "second.json") == results(workdir / "first.json")
    said_once(out, workdir / "second.json", "entries unusable")
    report = json.loads((workdir / "second.json").read_text())
    assert report["environment"]["model_calls"]["extra"] == {"cache_rows_rejected": changed}


def test_cli_a_read_only_cache_holding_every_answer_gives_the_same_report(workdir, monkeypatch, capsys):
    assert audit("--json", "first.json") == 0
    fault_on_connect(monkeypatch, workdir / "cache" / "responses.sqlite", read_only_folder(True))
    capsys.readouterr()
    assert audit("--json", "again.json") == 0
    out = capsys.readouterr().out
    assert results(workdir / "again.json") == results(workdir / "first.json")
    assert json.loads((workdir / "again.json").read_text())["environment"]["model_calls"]["chat_calls"] == 0
    assert "Cache" not in out  # nothing had to be written: nothing to warn about
    assert audit("--json", "more.json", "--limit", "14") == 0  # two more examples: computed, not stored
    out = capsys.readouterr().out
    said_once(out, workdir / "more.json", "cannot be written")


def test_cli_a_full_disk_gives_the_same_report(workdir, monkeypatch, capsys):
    assert audit("--json", "first.json", "--no-cache") == 0
    path = workdir / "cache" / "responses.sqlite"

    class Full(sqlite3.Connection):
        def execute(self, sql, *args):
            if sql == "BEGIN IMMEDIATE":
                super().execute("PRAGMA max_page_count = 1")  # full from the first write on
            return super().execute(sql, *args)

    fault_on_connect(monkeypatch, path, lambda target, kwargs: REAL_CONNECT(target, factory=Full, **kwargs))
    capsys.readouterr()
    assert audit("--json", "full.json") == 0
    out = capsys.readouterr().out
    assert results(workdir / "full.json") == results(workdir / "first.json")
    said_once(out, workdir / "full.json", "database or disk is full")


# -- kill and resume --------------------------------------------------------------------------------

LOGGED_MODEL = '''
import hashlib, json, os, time
from tests.helpers.rule_models import TOY, RuleModel, toy_rule

class Logged(RuleModel):
    """The boundary rule model, slowed down, logging each batch ("B <size>") and each
    conversation (a hash) before it answers: what a killed run had begun is in the log."""

    def chat(self, conversations, decoding):
        with open(os.environ["CALL_LOG"], "a") as log:
            log.write(f"B {len(conversations)}\\n")
            for conversation in conversations:
                log.write(hashlib.sha256(json.dumps(conversation).encode()).hexdigest()[:16] + "\\n")
                log.flush()
                time.sleep(0.003)
        return super().chat(conversations, decoding)

model = Logged(TOY, toy_rule, "boundary")
'''


def read_log(path: Path) -> list[list[str]]:
    """The batches a run began, each the conversation hashes it reached."""
    batches: list[list[str]] = []
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("B "):
                batches.append([])
            elif line:
                batches[-1].append(line)
    return batches


def comparable(report: dict) -> dict:
    """A report less what differs between an interrupted and an uninterrupted run by design:
    how many calls the model got, and the wall time."""
    environment = {k: v for k, v in report["environment"].items() if k not in ("model_calls", "wall_seconds")}
    return {**report, "environment": environment}


def test_killed_audits_resume_from_the_cache_and_end_with_the_same_report(tmp_path):
    """SIGKILL a real sce-audit at four points of its run, rerun it each time, then let it finish:
    the report equals an uninterrupted run's, and each kill costs at most the batch it cut."""
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers.projects import REPO, TOY_TOML

    (tmp_path / "toy.toml").write_text(TOY_TOML)
    (tmp_path / "logged_models.py").write_text(LOGGED_MODEL)
    command = [sys.executable, "-m", "sce_checks.cli", "--model", "python:logged_models:model", "--dataset", "toy.toml",
               "--limit", "30", "--seed", "3", "--prediction", "generate", "--check", "sce", "--check", "stability", "-q"]

    def start(cache: str, log: str, report: str) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(REPO), "SCE_CHECKS_CACHE_DIR": str(tmp_path / cache),
               "CALL_LOG": str(tmp_path / log), "HF_HUB_OFFLINE": "1"}
        return subprocess.Popen([*command, "--json", report], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    reference = start("reference-cache", "reference.log", "reference.json")
    assert reference.wait(120) == 0, reference.stdout.read()
    asked = [h for batch in read_log(tmp_path / "reference.log") for h in batch]
    assert len(asked) == len(set(asked)) > 100  # an uninterrupted run asks each conversation once

    runs: list[list[list[str]]] = []  # per run of the chain: the batches it began
    killed: list[bool] = []
    done: set[str] = set()
    for index, fraction in enumerate((0.15, 0.4, 0.65, 0.9, None)):
        log = tmp_path / f"run{index}.log"
        process = start("cache", log.name, "resumed.json")
        if fraction is None:
            assert process.wait(120) == 0, process.stdout.read()
        else:
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline:
                if len(done | {h for batch in read_log(log) for h in batch}) >= fraction * len(asked):
                    process.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.01)
            process.wait(30)
            assert process.returncode in (-signal.SIGKILL, 0), process.stdout.read()
        process.stdout.close()
        killed.append(process.returncode == -signal.SIGKILL)
        runs.append(read_log(log))
        done |= {h for batch in runs[-1] for h in batch}

    assert sum(killed) >= 3  # the kills landed mid-run
    assert done == set(asked)
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert comparable(resumed) == comparable(json.loads((tmp_path / "reference.json").read_text()))

    repeated = 0
    for index, batches in enumerate(runs[:-1]):
        later = {h for run in runs[index + 1:] for batch in run for h in batch}
        again = [h for batch in batches for h in batch if h in later]
        # only what the kill cut short is asked again: the batch in flight, never a stored one
        assert set(again) <= set(batches[-1]) if batches else not again
        repeated += len(again)
    total = sum(len(batch) for run in runs for batch in run)
    assert total == len(asked) + repeated
    print(f"kill-and-resume: {sum(killed)} kills, {total} conversations asked for {len(asked)}, {repeated} repeated")


# -- issue 26: FIFOs, lone surrogates, replies past the reading bound -----------------------------------


def test_a_fifo_at_the_cache_path_is_one_user_error_without_opening_it(tmp_path):
    """Opening a FIFO blocks until a writer comes: the run used to hang with no output."""
    os.mkfifo(tmp_path / "responses.sqlite")
    with pytest.raises(UserInputError, match=r"responses\.sqlite is a FIFO, not a regular file.*--no-cache"):
        ResponseCache(tmp_path / "responses.sqlite")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UserInputError, match="pipe is a FIFO, not a directory"):
        ResponseCache(tmp_path / "pipe" / "responses.sqlite")


def test_lone_surrogates_are_stored_and_read_back_unchanged(tmp_path):
    values = {"a": "half \ud800 of a pair", "b": "\udfff", "c": "\ud83d\ude00 whole", "d": "plain é"}
    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        cache.put_many(values)
        assert cache.get_many(values) == values and cache.rejected_rows == 0
    conversation = [{"role": "user", "content": "\ud800"}]
    assert cache_key(IDENTITY, "chat", conversation, {}) != cache_key(IDENTITY, "chat", [{"role": "user", "content": "\udfff"}], {})


class Talker:
    """A backend whose replies are ``reply`` (as long as asked), counting its calls."""

    def __init__(self, reply: str) -> None:
        self.reply, self.calls = reply, 0

    def chat(self, conversations, decoding):
        self.calls += 1
        return [self.reply for _ in conversations]


def test_a_reply_past_the_reading_bound_is_stored_as_its_length_and_digest(tmp_path):
    """3 replies of 10 million characters once made a 19.8 GB cache; now each is a marker of under
    200 bytes, read back as the same too_long reading with no model call."""
    reply = '{"answer": "yes"}' + "x" * 10_000_000
    path = tmp_path / "responses.sqlite"
    readings = []
    for run in range(2):
        backend = Talker(reply)
        with ResponseCache(path) as cache:
            got = CachedModel(backend, cache).chat([conv("q1"), conv("q2"), conv("q3")], GREEDY)
        assert backend.calls == (1 if run == 0 else 0)
        assert all(isinstance(g, OverlongReply) and g.length == len(reply) for g in got)
        readings.append([parse_answer(g, ["no", "yes"]) for g in got])
    assert readings[0] == readings[1] == [parse_answer(reply, ["no", "yes"])] * 3
    assert readings[0][0].code == "too_long" and readings[0][0].detail == f"{len(reply)} characters"
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) < 200_000


def test_a_huge_row_left_by_an_older_version_is_a_miss_not_read(tmp_path):
    path = tmp_path / "responses.sqlite"
    with ResponseCache(path) as cache:
        cache.put_many({"k": "small"})
    with REAL_CONNECT(path, isolation_level=None) as conn:
        conn.execute("UPDATE responses SET value = ? WHERE key = 'k'", (json.dumps("x" * 2_000_000),))
    conn.close()
    with recorded() as got, ResponseCache(path) as cache:
        assert cache.get_many(["k"]) == {} and cache.rejected_rows == 1
    assert "over" in messages(got, CacheRowWarning)[0]


SURROGATE_MODELS = '''
from tests.helpers.rule_models import TOY, RuleModel, toy_rule


class Surrogates(RuleModel):
    """The rule model's replies with a lone surrogate in a reason, as byte-level tokenizers write."""

    def chat(self, conversations, decoding):
        replies = super().chat(conversations, decoding)
        return [r.replace('"answer"', '"reason": "half \\ud800 of a pair", "answer"') + "\\udfff" for r in replies]


surrogates = Surrogates(TOY, toy_rule, "boundary")
'''


@pytest.mark.parametrize("gate, status", [("validity>=0", 0), ("validity>=2", 1)])
def test_a_python_model_writing_lone_surrogates_is_audited_cleanly(workdir, gate, status):
    """Once a UnicodeEncodeError at the cache write and exit 1: now one clean run through
    ``sce-audit``, exit by the gate, and a rerun from the cache gives the same report."""
    (workdir / "sur_models.py").write_text(SURROGATE_MODELS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), str(workdir)])}
    reports = []
    for run in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "sce_checks.cli", "--model", "python:sur_models:surrogates", "--dataset", "toy.toml",
             "--limit", "6", "--seed", "3", "--prediction", "generate", "--check", "sce", "--threshold", gate,
             "--cache-dir", "c", "--json", f"r{run}.json", "--markdown", "r.md", "--html", "r.html"],
            cwd=workdir, env=env, capture_output=True, text=True, errors="backslashreplace", timeout=300)
        assert done.returncode == status, done.stdout[-3000:] + done.stderr[-3000:]
        assert "Traceback" not in done.stdout + done.stderr and "UnicodeEncodeError" not in done.stdout + done.stderr
        reports.append(json.loads((workdir / f"r{run}.json").read_text(encoding="utf-8")))
    assert reports[1]["environment"]["model_calls"]["chat_calls"] == 0
    assert reports[0]["results"] == reports[1]["results"]


# -- issue 26: --clear-cache on a cache that cannot be written is sce-audit's own one-line error ----


@pytest.mark.parametrize("fault", ["file", "folder"])
def test_cli_clear_cache_on_a_read_only_cache_is_one_sce_audit_error(workdir, monkeypatch, capsys, fault):
    assert audit() == 0
    path = workdir / "cache" / "responses.sqlite"
    before = path.read_bytes()
    fault_on_connect(monkeypatch, path, read_only_file if fault == "file" else read_only_folder(True))
    capsys.readouterr()
    assert audit("--clear-cache") == 2
    out, err = capsys.readouterr()
    [line] = err.splitlines()  # before: "ERROR: --clear-cache: ...", pytest's usage line
    assert line.startswith("sce-audit: error: --clear-cache: ") and str(path) in line, err
    assert "readonly" in line or "cannot be written" in line
    assert out == "" and path.read_bytes() == before


def test_cli_clear_cache_clears_once_and_the_run_refills_it(workdir, capsys):
    assert audit() == 0
    path = workdir / "cache" / "responses.sqlite"
    with ResponseCache(path) as cache:
        stored = len(cache)
    assert stored > 0
    assert audit("--clear-cache", "--json", "cleared.json") == 0
    report = json.loads((workdir / "cleared.json").read_text())
    assert report["environment"]["model_calls"]["chat_calls"] > 0  # nothing reused
    with ResponseCache(path) as cache:
        assert len(cache) == stored
