"""Progress of long model runs: a bar that moves within a batched call.

A check opens a *step* around its model calls (``with step("income: predicting 298 inputs",
total=298):``); backends call `advance` after each sub-batch or request they finish. Nothing
is shown unless a caller installed a `ProgressBar` with `showing` (the pytest plugin does, writing
through pytest's terminal with output capture suspended), so the Python API stays silent.

On a terminal the bar redraws one line, never wider than the terminal; in a log (CI) it prints a
line when the step starts, at most one every ``log_every_s`` seconds while it runs, and one when
it ends. Either way its lines are lines of their own: the pytest plugin ends pytest's current
line before the first and writes it again after the last (sce_checks/session.py: `progress`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator

_current: ContextVar["ProgressBar | None"] = ContextVar("sce_checks_progress", default=None)


@dataclass
class _Step:
    label: str
    total: int | None
    done: int = 0
    started: float = 0.0
    last_shown: float = 0.0


class ProgressBar:
    """Renders steps. ``write_line(text)`` prints a whole line; ``rewrite(text)`` redraws the
    current line (None: not a terminal, log lines instead), whose text is kept within
    ``line_width`` characters by shortening the step's label (a line that wraps cannot be
    redrawn; the counts at its end are what changes)."""

    def __init__(self, write_line: Callable[[str], None], rewrite: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, log_every_s: float = 15.0, width: int = 24,
                 line_width: int | None = None) -> None:
        self.write_line, self.rewrite, self.clock = write_line, rewrite, clock
        self.log_every_s, self.width, self.line_width = log_every_s, width, line_width
        self._step: _Step | None = None

    def _line(self, label: str, tail: str) -> str:
        """``label + tail``, the label shortened with an ellipsis to fit ``line_width`` (redrawn
        lines only: a log line is kept whole)."""
        limit = self.line_width if self.rewrite is not None else None
        if limit is None or len(label) + len(tail) <= limit:
            return label + tail
        keep = max(limit - len(tail) - 1, 8)
        return (label[:keep] + "…" + tail)[:limit]

    def start(self, label: str, total: int | None) -> None:
        now = self.clock()
        self._step = _Step(label, total, 0, now, now)
        if self.rewrite is None:
            self.write_line(f"{label} ...")
        else:
            self.rewrite(self.render())

    def advance(self, n: int) -> None:
        s = self._step
        if s is None or n <= 0:
            return
        s.done += n
        now = self.clock()
        if self.rewrite is not None:
            if now - s.last_shown >= 0.1:
                s.last_shown = now
                self.rewrite(self.render())
        elif now - s.last_shown >= self.log_every_s:
            s.last_shown = now
            self.write_line(self.render())

    def finish(self) -> None:
        s = self._step
        if s is None:
            return
        line = self._line(s.label, f": done, {s.done} in {_duration(self.clock() - s.started)}")
        if self.rewrite is not None:
            self.rewrite(line)
            self.write_line("")
        else:
            self.write_line(line)
        self._step = None

    def render(self) -> str:
        s = self._step
        assert s is not None
        elapsed = self.clock() - s.started
        rate = s.done / elapsed if elapsed > 0 else 0.0
        speed = f"{rate:.1f}/s" if s.done else "starting"
        if not s.total:
            return self._line(s.label, f": {s.done} done, {speed}, {_duration(elapsed)}")
        frac = min(1.0, s.done / s.total)
        filled = int(round(frac * self.width))
        left = f", ~{_duration((s.total - s.done) / rate)} left" if rate > 0 and s.done < s.total else ""
        return self._line(s.label, f" [{'#' * filled}{'.' * (self.width - filled)}] {s.done}/{s.total} "
                                   f"({100 * frac:.0f}%), {speed}{left}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@contextmanager
def showing(bar: ProgressBar | None) -> Iterator[None]:
    """Install ``bar`` for the calls made inside the block (None: no progress shown)."""
    token = _current.set(bar)
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def step(label: str, total: int | None = None) -> Iterator[None]:
    """A stretch of model work of ``total`` units (conversations); None when not known ahead."""
    bar = _current.get()
    if bar is None or total == 0:  # nothing to show, or nothing to do
        yield
        return
    bar.start(label, total)
    try:
        yield
    finally:
        bar.finish()


def advance(n: int = 1) -> None:
    """Called by backends as units of work complete (in the calling thread)."""
    bar = _current.get()
    if bar is not None:
        bar.advance(n)
