"""At most N requests in flight to one server, counted over every process on this machine.

``--concurrency N`` is a limit per *server*: what it can take without queueing or refusing
(llama.cpp's ``--parallel`` slots, a rate limit), not per Python process. With pytest-xdist
(``-n 4``) four workers each hold their own model object, and a per-process limit would let
4 x N requests through. So each request holds one of N *slots*, and a slot is an exclusive
``flock`` on one of N files in ``<cache dir>/slots/<hash of the base URL>/`` (the cache dir of
sce_checks/paths.py: ``$SCE_CHECKS_CACHE_DIR`` or the user's cache directory; ``--cache-dir``
moves only the response cache, so audits with different response caches still share slots):

- any process that uses the same cache directory (xdist workers, two audits started side by
  side) shares the same N slots; the kernel arbitrates, no server or daemon is involved;
- a process that dies, however it dies, releases its slots (the kernel drops its locks), so a
  crashed worker never leaks capacity, which a counter in a file or a named semaphore would;
- a process takes a slot only for one attempt of one request: backoff waits hold none;
- processes configured with different N share slots 0..N-1: each stays within its own N, and
  together they stay within the largest.

Why not divide N among the workers (N / workers each)? It needs the worker count (xdist's
``PYTEST_XDIST_WORKER_COUNT``, nothing for two separate audits), and it leaves capacity idle when
one worker runs out of work before the others, which is the common case at the end of a run. The
cost of locks is a few system calls per request, and a process waiting for another process's
slot polls every `POLL_S` seconds (one thread per process polls; the others wait on a condition
and are woken by a release in their own process), so a freed slot idles at most that long.

Where ``fcntl`` does not exist (Windows), or the directory cannot be created, the limit holds
per process only; `ServerSlots.shared` says which.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

POLL_S = 0.005

_POOLS: dict[tuple[str | None, str], "ServerSlots"] = {}
_POOLS_LOCK = threading.Lock()


def server_slots(base_url: str, root: Path | None) -> "ServerSlots":
    """The process-wide slots of ``base_url`` under ``root`` (None: this process only). One
    object per (root, URL) in a process, so its files are opened once, whatever the number of
    model objects."""
    key = (str(root) if root is not None else None, base_url)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ServerSlots(base_url, root)
        return pool


class ServerSlots:
    """The N slots of one server (module docstring). Thread-safe."""

    def __init__(self, base_url: str, root: Path | None) -> None:
        self.base_url = base_url
        self._cond = threading.Condition()
        self._held: set[int] = set()  # slots this process holds
        self._fds: dict[int, int] = {}
        self._polling = False
        self._root = root
        self._made = False
        self._dir: Path | None = None

    def _folder(self) -> Path | None:
        """The lock files' folder, made on the first request (a model that sends nothing leaves
        nothing behind); None when it cannot be made. Called with the condition held."""
        if not self._made:
            self._made = True
            if fcntl is not None and self._root is not None:
                folder = Path(self._root) / "slots" / hashlib.sha256(self.base_url.encode("utf-8")).hexdigest()[:24]
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / "url").write_text(self.base_url + "\n", encoding="utf-8")  # for a person who looks
                    self._dir = folder
                except OSError:
                    self._dir = None
        return self._dir

    @property
    def shared(self) -> bool:
        """True when the limit holds across processes (lock files), False when per process."""
        with self._cond:
            return self._folder() is not None

    @property
    def held(self) -> int:
        """Slots this process holds now."""
        with self._cond:
            return len(self._held)

    @contextmanager
    def slot(self, limit: int) -> Iterator[int]:
        """Hold one of slots 0..limit-1 for the duration of the block (waits for one)."""
        index = self.acquire(limit)
        try:
            yield index
        finally:
            self.release(index)

    def acquire(self, limit: int) -> int:
        with self._cond:
            while True:
                index = self._take(max(1, limit))
                if index is not None:
                    self._cond.notify()  # another waiter may now be the one that polls
                    return index
                if self._dir is not None and not self._polling:
                    self._polling = True  # other processes' releases wake nobody here: poll
                    try:
                        self._cond.wait(POLL_S)
                    finally:
                        self._polling = False
                else:
                    self._cond.wait()

    def release(self, index: int) -> None:
        with self._cond:
            if self._dir is not None:
                fcntl.flock(self._fds[index], fcntl.LOCK_UN)
            self._held.discard(index)
            self._cond.notify()

    def _take(self, limit: int) -> int | None:
        """A free slot below ``limit``, locked, or None. Called with the condition held."""
        self._folder()
        start = random.randrange(limit)  # processes scanning from different places collide less
        for k in range(limit):
            index = (start + k) % limit
            if index in self._held:
                continue
            if self._dir is not None:
                fd = self._fds.get(index)
                if fd is None:
                    try:
                        fd = self._fds[index] = os.open(self._dir / f"{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                    except OSError:
                        if not self._fds:  # no lock file can be made here: per process only
                            self._dir = None
                            self._held.add(index)
                            return index
                        continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # held by another process
                    continue
            self._held.add(index)
            return index
        return None
