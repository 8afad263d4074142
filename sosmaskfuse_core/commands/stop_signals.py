"""SIGTERM and SIGHUP stop a command the way Ctrl-C does, so its output is closed, not lost.

`docker stop`, systemd and a dropped ssh session send SIGTERM or SIGHUP, whose default action
ends Python at once: a bag without index or metadata.yaml. Inside `StopSignals` the first of
SIGINT, SIGTERM and SIGHUP raises KeyboardInterrupt in the main thread (while `armed`), which
the jobs already handle by closing what they wrote; later ones are only noted, so a second
signal cannot cut the closing short. A signal ignored when the block starts (``nohup``, a
background job's SIGINT) stays ignored. The exit code after a signal is the shell's,
128 + its number: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Union

#: What `signal.signal` takes and returns: a function, SIG_DFL / SIG_IGN, or None.
Handler = Union[Callable[[int, Union[FrameType, None]], Any], int, signal.Handlers, None]

#: The signals that stop a job: Ctrl-C, a polite kill (docker stop, systemd), a lost terminal.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class StopSignals:
    """Context manager: the first stop signal raises KeyboardInterrupt; `exit_code` after it."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.armed = True
        self._previous: dict[int, Handler] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                current = signal.getsignal(sig)
                if current is signal.SIG_IGN:
                    continue  # nohup's SIGHUP, a background job's SIGINT: the caller's choice
                self._previous[sig] = current
                signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def disarm(self) -> None:
        """From now on a stop signal is only noted (e.g. while the finished output is renamed)."""
        self.armed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if first and self.armed:
            raise KeyboardInterrupt(signal.Signals(signum).name)

    @property
    def name(self) -> str:
        """The signal received (e.g. ``SIGTERM``), or "" when none came."""
        return signal.Signals(self.received).name if self.received is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 when none came: a KeyboardInterrupt from elsewhere)."""
        return 128 + (self.received if self.received is not None else signal.SIGINT)
