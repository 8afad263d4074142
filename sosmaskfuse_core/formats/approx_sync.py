"""Pair messages of several streams by stamp, exactly as ROS 2 message_filters' ApproximateTime.

:class:`ApproximateTimeSync` reproduces the pairing of the Python
``message_filters.ApproximateTimeSynchronizer`` of ROS 2 Jazzy (with
``allow_headerless=False``): fed the same messages in the same order with the same
``queue_size`` and ``slop``, it emits the same tuples at the same moments. It needs
no rclpy, so a pip-installed fusion node and the offline rosbag tool can use it;
stamps are passed as integer nanoseconds (see :func:`stamp_to_ns`).

What happens when a message with stamp ``t`` arrives on input ``i``:

1. It is stored in input ``i``'s queue, keyed by ``t``. A message with the same stamp
   already queued there is replaced (the key keeps its original place in the queue).
2. While that queue holds more than ``queue_size`` messages, the one with the
   *smallest stamp* is dropped -- this may be the message that just arrived, if it
   came late; it then cannot be matched.
3. For every other input, the candidates are the queued stamps ``s`` with
   ``|s - t| <= slop``, ordered by ``|s - t|``; equal distances keep the order in
   which the stamps entered that queue. If some input has no candidate, nothing
   happens (the message waits in its queue).
4. Candidate combinations (one stamp per other input, plus ``t`` for input ``i``)
   are tried in lexicographic order of those lists, the lowest-numbered input varying
   slowest. The first combination whose spread ``max - min`` is *strictly* below
   ``slop`` wins: its messages are removed from their queues and emitted in input
   order. Nothing else is removed -- older unmatched messages stay queued until
   evicted by step 2.

``slop`` seconds become ``int(slop * 1e9)`` nanoseconds, truncated the way
``rclpy.duration.Duration(seconds=slop)`` does. Because the final test is strict, a
``slop`` of 0 never pairs anything, in message_filters as here.
"""

from __future__ import annotations

import itertools
import math
import operator
import threading
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, TypeVar

from sosmaskfuse_core.settings import table

NS_PER_SECOND = 1_000_000_000
#: Defaults of the node's and the bag tool's pairing (sync_queue_size, sync_slop in seconds).
DEFAULT_QUEUE_SIZE = table.default("sync_queue_size")
DEFAULT_SLOP = table.default("sync_slop")

MsgT = TypeVar("MsgT")


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a header stamp.

    Accepts ``builtin_interfaces/Time`` as rclpy or rosbags messages (``sec`` and
    ``nanosec``) and ``rclpy.time.Time`` (``nanoseconds``).
    """
    nanoseconds = getattr(stamp, "nanoseconds", None)
    if nanoseconds is not None:
        return int(nanoseconds)
    return int(stamp.sec) * NS_PER_SECOND + int(stamp.nanosec)


def slop_to_ns(slop: float) -> int:
    """``slop`` seconds in nanoseconds, truncated toward zero as rclpy's Duration does."""
    return int(slop * NS_PER_SECOND)


class ApproximateTimeSync(Generic[MsgT]):
    """Collect messages from ``num_inputs`` streams and emit approximately simultaneous sets.

    ``callback(*msgs)``, if given, is called with one message per input, in input
    order, for every matched set. It runs on the thread that called :meth:`add`,
    while the synchroniser's lock is held (so sets are delivered one at a time, in
    the order they were found, as in message_filters), after the set has left the
    queues; the lock is re-entrant, so the callback may call :meth:`add`.
    """

    def __init__(
        self,
        num_inputs: int = 2,
        queue_size: int = 10,
        slop: float = 0.1,
        callback: Optional[Callable[..., Any]] = None,
    ) -> None:
        if isinstance(num_inputs, bool) or not isinstance(num_inputs, int) or num_inputs < 1:
            raise ValueError(f"num_inputs must be an int >= 1; got {num_inputs!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an int >= 1; got {queue_size!r}")
        if (
            isinstance(slop, bool)
            or not isinstance(slop, (int, float))
            or not math.isfinite(slop)
            or slop < 0
        ):
            raise ValueError(f"slop must be a finite number of seconds >= 0; got {slop!r}")
        self._num_inputs = num_inputs
        self._queue_size = queue_size
        self._slop_ns = slop_to_ns(slop)
        self._callback = callback
        self._queues: List[Dict[int, MsgT]] = [{} for _ in range(num_inputs)]
        self._lock = threading.RLock()

    @property
    def num_inputs(self) -> int:
        return self._num_inputs

    @property
    def queue_size(self) -> int:
        return self._queue_size

    @property
    def slop_ns(self) -> int:
        return self._slop_ns

    def add(self, index: int, msg: MsgT, stamp_ns: int) -> Optional[Tuple[MsgT, ...]]:
        """Feed ``msg`` with stamp ``stamp_ns`` on input ``index``.

        Returns the matched set (one message per input) if this message completed one,
        else None. IndexError for a bad ``index``; TypeError for a non-integer stamp;
        ValueError for a negative one (rclpy cannot represent it either).
        """
        if not 0 <= index < self._num_inputs:
            raise IndexError(f"input index {index} out of range 0..{self._num_inputs - 1}")
        stamp_ns = operator.index(stamp_ns)
        if stamp_ns < 0:
            raise ValueError(f"stamp must not be negative; got {stamp_ns} ns")
        with self._lock:
            matched = self._store_and_match(index, msg, stamp_ns)
            if matched is not None and self._callback is not None:
                self._callback(*matched)
            return matched

    def add_msg(self, index: int, msg: MsgT) -> Optional[Tuple[MsgT, ...]]:
        """:meth:`add` with the stamp read from ``msg.header.stamp``."""
        return self.add(index, msg, stamp_to_ns(msg.header.stamp))  # type: ignore[attr-defined]

    def queued_stamps(self, index: int) -> List[int]:
        """Stamps waiting on input ``index``, oldest first."""
        with self._lock:
            return sorted(self._queues[index])

    def clear(self) -> None:
        """Drop every queued message (e.g. when the clock jumps back)."""
        with self._lock:
            for queue in self._queues:
                queue.clear()

    def _store_and_match(self, index: int, msg: MsgT, stamp: int) -> Optional[Tuple[MsgT, ...]]:
        queue = self._queues[index]
        queue[stamp] = msg
        while len(queue) > self._queue_size:
            del queue[min(queue)]
        if stamp not in queue:  # evicted at once: older than everything kept
            return None

        candidate_lists: List[List[int]] = []
        for other_index, other in enumerate(self._queues):
            if other_index == index:
                continue
            near = [s for s in other if abs(s - stamp) <= self._slop_ns]
            if not near:
                return None
            near.sort(key=lambda s: abs(s - stamp))  # stable: ties keep queue order
            candidate_lists.append(near)

        for others in itertools.product(*candidate_lists):
            stamps = [*others[:index], stamp, *others[index:]]
            if max(stamps) - min(stamps) < self._slop_ns:
                return tuple(q.pop(s) for q, s in zip(self._queues, stamps))
        return None
