"""Warnings a user should read (an unusable response cache, a server without logprobs), said once
each, as one line of the audit's own output.

A backend or the cache calls `warn` with a warning object. While a run collects (`collecting`,
entered by the model the audit opened, sce_checks/models/opening.py, around every request), the
message is kept in that run's `Notices`, once: the pytest plugin prints each as
``sce-checks: warning: <message>`` in its terminal summary, the reports record them in the
environment (``environment["warnings"]``), and pytest-xdist workers send them to the controller
with their results (sce_checks/session.py). No Python warning is issued then, so pytest's
"warnings summary" does not show them again with a source path and a line of code.

Outside a collecting run (a backend used on its own) `warn` is Python's ``warnings.warn``, as
for any library. `run_audit` used from Python collects into ``AuditRun.environment["warnings"]``
AND issues each as a Python warning of its class (``Notices(echo=True)``), so
``warnings.filterwarnings`` and ``pytest.warns`` keep working for library users.

The collector is a context variable, like the progress bar (sce_checks/progress.py): requests
run in the thread that called the model, so a warning raised there finds it.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterable, Iterator

__all__ = ["Notices", "collecting", "warn"]

PREFIX = "sce-checks: warning: "

_current: ContextVar["Notices | None"] = ContextVar("sce_checks_notices", default=None)


class Notices:
    """The warnings of one run, in the order first seen, each once. ``echo``: also issue each new
    one as a Python warning (the Python API)."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self._lines: list[str] = []
        self._lock = threading.Lock()

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def add(self, message: str) -> bool:
        """Keep ``message`` (one line: its whitespace collapsed); False when it was already kept."""
        line = " ".join(str(message).split())
        with self._lock:
            if not line or line in self._lines:
                return False
            self._lines.append(line)
            return True

    def extend(self, messages: Iterable[str]) -> None:
        for message in messages:
            self.add(message)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __repr__(self) -> str:
        return f"Notices({self.lines!r})"


@contextmanager
def collecting(notices: Notices | None) -> Iterator[Notices | None]:
    """Send `warn` calls inside the block to ``notices``; None leaves the current collector (or
    none) in place."""
    if notices is None:
        yield _current.get()
        return
    token = _current.set(notices)
    try:
        yield notices
    finally:
        _current.reset(token)


def warn(warning: Warning) -> None:
    """Tell the user about ``warning`` once: into the collecting run's `Notices`, else (and also,
    where the run echoes) as a Python warning."""
    notices = _current.get()
    if notices is None:
        warnings.warn(warning, stacklevel=3)
    elif notices.add(str(warning)) and notices.echo:
        warnings.warn(warning, stacklevel=3)
