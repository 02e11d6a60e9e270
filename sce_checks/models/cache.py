"""On-disk response cache, so that rerunning an unchanged audit makes no model calls.

Only deterministic requests are cached (greedy chat, option scoring, reply scoring). Entries are
keyed by the sha256 of a canonical JSON document holding everything the answer depends on: the
backend's identity (model name, weights fingerprint or URL, ...), the request kind, the full
conversation and the request's parameters, one entry per conversation:

==================  ============================================================================
kind                params
==================  ============================================================================
``chat``            ``Decoding.as_dict()``
``score``           the list of options (``score_options``); ``{"options": [...],
                    "scoring_version": v}`` for a backend that names its ``scoring_version``
``score_replies``   ``{"replies": [...this conversation's replies], "complete": bool}``, plus
                    ``"scoring_version"`` when the backend names one
==================  ============================================================================
 The store is one SQLite file in WAL mode,
written in one ``BEGIN IMMEDIATE`` transaction per batch, so several pytest-xdist workers (or
several audits) can share it. A file that is not a database any more is moved aside with one
warning and a fresh cache starts: a broken cache costs model calls, never an audit.
"""

from __future__ import annotations

import hashlib
import numbers
import json
import sqlite3
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sce_checks import progress
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.base import CallStats, Conversation, Decoding, supports_reply_scoring, supports_scoring

__all__ = ["CacheCorruptionWarning", "CachedModel", "ResponseCache", "cache_key"]

_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_BUSY_TIMEOUT_MS = 60_000
_CHUNK = 500  # keys per SELECT, well under SQLite's bound-parameter limit


class CacheCorruptionWarning(UserWarning):
    """The cache file was not a valid SQLite database; it was moved aside and a fresh one made."""


def cache_key(identity: Mapping[str, Any], kind: str, conversation: Conversation, params: Any) -> str:
    """sha256 of the canonical JSON of everything a deterministic answer depends on.

    ``params`` is ``Decoding.as_dict()`` for chat, the list of options for option scoring and
    the row's replies with ``complete`` for reply scoring (module docstring).
    """
    document = {"identity": identity, "kind": kind, "conversation": conversation, "params": params}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    # OperationalError ("database is locked", "disk I/O error") is a DatabaseError too: not ours.
    if isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text


def _header_is_valid(path: Path) -> bool:
    """An absent or empty file is a valid (new) database; otherwise it must start with the header."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return True
    return head == b"" or head == _SQLITE_HEADER


class ResponseCache:
    """A key -> JSON value store in one SQLite file, safe for several processes at once.

    Values are reply strings or lists of floats; ``-inf`` and ``nan`` round-trip (Python's JSON
    writes them as ``-Infinity`` / ``NaN``).
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from sce_checks.paths import cache_root

            path = cache_root() / "responses.sqlite"
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"cannot create the cache directory {self.path.parent}: {exc}") from None
        if not _header_is_valid(self.path):
            self._set_aside()
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            self._recover()

    # -- connection life cycle -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """Open and prepare the database. Switching a new file to WAL takes an exclusive lock
        that SQLite's busy handler does not wait for, so a process racing others to create the
        file retries here."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        delay = 0.005
        while True:
            try:
                return self._connect_once()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _connect_once(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable enough for a cache, much faster
            conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("SELECT COUNT(*) FROM responses LIMIT 1").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_aside(self) -> None:
        """Move the broken file (and its WAL/SHM companions) aside and warn once."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            self.path.replace(target)
        except FileNotFoundError:
            return  # another process already moved it aside
        for suffix in ("-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            try:
                companion.replace(target.with_name(target.name + suffix))
            except FileNotFoundError:
                pass
        warnings.warn(
            CacheCorruptionWarning(
                f"response cache {self.path} is not a valid SQLite database; moved it to {target} "
                "and started an empty cache"
            ),
            stacklevel=3,
        )

    def _recover(self) -> None:
        """Called on a corruption error: close, set the file aside (unless another process already
        replaced it with a good one) and reconnect to a fresh database."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if not self._healthy():
            self._set_aside()
        self._conn = self._connect()

    def _healthy(self) -> bool:
        if not _header_is_valid(self.path):
            return False
        try:
            probe = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000)
            try:
                return probe.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            finally:
                probe.close()
        except sqlite3.DatabaseError as exc:
            return not _is_corruption(exc)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"response cache {self.path} is closed")
        return self._conn

    def _run(self, work):
        """Run ``work(conn)`` under the lock; on corruption, recover once and run it again."""
        with self._lock:
            try:
                return work(self._connection())
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    raise
                self._recover()
                return work(self._connection())

    # -- public API ------------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of those ``keys`` that are present."""
        wanted = list(dict.fromkeys(keys))

        def work(conn: sqlite3.Connection) -> dict[str, Any]:
            found: dict[str, Any] = {}
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, value in conn.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(value)
            return found

        return self._run(work) if wanted else {}

    def put_many(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Store values (JSON-serialisable) in one transaction."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in pairs]
        if not rows:
            return

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock on upgrade
            try:
                conn.executemany("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        self._run(work)

    def clear(self) -> None:
        """Delete every entry."""
        self._run(lambda conn: conn.execute("DELETE FROM responses"))

    def __len__(self) -> int:
        return int(self._run(lambda conn: conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


class CachedModel:
    """Puts a `ResponseCache` in front of any backend.

    Deterministic chat requests and all option and reply scoring are answered from the cache
    where possible; only the misses go to the inner model, in one batched call, and their replies are
    stored at once (an interrupted audit resumes where it stopped). Identical conversations in
    one batch are sent once. Sampling requests bypass the cache. ``cache=None`` passes
    everything through (still counting calls in ``stats``).
    """

    def __init__(self, inner: Any, cache: ResponseCache | None) -> None:
        self.inner = inner
        self.cache = cache
        self.stats = CallStats()
        self._identity: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            probe = getattr(self.inner, "identity", None)
            self._identity = dict(probe()) if callable(probe) else {"backend": type(self.inner).__name__}
        return dict(self._identity)

    def can_score(self) -> bool:
        return supports_scoring(self.inner)

    def can_score_replies(self) -> bool:
        return supports_reply_scoring(self.inner)

    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        conversations = list(conversations)
        if self.cache is None or not decoding.deterministic:
            return self._send_chat(conversations, decoding)
        params = [decoding.as_dict()] * len(conversations)
        return self._cached("chat", conversations, params,
                            lambda todo: self._send_chat([conversations[i] for i in todo], decoding))

    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str]) -> list[list[float]]:
        if not self.can_score():
            raise UserInputError(
                f"backend {self.identity().get('backend', type(self.inner).__name__)!r} offers no option "
                "scoring (score_options); use prediction mode 'generate' or 'auto'"
            )
        conversations, options = list(conversations), list(options)
        if self.cache is None:
            return self._send_scores(conversations, options)
        # A backend whose way of scoring changed (openai: prefill instead of the reply walk) names
        # its version, so scores computed the old way are not reused; unversioned keys stay as they were.
        version = getattr(self.inner, "scoring_version", None)
        params: Any = options if version is None else {"options": options, "scoring_version": version}
        return self._cached("score", conversations, [params] * len(conversations),
                            lambda todo: self._send_scores([conversations[i] for i in todo], options))

    def score_replies(
        self, conversations: Sequence[Conversation], replies: Sequence[Sequence[str]], complete: bool = True
    ) -> list[list[float]]:
        """The scoring primitive (sce_checks/models/base.py), one cache entry per conversation
        and its row of replies."""
        if not self.can_score_replies():
            raise UserInputError(
                f"backend {self.identity().get('backend', type(self.inner).__name__)!r} offers no reply "
                "scoring (score_replies)"
            )
        replies = list(replies)
        if any(isinstance(row, str) for row in replies):
            raise UserInputError("score_replies takes one LIST of replies per conversation, not a string")
        conversations, rows = list(conversations), [list(row) for row in replies]
        if not all(isinstance(r, str) for row in rows for r in row):
            raise UserInputError("score_replies: every reply must be a string")
        if len(rows) != len(conversations):
            raise UserInputError(f"score_replies got {len(rows)} rows of replies for {len(conversations)} conversations")
        complete = bool(complete)
        if self.cache is None:
            return self._send_reply_scores(conversations, rows, complete)
        version = getattr(self.inner, "scoring_version", None)
        params = []
        for row in rows:
            entry: dict[str, Any] = {"replies": row, "complete": complete}
            if version is not None:
                entry["scoring_version"] = version
            params.append(entry)
        return self._cached(
            "score_replies", conversations, params,
            lambda todo: self._send_reply_scores([conversations[i] for i in todo], [rows[i] for i in todo], complete),
        )

    # -- internals -------------------------------------------------------------------------------

    def _cached(self, kind: str, conversations: list[Conversation], params: list[Any], send) -> list:
        """Answers for ``conversations`` (``params[i]`` goes with ``conversations[i]``) from the
        cache; ``send(indices)`` computes the misses, each distinct key once."""
        assert self.cache is not None
        identity = self.identity()
        keys = [cache_key(identity, kind, conv, p) for conv, p in zip(conversations, params)]
        found = self.cache.get_many(keys)
        todo: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key in found:
                self.stats.cache_hits += 1
            elif key not in todo:
                todo[key] = index
        progress.advance(len(keys) - len(todo))  # answered from the cache (or a duplicate)
        if todo:
            fresh = dict(zip(todo, send(list(todo.values()))))
            self.cache.put_many(fresh)
            found.update(fresh)
        return [found[key] for key in keys]

    def _send_chat(self, conversations: list[Conversation], decoding: Decoding) -> list[str]:
        if not conversations:
            return []
        replies = list(self.inner.chat(conversations, decoding))
        self.stats.chat_calls += 1
        self.stats.chat_conversations += len(conversations)
        if len(replies) != len(conversations):
            raise BackendError(f"backend returned {len(replies)} replies for {len(conversations)} conversations")
        for index, reply in enumerate(replies):
            if not isinstance(reply, str):
                raise BackendError(
                    f"backend returned a {type(reply).__name__} instead of a string for conversation {index}"
                )
        return replies

    def _send_scores(self, conversations: list[Conversation], options: list[str]) -> list[list[float]]:
        if not conversations:
            return []
        rows = list(self.inner.score_options(conversations, options))
        self.stats.score_calls += 1
        self.stats.score_conversations += len(conversations)
        if len(rows) != len(conversations):
            raise BackendError(f"backend returned {len(rows)} score rows for {len(conversations)} conversations")
        out: list[list[float]] = []
        for index, row in enumerate(rows):
            row = list(row)
            if len(row) != len(options) or not all(isinstance(s, numbers.Real) for s in row):
                raise BackendError(
                    f"backend returned malformed option scores for conversation {index}: expected "
                    f"{len(options)} numbers, got {row!r}"
                )
            out.append([float(s) for s in row])
        return out

    def _send_reply_scores(self, conversations: list[Conversation], rows: list[list[str]],
                           complete: bool) -> list[list[float]]:
        if not conversations:
            return []
        scores = list(self.inner.score_replies(conversations, rows, complete))
        self.stats.score_calls += 1
        self.stats.score_conversations += len(conversations)
        if len(scores) != len(conversations):
            raise BackendError(f"backend returned {len(scores)} score rows for {len(conversations)} conversations")
        out: list[list[float]] = []
        for index, (row, replies) in enumerate(zip(scores, rows)):
            row = list(row)
            if len(row) != len(replies) or not all(isinstance(s, numbers.Real) for s in row):
                raise BackendError(
                    f"backend returned malformed reply scores for conversation {index}: expected "
                    f"{len(replies)} numbers, got {row!r}"
                )
            out.append([float(s) for s in row])
        return out

    def __repr__(self) -> str:
        return f"CachedModel({self.inner!r}, {self.cache!r})"

