"""A worker thread with a one-item, latest-wins slot: stale items are dropped, never queued.

The executor thread `offer`s each new item; if the worker is still busy with an earlier one,
an item already waiting in the slot is replaced (and counted as dropped). Latency is thus
bounded by one processing time, however fast the inputs arrive.

An exception from processing one item is logged with its traceback, counted (`failed`) and kept
(`errors`: the formatted tracebacks, oldest first, at most `MAX_ERRORS`); the worker goes on
with the next item. Tests assert that `errors` stayed empty.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_ERRORS = 100  # tracebacks kept; `failed` counts them all


class LatestWorker(Generic[T]):
    def __init__(self, process: Callable[[T], None], name: str = "worker") -> None:
        self._process = process
        self._cond = threading.Condition()
        self._slot: tuple[T] | None = None  # (item,) while one waits: T itself may be None
        self._stopping = False
        self.offered = 0
        self.dropped = 0
        self.processed = 0
        self.failed = 0
        self.errors: list[str] = []  # tracebacks of the exceptions processing raised
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, item: T) -> bool:
        """Hand over the newest item; returns False when it replaced an item still waiting."""
        with self._cond:
            self.offered += 1
            replaced = self._slot is not None
            if replaced:
                self.dropped += 1
            self._slot = (item,)
            self._cond.notify()
        return not replaced

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                slot, self._slot = self._slot, None
            assert slot is not None  # woken with an item, not to stop
            (item,) = slot
            try:
                self._process(item)
                self.processed += 1
            except Exception:  # the worker must outlive any one bad item
                if len(self.errors) < MAX_ERRORS:
                    self.errors.append(traceback.format_exc())
                self.failed += 1
                log.exception("processing failed")

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._slot is not None

    def stop(self, timeout: float | None = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)
