"""The fusion node's `alignment` status: a pair in every N measured, off the fusion thread.

Once every `alignment_check_every` camera pairs (thermal/visible pairs made, fused or
dropped), the next pair fused is measured (the first after a reset at once): the pace follows
the cameras, and where fusion is slower than that, every fused pair is measured. After the
pair is published, the fusion thread hands its prepared images (`PairStage.prepare`'s: the
thermal frame already registered into the visible grid, both at the processing size, so
nothing is warped or resized again) to a worker of its own, which measures them
(`calibration.AlignmentWatch`: a few ms at 640x480) while the next pair fuses; a pair that
comes while it is still busy replaces the one waiting (`LatestWorker`).

The status, `<node>: alignment` while the node is active: WARN "thermal and visible are
misaligned by (dx, dy) px" while the median of the last readings is beyond
`alignment_max_shift` (visible camera pixels); OK with the shift while within it; OK "not
enough structure ..." when too few readings were informative (that is not a misalignment);
OK "measuring" before the first readings, "off" with `alignment_check_every` 0, and "not
measured" while no output has a subscriber (nothing is fused then). A new homography (set live,
or a new configure) empties the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sosmaskfuse_core.calibration import AlignmentWatch
from sosmaskfuse_core.pipeline.pair_stage import PreparedPair

from .diagnostics import OK, WARN, Summary
from .latest_worker import LatestWorker

#: (thermal wh, visible wh) of the cameras' own frames
Sizes = tuple[tuple[int, int], tuple[int, int]]


class AlignmentMonitor:
    """The `alignment` check of one node: cadence, worker thread, history, status."""

    def __init__(self) -> None:
        self.watch = AlignmentWatch()
        self.every = 0  # alignment_check_every (0 = off)
        self._next = 0  # the camera pair count at which the next pair fused is measured
        self.worker: LatestWorker[tuple] = LatestWorker(
            self._measure, name="sosmaskfuse-alignment"
        )

    def configure(self, values: Mapping[str, Any]) -> None:
        """Take alignment_check_every and alignment_max_shift (configure, or set live)."""
        self.every = int(values["alignment_check_every"])
        self.watch.max_shift = float(values["alignment_max_shift"])

    def reset(self, homography: np.ndarray | None) -> None:
        """Start a new history, for pairs registered with `homography` (the stage's array)."""
        self._next = 0
        self.watch.reset(homography)

    def pair_fused(
        self, prepared: PreparedPair, homography: np.ndarray | None, sizes: Sizes, pairs: int
    ) -> None:
        """A pair was fused and published (fusion thread): measure it if its turn has come.

        `homography`: the one it was registered with (another than the history's resets it);
        `pairs`: the camera pairs made so far (`NodeCounters.pairs`).
        """
        if homography is not self.watch.homography:
            self.reset(homography)
        if self.every <= 0 or pairs < self._next:
            return
        self._next = pairs + self.every
        self.worker.offer((prepared.thermal, prepared.visible, homography, *sizes))

    def _measure(self, item: tuple) -> None:
        self.watch.measure(*item)

    def summary(self, listening: bool) -> Summary:
        """The status: level, message and values (see the module docstring)."""
        watch, verdict = self.watch, self.watch.verdict()
        seconds = list(watch.seconds)
        shift = verdict.shift_xy
        values = {
            "shift x (px)": "" if shift is None else f"{shift[0]:+.2f}",
            "shift y (px)": "" if shift is None else f"{shift[1]:+.2f}",
            "shift (px)": "" if verdict.error_px is None else f"{verdict.error_px:.2f}",
            "score": "" if verdict.score is None else f"{verdict.score:.3f}",
            "readings used": f"{verdict.used} of {verdict.readings}",
            "alignment_max_shift (px)": f"{watch.max_shift:g}",
            "alignment_check_every": self.every,
            "readings taken": watch.measured,
            "check time (ms)": f"{1e3 * sum(seconds) / len(seconds):.1f}" if seconds else "",
            "homography": "none (thermal resized)" if watch.homography is None else "set",
        }
        if self.every <= 0:
            return OK, "off (alignment_check_every is 0)", values
        if not listening:
            return OK, "not measured: no subscriber on any output (not fusing)", values
        level = WARN if verdict.state == "misaligned" else OK
        return level, verdict.message, values

    def stop(self) -> None:
        self.worker.stop()
