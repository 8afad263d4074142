"""A small progress display for long jobs: count, rate, ETA and a free-form status, on stderr."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class ProgressSink(Protocol):
    """What a job reports each item to: a `Progress` line, or a counter of the caller's."""

    total: int | None

    def step(self, status: str = "", ok: bool = True, n: int = 1) -> None: ...


class Progress:
    """A progress line on a stream; call `step()` once per item.

    On a terminal the line is redrawn in place; in a log, a line is printed at most every
    `interval` seconds (and for the last item), so CI logs stay short.
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        unit: str = "it",
        stream: TextIO | None = None,
        interval: float = 2.0,
        initial: int = 0,
    ) -> None:
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.1 if self.tty else interval
        self.count = self.initial = (
            initial  # a resumed job starts part-way; its rate counts new items only
        )
        self.failed = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def step(self, status: str = "", ok: bool = True, n: int = 1) -> None:
        self.count += n
        self.failed += 0 if ok else n
        now = time.perf_counter()
        if now - self._last >= self.interval or self.count == self.total or not ok:
            self._last = now
            self._draw(status, now)

    def _draw(self, status: str, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = (self.count - self.initial) / elapsed
        parts = [f"{self.label}: {self.count}" + (f"/{self.total}" if self.total else "")]
        if rate > 0:  # nothing done yet: no rate to show
            parts.append(
                f"{rate:.2f} {self.unit}/s" if rate >= 0.1 else f"{1 / rate:.1f} s/{self.unit}"
            )
        if self.total and rate > 0:
            parts.append(f"ETA {_clock(max(self.total - self.count, 0) / rate)}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if status:
            parts.append(status)
        line = "  ".join(parts)
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._last:  # a line was drawn: end it
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
