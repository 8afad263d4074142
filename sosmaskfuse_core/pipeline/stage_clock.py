"""Wall time per stage of the per-pair path (decode, prepare, SOS network, ...), per pair.

A `StageClock` sums the time spent in each named stage and counts the pairs; `take()` returns
the mean milliseconds per pair of every stage since the last `take()`. A stage timed inside
another is taken out of the outer one's time (each stage's own time; the stages add up to the
whole). Every pipeline has one
(`FusionPipeline.clock`); the node, `sosmaskfuse bag` and the benchmarks time their own stages
(decode, encode, publish or write) on the same clock, so one table covers the whole path. The
node reports it in its diagnostics.

Timing costs two `perf_counter` calls a stage. On a GPU the pipeline's stages only enqueue
work: their times are the host's unless `synchronize` is set (the benchmarks set
`torch.cuda.synchronize`, which costs the overlap a live run has), so there the whole pair's
time is the one to trust.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The stages in the order a pair meets them (others are reported after these).
STAGES = (
    "read",
    "decode",
    "prepare",
    "load",
    "classical mask",
    "sos network",
    "mask smoothing",
    "autoencoder",
    "contrast guard",
    "output",
    "encode",
    "publish",
    "write",
)


class StageClock:
    """Sums wall time by stage name and counts pairs; thread-safe."""

    def __init__(self, synchronize: Callable[[], None] | None = None) -> None:
        self.synchronize = synchronize
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._pairs = 0
        self._open = threading.local()  # per thread: the inner stages' time of each open one

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        """Time the block as `stage`, less the stages timed inside it."""
        inner: list[float] = self._open.__dict__.setdefault("inner", [])
        inner.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.synchronize is not None:
                self.synchronize()
            elapsed = time.perf_counter() - start
            self.add(stage, elapsed - inner.pop())
            if inner:
                inner[-1] += elapsed

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds

    def pairs_done(self, count: int = 1) -> None:
        """`count` more pairs went through (the divisor of `take`)."""
        with self._lock:
            self._pairs += count

    def take(self) -> tuple[int, dict[str, float]]:
        """(pairs, mean ms per pair by stage) since the last call, in `STAGES` order; resets.

        With no pair done the stages' totals are returned as they are (ms).
        """
        with self._lock:
            seconds, pairs = self._seconds, self._pairs
            self._seconds, self._pairs = {}, 0
        order = {name: i for i, name in enumerate(STAGES)}
        names = sorted(seconds, key=lambda n: (order.get(n, len(STAGES)), n))
        return pairs, {n: 1000.0 * seconds[n] / max(pairs, 1) for n in names}


def stage_table(ms: dict[str, float]) -> str:
    """`decode 1.2, prepare 0.8, ...` (ms per pair), for logs and diagnostics."""
    return ", ".join(f"{name} {value:.1f}" for name, value in ms.items())
