"""The per-pair stage: a synchronised thermal + visible pair (and mask) to the images to publish.

The ROS node, `sosmaskfuse bag` and `sosmaskfuse fuse` all fuse through a `PairStage`, so
"offline equals live" holds by construction: the same preparation (gain control, colour,
registration, size), the same checks, the same fusion and the same choice of output encodings.
Output headers are the visible frame's (`HEADER_FROM`): the fused image lies in the visible
camera's pixel grid. A stage is one stream: with `mask_smoothing` above 0 it smooths the masks
it computes over its pairs, in order (`thermal.temporal_mask.MaskSmoother`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, cast

import numpy as np

from sosmaskfuse_core.thermal.temporal_mask import MaskSmoother, MaskSmootherConfig

from .frames import FramePreparer, check_registration
from .fusion_pipeline import MIN_SIZE, FusionPipeline
from .stage_clock import StageClock

#: Which input's header (stamp and frame_id) the outputs carry.
HEADER_FROM = "visible"
MASK_ENCODING = "mono8"


@dataclass(frozen=True)
class Frame:
    """A decoded camera image in its own encoding (e.g. mono16 counts, rgb8), with its header.

    `header` is the message's (stamp and frame_id; what synchronisers pair by and what the
    outputs carry); None for images that came from files.
    """

    image: np.ndarray
    encoding: str
    header: Any = None


@dataclass
class PairOutputs:
    """What to publish for one pair: the fused image and the mask (None when not wanted)."""

    fused: np.ndarray
    fused_encoding: str  # mono8, or bgr8 with colour output
    mask: np.ndarray | None = None
    mask_encoding: str = MASK_ENCODING


@dataclass
class PreparedPair:
    """A pair ready for the pipeline: both images (and the mask) at the processing size."""

    thermal: np.ndarray
    visible: np.ndarray
    mask: np.ndarray | None = None

    @property
    def key(self) -> tuple:
        """Pairs with equal keys can share one pass."""
        return self.thermal.shape, self.visible.shape, self.mask is None


class PairStage:
    """Prepare, check and fuse synchronised pairs; thread-safe as the pipeline is.

    `with_mask` decides whether the mask is returned (node: publish_mask). `preparer` may be
    replaced between pairs (live gain-control changes) with `replace_preparer`.
    `mask_smoothing` (the setting of that name; 0 = off) smooths the computed masks over the
    stage's pairs in the order they are fused; masks given with the pairs are used as given.
    """

    def __init__(
        self,
        pipeline: FusionPipeline,
        preparer: FramePreparer | None = None,
        *,
        with_mask: bool = True,
        mask_smoothing: float = 0.0,
    ) -> None:
        self.pipeline = pipeline
        self.preparer = preparer or FramePreparer()
        self.with_mask = with_mask
        self.mask_smoothing = 0.0
        self.smoother: MaskSmoother | None = None
        self.set_mask_smoothing(mask_smoothing)
        self._registered: tuple | None = None  # the camera sizes the homography was checked on

    def set_mask_smoothing(self, weight: float) -> None:
        """Smooth computed masks with this weight of the past (0 = off); a new weight restarts."""
        if weight == self.mask_smoothing and (self.smoother is not None) == (weight > 0):
            return
        config = MaskSmootherConfig.from_setting(weight)  # ValueError for a bad weight
        self.smoother = MaskSmoother(config) if weight > 0 else None
        self.mask_smoothing = float(weight)

    def restart_stream(self) -> None:
        """The next pair starts a new stream (no smoothing across a gap or a new source)."""
        smoother = self.smoother
        if smoother is not None:
            smoother.reset()

    def replace_preparer(self, **changes) -> FramePreparer:
        """Swap in a preparer with some fields changed.

        It is one assignment: a pair in flight keeps the old preparer.
        """
        self.preparer = dataclasses.replace(self.preparer, **changes)
        return self.preparer

    # --- one pair -------------------------------------------------------------------------------

    def prepare(self, thermal: Frame, visible: Frame, mask: Frame | None = None) -> PreparedPair:
        """Both images (and the mask) in the visible camera's grid at the processing size.

        ValueError names the image and the problem (encoding, size, a mask that is not mono, a
        homography that maps the thermal frame off the visible one). The sizes are checked
        before anything is resized: a 1x1 frame is refused, not upscaled.
        """
        with self.clock("prepare"):
            return self._prepare(thermal, visible, mask)

    def _prepare(self, thermal: Frame, visible: Frame, mask: Frame | None) -> PreparedPair:
        sizes = {}
        least = max(MIN_SIZE, self.pipeline.autoencoder.config.min_size)
        for name, frame in (("thermal", thermal), ("visible", visible)):
            h, w = frame.image.shape[:2]
            if min(h, w) < least:
                raise ValueError(
                    f"{name} image: {w}x{h} is smaller than the {least}x{least} the "
                    "autoencoder needs"
                )
            sizes[name] = (w, h)
        homography = self.preparer.homography
        key = (sizes["thermal"], sizes["visible"], None if homography is None else id(homography))
        if key != self._registered:  # once per camera sizes: the per-frame path is not taxed
            check_registration(homography, sizes["thermal"], sizes["visible"])
            self._registered = key
        ir, vis = self.preparer.prepare(
            thermal.image, thermal.encoding, visible.image, visible.encoding
        )
        if min(vis.shape[:2]) < MIN_SIZE:  # the visible image sets the size of both
            raise ValueError(
                f"visible image: {visible.image.shape[1]}x{visible.image.shape[0]} gives "
                f"{vis.shape[1]}x{vis.shape[0]} to fuse, smaller than the "
                f"{MIN_SIZE}x{MIN_SIZE} the autoencoder needs"
            )
        given = None
        if mask is not None:
            if mask.image.ndim != 2 and mask.image.shape[2] != 1:
                raise ValueError(f"mask image: encoding {mask.encoding} is not single-channel")
            given = self.preparer.mask(
                mask.image.reshape(mask.image.shape[:2]),
                (visible.image.shape[1], visible.image.shape[0]),
            )
        # torch wants writable arrays; decoded messages are often read-only views on their buffers
        return PreparedPair(
            np.require(ir, requirements="W"),
            np.require(vis, requirements="W"),
            None if given is None else np.require(given, requirements="W"),
        )

    @property
    def clock(self) -> StageClock:
        """The clock of the per-pair path (the pipeline's): callers time their stages on it."""
        return self.pipeline.clock

    def __call__(self, thermal: Frame, visible: Frame, mask: Frame | None = None) -> PairOutputs:
        """Fuse one pair (ValueError or RuntimeError when it cannot be fused)."""
        return self.fuse([self.prepare(thermal, visible, mask)])[0]

    # --- several pairs ---------------------------------------------------------------------------

    def fuse(self, pairs: Sequence[PreparedPair]) -> list[PairOutputs]:
        """Fuse prepared pairs of one size in one pipeline pass."""
        with_mask = self.with_mask
        outputs = ("fused", "mask_u8") if with_mask else ("fused",)
        masks = [p.mask for p in pairs if p.mask is not None] or None
        smoother = self.smoother
        results = self.pipeline.fuse_batch(
            [p.thermal for p in pairs],
            [p.visible for p in pairs],
            masks,
            outputs=outputs,
            mask_filter=None if smoother is None else smoother.update_batch,
        )
        outs = []
        for r in results:  # NumPy in, NumPy out
            fused, mask = cast(np.ndarray, r.fused), cast(Optional[np.ndarray], r.mask_u8)
            outs.append(
                PairOutputs(
                    fused=fused,
                    fused_encoding="bgr8" if fused.ndim == 3 else "mono8",
                    mask=mask if with_mask else None,
                )
            )
        return outs

    def run(
        self, pairs: Sequence[tuple[Frame, Frame, Frame | None]]
    ) -> list[PairOutputs | Exception]:
        """Prepare and fuse many pairs, one pass per size.

        The result for a pair that cannot be prepared or fused is its exception (any
        Exception: a bad value, OpenCV's error, MemoryError), so one bad pair costs only itself;
        a group that fails is retried pair by pair.
        """
        results: list[PairOutputs | Exception | None] = [None] * len(pairs)
        groups: dict[tuple, list[tuple[int, PreparedPair]]] = {}
        for i, (thermal, visible, mask) in enumerate(pairs):
            try:
                prepared = self.prepare(thermal, visible, mask)
            except Exception as exc:  # one pair's problem, whatever it is
                results[i] = _named(exc)
                continue
            groups.setdefault(prepared.key, []).append((i, prepared))
        for members in groups.values():
            for i, out in self._fuse_group(members):
                results[i] = out
        return [r for r in results if r is not None]

    def _fuse_group(
        self, members: list[tuple[int, PreparedPair]]
    ) -> list[tuple[int, PairOutputs | Exception]]:
        try:
            return list(zip((i for i, _ in members), self.fuse([p for _, p in members])))
        except Exception as exc:  # one pair's problem, whatever it is
            if len(members) == 1:
                return [(members[0][0], _named(exc))]
        return [item for member in members for item in self._fuse_group([member])]


def _named(exc: Exception) -> Exception:
    """`exc`, or a RuntimeError naming its type when its message is empty (a bare MemoryError)."""
    return exc if str(exc) else RuntimeError(f"{type(exc).__name__} while fusing")
