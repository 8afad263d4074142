"""ApproximateTime pairing of the node's inputs: message_filters where installed, else our own.

Both backends pair with the same rules (`sosmaskfuse_core.formats.approx_sync` reimplements
message_filters' ApproximateTimeSynchronizer and is tested against it). Items fed in need a
`header.stamp`; the node feeds the pipeline's `Frame`s (image, encoding, header), decoded once,
so a bad message never gets paired.
"""

from __future__ import annotations

from typing import Callable

from sosmaskfuse_core.formats.approx_sync import ApproximateTimeSync
from sosmaskfuse_core.pipeline.pair_stage import Frame

BACKENDS = ("auto", "message_filters", "builtin")


class _BuiltinSync:
    name = "builtin"

    def __init__(
        self, num_inputs: int, queue_size: int, slop: float, callback: Callable[..., None]
    ) -> None:
        self._sync: ApproximateTimeSync[Frame] = ApproximateTimeSync(
            num_inputs, queue_size, slop, callback=callback
        )

    def add(self, index: int, frame: Frame) -> None:
        self._sync.add_msg(index, frame)


class _MessageFiltersSync:
    name = "message_filters"

    def __init__(
        self, num_inputs: int, queue_size: int, slop: float, callback: Callable[..., None]
    ) -> None:
        import message_filters

        self._inputs = [message_filters.SimpleFilter() for _ in range(num_inputs)]
        self._sync = message_filters.ApproximateTimeSynchronizer(self._inputs, queue_size, slop)
        self._sync.registerCallback(callback)

    def add(self, index: int, frame: Frame) -> None:
        self._inputs[index].signalMessage(frame)


def message_filters_available() -> bool:
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return False
    return True


def make_synchronizer(
    num_inputs: int,
    queue_size: int,
    slop: float,
    callback: Callable[..., None],
    backend: str = "auto",
):
    """A synchroniser with `.add(index, frame)` and `.name`; callback(frame_0, ..., frame_n-1)."""
    if backend not in BACKENDS:
        raise ValueError(f"sync backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "message_filters" or (backend == "auto" and message_filters_available()):
        return _MessageFiltersSync(num_inputs, queue_size, slop, callback)
    return _BuiltinSync(num_inputs, queue_size, slop, callback)
