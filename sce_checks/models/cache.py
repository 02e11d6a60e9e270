"""On-disk response cache, so that rerunning an unchanged audit makes no model calls.

Only deterministic requests are cached (greedy chat, sampled chat with a seed, option scoring,
reply scoring); a sampled request without a seed is never cached. Entries are
keyed by the sha256 of a canonical JSON document holding everything the answer depends on: the
backend's identity (model name, weights fingerprint or URL, ...), the request kind, the full
conversation and the request's parameters, one entry per conversation:

==================  ============================================================================
kind                params
==================  ============================================================================
``chat``            ``Decoding.as_dict()``: a sampled reply's key holds its ``temperature``,
                    ``top_p``, the run's ``seed`` and its ``sample`` index (the reply's own
                    seed, `conversation_seed`, follows from them and the conversation)
``score``           the list of options (``score_options``); ``{"options": [...],
                    "scoring_version": v}`` for a backend that names its ``scoring_version``,
                    and ``"temperature": T`` for scores at a temperature other than 1
``score_replies``   ``{"replies": [...this conversation's replies], "complete": bool}``, plus
                    ``"scoring_version"`` when the backend names one and ``"temperature"`` when
                    it is not 1
==================  ============================================================================

Keys of greedy requests and of scores at temperature 1 are those of earlier versions. A sampled
audit stores each batch of replies as it comes: killed, it resumes with exactly the replies it
had drawn, and draws only the missing ones, which are those an uninterrupted run draws (each
reply's seed is its own, not its place in a batch: sce_checks/models/base.py).

The value of a ``chat`` entry is the reply string (where it holds a lone surrogate, which UTF-8
cannot carry, the bytes of its JSON with the surrogates encoded as they are), or for a reply over the reading bound
(`sce_checks.parsing.MAX_REPLY_CHARS`) only ``{"overlong_reply": length, "sha256": hex}``, read
back as the `OverlongReply` the audit was given the first time (every reader counts it
``too_long``, so a rerun gives the same figures); of a ``score`` or ``score_replies`` entry, the
list of floats, one per option or reply. The store is one SQLite file in WAL mode, written in
one ``BEGIN IMMEDIATE`` transaction per batch, so several pytest-xdist workers (or several
audits) can share it, and an audit killed at any point resumes from the last stored batch.

The cache is an optimisation, so a cache that cannot be used never stops an audit that can run
without it and never changes a figure (docs/reliability.md):

- **A wrong path** (the cache file, or its WAL or shared-memory companion, is a directory, a
  FIFO, a socket or a device; a part of its directory is not a directory) is a mistake in the
  command: `UserInputError` naming the path, before any model call and before anything is opened.
- **A cache that cannot be written** (read-only file or directory, full disk, locked beyond the
  busy timeout, I/O error) is read as far as it can be and not written: one
  `CacheUnavailableWarning`, and every answer it lacks is computed (a read-only directory is
  read with SQLite's ``immutable`` flag, the only way to read a WAL database there).
- **A cache that cannot be read** (cannot be created, opened, or a read fails) is not used at
  all: one `CacheUnavailableWarning`, and every answer is computed.
- **A file that is not a database** is moved aside with one `CacheCorruptionWarning` and a fresh
  cache starts (where it cannot be moved, the cache is not used, as above).
- **A row that is not what its kind stores** (not JSON, beyond the JSON reader's bounds, a
  number where a reply string belongs, a score list of the wrong length or type, a row larger
  than any value stored now, such as a reply an older version kept whole) is a miss:
  recomputed and overwritten, counted (``ResponseCache.rejected_rows``, and
  ``cache_rows_rejected`` in the model-call counts) and reported by one `CacheRowWarning`.

Each warning goes through sce_checks/notices.py: in an audit, one line of its summary and its
report's environment; a Python warning where the cache is used on its own.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import numbers
import sqlite3
import stat
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from sce_checks import notices, progress
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.base import (CallStats, Conversation, Decoding, scoring_temperature, supports_reply_scoring,
                                    supports_scoring, supports_tempered_scoring)
from sce_checks.notices import Notices
from sce_checks.parsing import MAX_REPLY_CHARS, OverlongReply, bounded_reply
from sce_checks.paths import cache_dir

__all__ = ["CacheCorruptionWarning", "CacheRowWarning", "CacheUnavailableWarning", "CacheWarning", "CachedModel",
           "ResponseCache", "cache_key", "check_cache_path"]

_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_CANTOPEN = 3, 8, 14
_BUSY_TIMEOUT_S = 60.0
_CHUNK = 500  # keys per SELECT, well under SQLite's bound-parameter limit
# no value stored now is longer: a reply within the reading bound, every character escaped (\uXXXX)
_MAX_ROW_BYTES = 6 * MAX_REPLY_CHARS + 1024


class CacheWarning(UserWarning):
    """The response cache could not be used as asked; the run goes on (module docstring)."""


class CacheCorruptionWarning(CacheWarning):
    """The cache file was not a valid SQLite database; it was moved aside and a fresh one made."""


class CacheUnavailableWarning(CacheWarning):
    """The cache cannot be read, or cannot be written: the run goes on without it, or without
    storing new answers."""


class CacheRowWarning(CacheWarning):
    """Entries of the cache did not hold what their kind stores; they were treated as misses."""


def cache_key(identity: Mapping[str, Any], kind: str, conversation: Conversation, params: Any) -> str:
    """sha256 of the canonical JSON of everything a deterministic answer depends on.

    ``params`` is ``Decoding.as_dict()`` for chat, the list of options for option scoring and
    the row's replies with ``complete`` for reply scoring (module docstring).
    """
    document = {"identity": identity, "kind": kind, "conversation": conversation, "params": params}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()  # a lone surrogate is text too


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    return None if code is None else code & 0xFF


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    # OperationalError ("database is locked", "disk I/O error") is a DatabaseError too: not ours.
    if isinstance(exc, sqlite3.OperationalError):
        return False
    code = _primary_code(exc)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text


def _is_read_only(exc: sqlite3.Error) -> bool:
    """The file or its folder cannot be written (or a new file cannot be made): worth reading
    what is there read-only."""
    code = _primary_code(exc)
    if code is not None:
        return code in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_CANTOPEN)
    text = str(exc).lower()
    return "readonly" in text or "unable to open" in text


def _why(exc: BaseException) -> str:
    """A short reason for a warning: SQLite's own words, or the OS error's."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _header_is_valid(path: Path) -> bool:
    """An absent or empty file is a valid (new) database; otherwise it must start with the header."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return True
    return head == b"" or head == _SQLITE_HEADER


def _dumps(value: Any) -> str | bytes:
    """A value as stored: JSON text, unicode as it is; where it holds a lone surrogate (valid in
    JSON, common from servers and byte-level tokenizers, but not UTF-8, so SQLite cannot take the
    text) its bytes with the surrogates encoded as they are ('surrogatepass'), which `_loads`
    reads back to the same string (escaping them would join two halves into one character)."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
    return text


def _loads(raw: bytes) -> Any:
    """A stored value (read as bytes): UTF-8, lone surrogates allowed; other bytes are a bad row."""
    return json.loads(raw.decode("utf-8", "surrogatepass"))


def _default_path() -> Path:
    return cache_dir() / "responses.sqlite"


def _kind(path: Path) -> str | None:
    """What is at ``path``: "file", "directory", None (nothing), or what else it is (a FIFO, a
    socket, a device), named without opening it (opening a FIFO blocks)."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # a part of its folder is missing, or a file: said below
        return None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def check_cache_path(path: Path | None = None) -> None:
    """Raise `UserInputError` when ``path`` (default: the default cache file) can never be a
    cache file: it is a directory or anything but a regular file (a FIFO would block the run),
    so is its WAL or shared-memory companion, or a part of its folder is not a directory. Opens
    and creates nothing, so the command line can check it before anything runs; what the file
    system refuses later is a warning, not an error (module docstring)."""
    path = Path(path) if path is not None else _default_path()
    fix = "give --cache-dir the directory that holds (or will hold) responses.sqlite, or --no-cache"
    try:
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            kind = _kind(file)
            if kind == "directory":
                raise UserInputError(f"response cache {file} is a directory, not a file: {fix}")
            if kind not in (None, "file"):
                raise UserInputError(f"response cache {file} is {kind}, not a regular file: {fix}")
        folder = next((p for p in path.parents if p.exists()), None)
        kind = None if folder is None else _kind(folder)
    except OSError:  # a folder that cannot be searched: opening the cache says so
        return
    if kind not in (None, "directory"):
        what = "a file" if kind == "file" else kind
        raise UserInputError(
            f"response cache {path}: {folder} is {what}, not a directory; give --cache-dir a directory, or --no-cache"
        )


class ResponseCache:
    """A key -> JSON value store in one SQLite file, safe for several processes at once.

    Values are reply strings or lists of floats; ``-inf`` and ``nan`` round-trip (Python's JSON
    writes them as ``-Infinity`` / ``NaN``). ``readable`` and ``writable`` say what is left of
    the cache after the faults of the module docstring; neither ever raises out of
    `get_many` or `put_many`. ``timeout`` (seconds) bounds each wait for another process's lock.
    """

    def __init__(self, path: Path | None = None, timeout: float = _BUSY_TIMEOUT_S) -> None:
        self.path = Path(path) if path is not None else _default_path()
        self.timeout = float(timeout)
        self.rejected_rows = 0
        self.readable = self.writable = False
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._read_only_why: str | None = None  # set when opened read-only: warned at the first skipped write
        self._warned: set[str] = set()
        self._open()

    # -- connection life cycle -------------------------------------------------------------------

    def _open(self) -> None:
        """Open the cache as well as the file system allows (module docstring)."""
        check_cache_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return self._disable(f"its directory cannot be created: {_why(exc)}")
        try:
            valid = _header_is_valid(self.path)
            if not valid:
                self._set_aside()
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc):
                return self._try(self._recover)
            if not _is_read_only(exc):
                return self._disable(_why(exc))
            return self._open_read_only(_why(exc))
        except OSError as exc:  # the file cannot be read, or cannot be moved aside
            return self._disable(_why(exc))
        self.readable = self.writable = True

    def _open_read_only(self, why: str) -> None:
        """Read what a read-only file or folder holds. ``mode=ro`` needs to make the WAL index
        beside the file; in a read-only folder only ``immutable`` reads it (nobody can write there)."""
        uri, last = self.path.absolute().as_uri(), ""
        for query in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(uri + query, uri=True, timeout=self.timeout, check_same_thread=False)
                try:
                    conn.execute("SELECT COUNT(*) FROM responses LIMIT 1").fetchone()
                except BaseException:
                    conn.close()
                    raise
            except sqlite3.DatabaseError as exc:
                last = _why(exc)
                continue
            self._conn, self.readable, self._read_only_why = conn, True, why
            return
        self._disable(f"{why}; read-only: {last}")

    def _connect(self) -> sqlite3.Connection:
        """Open and prepare the database. Switching a new file to WAL takes an exclusive lock
        that SQLite's busy handler does not wait for, so a process racing others to create the
        file retries here."""
        deadline = time.monotonic() + self.timeout
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
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
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
        self._warn("set aside", CacheCorruptionWarning(
            f"response cache {self.path} is not a valid SQLite database; moved it to {target} "
            "and started an empty cache"
        ))

    def _recover(self) -> None:
        """Called on a corruption error: close, set the file aside (unless another process already
        replaced it with a good one) and reconnect to a fresh database. A cache opened read-only
        is never moved: it is dropped instead."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._read_only_why is not None:
            raise sqlite3.DatabaseError("the read-only file is damaged (database disk image is malformed)")
        if not self._healthy():
            self._set_aside()
        self._conn = self._connect()
        self.readable = self.writable = True

    def _healthy(self) -> bool:
        if not _header_is_valid(self.path):
            return False
        try:
            probe = sqlite3.connect(self.path, timeout=self.timeout)
            try:
                return probe.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            finally:
                probe.close()
        except sqlite3.DatabaseError as exc:
            return not _is_corruption(exc)

    # -- faults ------------------------------------------------------------------------------------

    def _warn(self, what: str, warning: CacheWarning) -> None:
        """One warning of each ``what`` per cache: a fault is reported, not repeated per batch."""
        if what not in self._warned:
            self._warned.add(what)
            notices.warn(warning)

    def _disable(self, why: str) -> None:
        """Stop using the cache for this run: no reads, no writes."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        self.readable = self.writable = False
        self._warn("unused", CacheUnavailableWarning(
            f"response cache {self.path} cannot be used ({why}); this run goes on without it: "
            "every answer is computed and none is stored (--no-cache silences this)"
        ))

    def _stop_writing(self, why: str) -> None:
        """Keep reading what is stored, store nothing more in this run."""
        self.writable = False
        self._warn("unwritten", CacheUnavailableWarning(
            f"response cache {self.path} cannot be written ({why}); answers it holds are still used, "
            "new ones are computed but not stored, so a rerun computes them again"
        ))

    def _fault(self, exc: BaseException, writing: bool) -> None:
        """A read or write failed: a failed write stops the writes, anything that leaves no
        connection (a failed read, a failed recovery) stops the cache."""
        if writing and self._conn is not None:
            self._stop_writing(_why(exc))
        else:
            self._disable(_why(exc))

    def _try(self, action: Callable[[], None]) -> None:
        """Run a recovery step; if it fails too, the cache is not used."""
        try:
            action()
        except (sqlite3.DatabaseError, OSError) as exc:
            self._disable(_why(exc))

    def _run(self, work):
        """Run ``work(conn)`` under the lock; on corruption, recover once and run it again.
        Other SQLite and OS errors reach the caller, which decides what is left of the cache."""
        with self._lock:
            if self._conn is None:
                raise sqlite3.OperationalError("the cache is closed")
            try:
                return work(self._conn)
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    raise
                self._recover()
                return work(self._conn)

    # -- public API ------------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str], accept: Callable[[str, Any], Any] | None = None) -> dict[str, Any]:
        """The cached values of those ``keys`` that are present and usable.

        ``accept(key, value)`` returns the value to use, or raises ValueError (or TypeError) when
        the row does not hold what its kind stores; such rows, like rows that are not JSON, are
        left out (a miss), counted in ``rejected_rows`` and reported once. A read that fails
        turns the cache off for the run (one warning) and answers nothing."""
        wanted = list(dict.fromkeys(keys))
        if not wanted or not self.readable:
            return {}

        def work(conn: sqlite3.Connection) -> list[tuple[str, Any]]:
            rows: list[tuple[str, Any]] = []
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                # as bytes: a value that is not UTF-8 is a bad row, not an error of the whole query
                # a row past _MAX_ROW_BYTES (an older version stored over-long replies whole) is not read
                rows += conn.execute(
                    f"SELECT key, CASE WHEN length(CAST(value AS BLOB)) > {_MAX_ROW_BYTES} THEN NULL "
                    f"ELSE CAST(value AS BLOB) END FROM responses WHERE key IN ({marks})", chunk)
            return rows

        try:
            rows = self._run(work)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._fault(exc, writing=False)
            return {}
        found: dict[str, Any] = {}
        rejected: list[str] = []
        for key, raw in rows:
            try:
                if raw is None:
                    raise ValueError(f"over {_MAX_ROW_BYTES} bytes")
                value = _loads(raw)
                found[key] = accept(key, value) if accept is not None else value
            except (ValueError, TypeError, RecursionError, OverflowError) as exc:
                rejected.append(f"{key[:12]}: {' '.join(str(exc).split())[:120]}")
        if rejected:
            self.rejected_rows += len(rejected)
            self._warn("rows", CacheRowWarning(
                f"response cache {self.path}: {len(rejected)} entr{'y' if len(rejected) == 1 else 'ies'} unusable "
                f"(first: {rejected[0]}); treated as misses, recomputed and overwritten "
                "(later ones are counted, not reported)"
            ))
        return found

    def put_many(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Store values (JSON-serialisable) in one transaction; where the cache cannot be
        written, store nothing (one warning for the run)."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        rows = [(key, _dumps(value)) for key, value in pairs]
        if not rows:
            return
        if not self.writable:
            if self._read_only_why is not None:
                self._stop_writing(self._read_only_why)
            return

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock on upgrade
            try:
                conn.executemany("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk does); the first error is the news
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

        try:
            self._run(work)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._fault(exc, writing=True)

    def clear(self) -> None:
        """Delete every entry. The user asked for it: a cache that cannot be cleared is an error
        (the run must not quietly reuse what was meant to go)."""
        if not self.writable:
            with contextlib.suppress(OSError):
                if self._conn is None and not self.path.exists():
                    return  # nothing stored
            raise UserInputError(f"--clear-cache: the response cache {self.path} cannot be written; "
                                 "clear it by hand or use --no-cache")
        try:
            self._run(lambda conn: conn.execute("DELETE FROM responses"))
        except (sqlite3.DatabaseError, OSError) as exc:
            raise UserInputError(f"--clear-cache: cannot clear the response cache {self.path}: {_why(exc)}") from None

    def __len__(self) -> int:
        if not self.readable:
            return 0
        return int(self._run(lambda conn: conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self.readable = self.writable = False

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


def _score_row(row: Any, length: int) -> list[float] | None:
    """``row`` as floats when it is a list of ``length`` real numbers (not booleans), else None:
    the one shape of option and reply scores, from a backend or from the cache."""
    if not isinstance(row, (list, tuple)) or len(row) != length:
        return None
    if not all(isinstance(s, numbers.Real) and not isinstance(s, bool) for s in row):
        return None
    try:
        return [float(s) for s in row]
    except OverflowError:  # an integer beyond float range
        return None


_OVERLONG = "overlong_reply"  # the key of a stored `OverlongReply`: {"overlong_reply": length, "sha256": hex}


def _stored(value: Any) -> Any:
    """What is stored for an answer: an `OverlongReply` as its length and digest, anything else as it is."""
    if isinstance(value, OverlongReply):
        return {_OVERLONG: value.length, "sha256": value.sha256}
    return value


def _overlong(value: Any) -> OverlongReply | None:
    """The `OverlongReply` a stored marker stands for, or None when ``value`` is no such marker."""
    if not (isinstance(value, dict) and set(value) == {_OVERLONG, "sha256"}):
        return None
    length, digest = value[_OVERLONG], value["sha256"]
    if isinstance(length, int) and not isinstance(length, bool) and length > MAX_REPLY_CHARS and isinstance(digest, str):
        return OverlongReply(length, digest)
    return None


def _accept(kind: str, lengths: Mapping[str, int]) -> Callable[[str, Any], Any]:
    """What the cached value under a key of ``kind`` must be: a reply string, or as many scores
    as ``lengths[key]`` (options or replies)."""

    def accept(key: str, value: Any) -> Any:
        if kind == "chat":
            if isinstance(value, str):
                return value
            marker = _overlong(value)
            if marker is not None:
                return marker
            raise ValueError(f"a chat entry holds {type(value).__name__}, not a reply string")
        row = _score_row(value, lengths[key])
        if row is None:
            size = f" of {len(value)}" if isinstance(value, list) else ""
            raise ValueError(f"a {kind} entry holds {type(value).__name__}{size}, not a list of {lengths[key]} numbers")
        return row

    return accept


def _collected(method: Callable) -> Callable:
    """Run a `CachedModel` method with its run's `Notices` collecting (sce_checks/notices.py): what
    the cache and the backend warn about on the way lands in that run's summary."""
    @functools.wraps(method)
    def run(self: "CachedModel", *args: Any, **kwargs: Any) -> Any:
        with notices.collecting(self.notices):
            return method(self, *args, **kwargs)
    return run


class CachedModel:
    """Puts a `ResponseCache` in front of any backend.

    Deterministic chat requests and all option and reply scoring are answered from the cache
    where possible; only the misses go to the inner model, in one batched call, and their replies are
    stored at once (an interrupted audit resumes where it stopped). Identical conversations in
    one batch are sent once. Sampling requests without a seed bypass the cache. Scoring at a
    temperature other than 1 (``temperature=``) needs an inner model with tempered scoring and is
    keyed by its temperature. ``cache=None`` passes
    everything through (still counting calls in ``stats``). ``notices``: the run's collector of
    warnings, active during every request (None: the caller's, or Python warnings).
    """

    def __init__(self, inner: Any, cache: ResponseCache | None, notices: Notices | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.notices = notices
        self.stats = CallStats()
        self._identity: dict[str, Any] | None = None

    @_collected
    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            probe = getattr(self.inner, "identity", None)
            self._identity = dict(probe()) if callable(probe) else {"backend": type(self.inner).__name__}
        return dict(self._identity)

    @_collected
    def can_score(self) -> bool:
        return supports_scoring(self.inner)

    @_collected
    def can_score_replies(self) -> bool:
        return supports_reply_scoring(self.inner)

    @_collected
    def tempered_scoring(self) -> bool:
        """Whether the inner model scores at a temperature (sce_checks/models/base.py)."""
        return supports_tempered_scoring(self.inner)

    @_collected
    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        conversations = list(conversations)
        if self.cache is None or not decoding.deterministic:
            return self._send_chat(conversations, decoding)
        params = [decoding.as_dict()] * len(conversations)
        return self._cached("chat", conversations, params,
                            lambda todo: self._send_chat([conversations[i] for i in todo], decoding))

    @_collected
    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str],
                      temperature: float = 1.0) -> list[list[float]]:
        if not self.can_score():
            raise UserInputError(
                f"backend {self.identity().get('backend', type(self.inner).__name__)!r} offers no option "
                "scoring (score_options); use prediction mode 'generate' or 'auto'"
            )
        temperature = self._temperature(temperature)
        conversations, options = list(conversations), list(options)
        if self.cache is None:
            return self._send_scores(conversations, options, temperature)
        # A backend whose way of scoring changed (openai: prefill instead of the reply walk) names
        # its version, so scores computed the old way are not reused; unversioned keys stay as they
        # were. So do keys at temperature 1: a tempered score's key holds its temperature.
        version = getattr(self.inner, "scoring_version", None)
        params: Any = options
        if version is not None or temperature != 1.0:
            params = {"options": options, **self._score_params(version, temperature)}
        return self._cached("score", conversations, [params] * len(conversations),
                            lambda todo: self._send_scores([conversations[i] for i in todo], options, temperature),
                            [len(options)] * len(conversations))

    @_collected
    def score_replies(
        self, conversations: Sequence[Conversation], replies: Sequence[Sequence[str]], complete: bool = True,
        temperature: float = 1.0,
    ) -> list[list[float]]:
        """The scoring primitive (sce_checks/models/base.py), one cache entry per conversation
        and its row of replies (and its temperature, where it is not 1)."""
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
        temperature = self._temperature(temperature)
        if self.cache is None:
            return self._send_reply_scores(conversations, rows, complete, temperature)
        extra = self._score_params(getattr(self.inner, "scoring_version", None), temperature)
        params = [{"replies": row, "complete": complete, **extra} for row in rows]
        return self._cached(
            "score_replies", conversations, params,
            lambda todo: self._send_reply_scores([conversations[i] for i in todo], [rows[i] for i in todo], complete,
                                                 temperature),
            [len(row) for row in rows],
        )

    # -- internals -------------------------------------------------------------------------------

    def _temperature(self, temperature: Any) -> float:
        """A scoring call's temperature, checked; one other than 1 needs an inner model with
        tempered scoring (a one-line `UserInputError` otherwise)."""
        if temperature == 1.0 and not isinstance(temperature, bool):
            return 1.0
        temperature = scoring_temperature(temperature)
        if not self.tempered_scoring():
            raise UserInputError(
                f"backend {self.identity().get('backend', type(self.inner).__name__)!r} cannot score at a "
                f"temperature (asked for {temperature:g}): it declares no tempered_scoring (docs/writing-backends.md)"
            )
        return temperature

    @staticmethod
    def _score_params(version: Any, temperature: float) -> dict[str, Any]:
        """What a score key holds besides the options or replies: the backend's scoring version
        where it names one, the temperature where it is not 1 (keys at 1 are those of earlier
        versions)."""
        out: dict[str, Any] = {}
        if version is not None:
            out["scoring_version"] = version
        if temperature != 1.0:
            out["temperature"] = temperature
        return out

    def _cached(self, kind: str, conversations: list[Conversation], params: list[Any], send,
                lengths: list[int] | None = None) -> list:
        """Answers for ``conversations`` (``params[i]`` goes with ``conversations[i]``) from the
        cache; ``send(indices)`` computes the misses, each distinct key once. ``lengths[i]`` is
        the number of scores conversation i's entry must hold (score kinds); an entry that does
        not hold what its kind stores is a miss, overwritten with the fresh answer."""
        assert self.cache is not None
        identity = self.identity()
        keys = [cache_key(identity, kind, conv, p) for conv, p in zip(conversations, params)]
        rejected_before = self.cache.rejected_rows
        found = self.cache.get_many(keys, _accept(kind, dict(zip(keys, lengths or []))))
        if self.cache.rejected_rows > rejected_before:
            extra = self.stats.extra
            extra["cache_rows_rejected"] = extra.get("cache_rows_rejected", 0) + self.cache.rejected_rows - rejected_before
        todo: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key in found:
                self.stats.cache_hits += 1
            elif key not in todo:
                todo[key] = index
        progress.advance(len(keys) - len(todo))  # answered from the cache (or a duplicate)
        if todo:
            fresh = dict(zip(todo, send(list(todo.values()))))
            self.cache.put_many({key: _stored(value) for key, value in fresh.items()})
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
        # a reply over the reading bound is unparsed whatever it holds: pass on (and store) its marker
        return [bounded_reply(reply) for reply in replies]

    def _send_scores(self, conversations: list[Conversation], options: list[str],
                     temperature: float = 1.0) -> list[list[float]]:
        if not conversations:
            return []
        if temperature == 1.0:  # a backend without tempered scoring is asked as before
            rows = list(self.inner.score_options(conversations, options))
        else:
            rows = list(self.inner.score_options(conversations, options, temperature=temperature))
        return self._checked_scores("option", rows, [len(options)] * len(conversations))

    def _send_reply_scores(self, conversations: list[Conversation], rows: list[list[str]],
                           complete: bool, temperature: float = 1.0) -> list[list[float]]:
        if not conversations:
            return []
        if temperature == 1.0:
            scores = list(self.inner.score_replies(conversations, rows, complete))
        else:
            scores = list(self.inner.score_replies(conversations, rows, complete, temperature=temperature))
        return self._checked_scores("reply", scores, [len(replies) for replies in rows])

    def _checked_scores(self, kind: str, rows: list[Any], widths: list[int]) -> list[list[float]]:
        """The backend's score rows, counted, as lists of floats of the expected widths; a wrong
        count or a malformed row is the backend's error (never stored in the cache)."""
        self.stats.score_calls += 1
        self.stats.score_conversations += len(widths)
        if len(rows) != len(widths):
            raise BackendError(f"backend returned {len(rows)} score rows for {len(widths)} conversations")
        out: list[list[float]] = []
        for index, (row, width) in enumerate(zip(rows, widths)):
            floats = _score_row(list(row), width)
            if floats is None:
                raise BackendError(
                    f"backend returned malformed {kind} scores for conversation {index}: expected "
                    f"{width} numbers, got {list(row)!r}"
                )
            out.append(floats)
        return out

    def __repr__(self) -> str:
        return f"CachedModel({self.inner!r}, {self.cache!r})"

