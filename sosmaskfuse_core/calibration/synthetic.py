"""Rigs with a known homography for tests and benchmarks: rendered boards, re-projected real pairs.

`render_board` draws a calibration board seen by a camera (anti-aliased, any polarity, blur and
noise), `board_views` a set of poses of one board seen by both cameras of a rig;
`project_pair` turns an aligned thermal/visible pair (RoadScene, TNO, M3SVD) into the frames a
rig with thermal->visible homography `h` would record, at the two cameras' own resolutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .board import BoardSpec
from .geometry import Size, apply

_SUPERSAMPLE = 3


def board_extent(spec: BoardSpec) -> np.ndarray:
    """The board's outer corners in board units (4 x 2): one unit of margin around the pattern."""
    w, h = spec.extent
    return np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])


def _pattern(spec: BoardSpec, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """1 where the board's print is dark, 0 where it is white (board units)."""
    m = spec.margin
    if spec.kind == "checkerboard":
        # (cols + 1) x (rows + 1) squares from (m, m); the inner corners are spec.points()
        su, sv = np.floor(u - m), np.floor(v - m)
        area = (su >= 0) & (su <= spec.cols) & (sv >= 0) & (sv <= spec.rows)
        return (area & ((su + sv) % 2 == 0)).astype(np.float32)
    # circles: centres at spec.points(), radius spec.circle_radius
    cu = np.clip(np.round(u - m), 0, spec.cols - 1) + m
    cv_ = np.clip(np.round(v - m), 0, spec.rows - 1) + m
    return ((u - cu) ** 2 + (v - cv_) ** 2 <= spec.circle_radius**2).astype(np.float32)


def render_board(
    spec: BoardSpec,
    board_to_image: np.ndarray,
    size: Size,
    *,
    dark: float = 30.0,
    light: float = 220.0,
    background: float = 128.0,
    blur_sigma: float = 0.0,
    noise_sigma: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """An 8-bit image of the board seen through `board_to_image` (board units -> pixels).

    `dark` and `light` are the gray levels of the print (swap them for a heated board seen by a
    thermal camera); the scene around the board is `background` with a gentle gradient.
    Rendered at 3x3 samples per pixel and averaged down, then blurred and given Gaussian noise.
    """
    w, h = size
    k = _SUPERSAMPLE
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    image = background + 20.0 * (xs / w - 0.5)  # the scene: a gentle gradient
    # the board's bounding box, rendered at k x k samples per pixel and averaged
    box = apply(board_to_image, board_extent(spec))
    x0, y0 = np.clip(np.floor(box.min(axis=0)).astype(int) - 2, 0, (w, h))
    x1, y1 = np.clip(np.ceil(box.max(axis=0)).astype(int) + 3, 0, (w, h))
    if x1 > x0 and y1 > y0:
        sy, sx = np.mgrid[y0 * k : y1 * k, x0 * k : x1 * k].astype(np.float64)
        pts = np.c_[(sx.ravel() + 0.5) / k - 0.5, (sy.ravel() + 0.5) / k - 0.5]
        uv = apply(np.linalg.inv(board_to_image), pts)
        u, v = uv[:, 0].reshape(sx.shape), uv[:, 1].reshape(sx.shape)
        wb, hb = spec.extent
        on_board = (u >= 0) & (u < wb) & (v >= 0) & (v < hb)
        scene = np.repeat(np.repeat(image[y0:y1, x0:x1], k, axis=0), k, axis=1)
        hi = np.where(on_board, light + (dark - light) * _pattern(spec, u, v), scene)
        image[y0:y1, x0:x1] = cv2.resize(
            hi.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA
        )
    if blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
    if noise_sigma > 0:
        rng = rng or np.random.default_rng(0)
        image = image + rng.normal(0.0, noise_sigma, image.shape).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class BoardView:
    """One pose of the board: where it lies in the thermal image, and both rendered images."""

    thermal: np.ndarray
    visible: np.ndarray
    board_to_thermal: np.ndarray


def board_views(
    spec: BoardSpec,
    h: np.ndarray,
    thermal: Size,
    visible: Size,
    *,
    poses: int = 5,
    heated: bool = True,
    blur_sigma: float = 1.0,
    noise_sigma: float = 3.0,
    seed: int = 0,
) -> list[BoardView]:
    """`poses` views of one board by a rig whose thermal->visible homography is `h`.

    The board fills 35-55% of the thermal image's width at a random place and tilt. `heated`:
    the print is bright in the thermal image (a heated or sun-warmed board), else dark.
    """
    rng = np.random.default_rng(seed)
    wb, hb = spec.extent
    views: list[BoardView] = []
    for _ in range(poses * 100):
        if len(views) == poses:
            break
        width = thermal[0] * rng.uniform(0.35, 0.55)
        height = width * hb / wb
        x0 = rng.uniform(0.05 * thermal[0], 0.95 * thermal[0] - width)
        y0 = rng.uniform(0.05 * thermal[1], 0.95 * thermal[1] - height)
        quad = np.array([[x0, y0], [x0 + width, y0], [x0 + width, y0 + height], [x0, y0 + height]])
        quad += rng.uniform(-0.06, 0.06, quad.shape) * width  # tilt: perspective
        seen = apply(h, quad)
        if not _inside(quad, thermal) or not _inside(seen, visible):
            continue
        to_thermal = cv2.getPerspectiveTransform(
            board_extent(spec).astype(np.float32), quad.astype(np.float32)
        )
        to_visible = h @ to_thermal
        ir_levels = (200.0, 110.0) if heated else (70.0, 140.0)  # (print, paper): low contrast
        views.append(
            BoardView(
                thermal=render_board(
                    spec,
                    to_thermal,
                    thermal,
                    dark=ir_levels[0],
                    light=ir_levels[1],
                    background=90.0,
                    blur_sigma=blur_sigma * 1.5,
                    noise_sigma=noise_sigma * 1.5,
                    rng=rng,
                ),
                visible=render_board(
                    spec,
                    to_visible,
                    visible,
                    blur_sigma=blur_sigma,
                    noise_sigma=noise_sigma,
                    rng=rng,
                ),
                board_to_thermal=to_thermal,
            )
        )
    return views


def _inside(points: np.ndarray, size: Size, margin: float = 4.0) -> bool:
    return bool(
        (points >= margin).all()
        and (points[:, 0] <= size[0] - 1 - margin).all()
        and (points[:, 1] <= size[1] - 1 - margin).all()
    )


def visible_region(original: Size, visible: Size, crop: float) -> np.ndarray:
    """Original pixels -> visible camera pixels: the visible camera sees the central region.

    The region has the visible image's aspect ratio and is `crop` times the largest such
    region of the original, so a thermal camera with a wider view still sees real pixels.
    """
    ow, oh = original
    aspect = visible[0] / visible[1]
    rw = min(ow, oh * aspect) * crop
    rh = rw / aspect
    f = visible[0] / rw
    x0, y0 = (ow - 1) / 2.0 - (rw - 1) / 2.0, (oh - 1) / 2.0 - (rh - 1) / 2.0
    # pixel centres: original x0 + (q + 0.5) / f - 0.5 ... as a resize of the region
    return np.array(
        [[f, 0.0, -f * x0 + 0.5 * f - 0.5], [0.0, f, -f * y0 + 0.5 * f - 0.5], [0.0, 0.0, 1.0]]
    )


def project_pair(
    ir: np.ndarray,
    vis: np.ndarray,
    h: np.ndarray,
    thermal: Size,
    visible: Size,
    *,
    crop: float = 0.6,
    thermal_blur: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The (thermal, visible) frames of a rig with homography `h`, made from an aligned pair.

    The visible camera sees the central `crop` of the pair (at `visible` resolution); the
    thermal camera sees what `h` says it sees, resampled from the aligned thermal image at
    `thermal` resolution (edge pixels reflected where it would look past the original).
    `thermal_blur`: Gaussian sigma (thermal pixels) for a softer thermal lens.
    """
    if ir.shape[:2] != vis.shape[:2]:
        raise ValueError("project_pair needs an aligned pair of one size")
    original = (ir.shape[1], ir.shape[0])
    to_visible = visible_region(original, visible, crop)
    f = to_visible[0, 0]
    if f < 1:  # the visible camera is coarser than the original: low-pass before sampling
        vis = cv2.GaussianBlur(vis, (0, 0), 0.5 / f)
    vis_img = cv2.warpAffine(vis, to_visible[:2], visible, flags=cv2.INTER_LINEAR)
    thermal_to_original = np.linalg.inv(to_visible) @ h
    ir_img = cv2.warpPerspective(
        ir,
        thermal_to_original,
        thermal,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    if thermal_blur > 0:
        ir_img = cv2.GaussianBlur(ir_img, (0, 0), thermal_blur)
    return ir_img, vis_img


#: The aligned sets of ../shared/data a test or benchmark can re-project (see `aligned_pairs`).
ALIGNED_SOURCES = ("m3svd", "roadscene", "tno")


def aligned_pairs(
    data: Path, source: str, count: int, size: Size = (640, 480), video: str = "0113_1714"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` aligned (thermal, visible) 8-bit gray pairs of one data set, at one `size`.

    `data`: the ../shared/data folder. m3svd: frames evenly spread over one video pair (its
    cameras are fixed, so the frames show one rig); roadscene and tno: pairs evenly spread
    over the set (each its own scene). FileNotFoundError when the set is absent.
    """
    if source == "m3svd":
        paths = [data / "m3svd_video" / kind / f"{video}.mp4" for kind in ("infrared", "visible")]
        return _video_pairs(paths, count, size)
    folders = {
        "roadscene": ("roadscene/ir", "roadscene/vis"),
        "tno": ("tno_masks/ir", "tno_masks/vis"),
    }
    if source not in folders:
        raise ValueError(f"source {source!r}: expected one of {', '.join(ALIGNED_SOURCES)}")
    ir_dir, vis_dir = (data / f for f in folders[source])
    stems = sorted(p.stem for p in ir_dir.iterdir()) if ir_dir.is_dir() else []
    if not stems:
        raise FileNotFoundError(f"{ir_dir}: no images")
    pairs = []
    for i in np.linspace(0, len(stems) - 1, min(count, len(stems))).round().astype(int):
        ir_path = next(ir_dir.glob(f"{stems[i]}.*"))
        vis_path = next(vis_dir.glob(f"{stems[i]}.*"))
        ir = cv2.imread(str(ir_path), cv2.IMREAD_GRAYSCALE)
        vis = cv2.imread(str(vis_path), cv2.IMREAD_GRAYSCALE)
        if ir is None or vis is None:
            raise FileNotFoundError(f"{ir_path} or {vis_path}: not readable")
        pairs.append(
            (
                np.asarray(cv2.resize(ir, size, interpolation=cv2.INTER_AREA)),
                np.asarray(cv2.resize(vis, size, interpolation=cv2.INTER_AREA)),
            )
        )
    return pairs


def _video_pairs(paths: list[Path], count: int, size: Size) -> list[tuple[np.ndarray, np.ndarray]]:
    caps = [cv2.VideoCapture(str(p)) for p in paths]
    if not all(p.is_file() and c.isOpened() for p, c in zip(paths, caps)):
        raise FileNotFoundError(f"{paths[0]} or {paths[1]}: no such video")
    n = int(min(c.get(cv2.CAP_PROP_FRAME_COUNT) for c in caps))
    wanted = set(np.linspace(0.05 * n, 0.95 * n - 1, count).round().astype(int).tolist())
    pairs = []
    for index in range(max(wanted) + 1):
        frames = [c.read()[1] for c in caps]
        if index in wanted and all(f is not None for f in frames):
            a, b = (
                cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), size, interpolation=cv2.INTER_AREA)
                for f in frames
            )
            pairs.append((np.asarray(a), np.asarray(b)))
    for c in caps:
        c.release()
    return pairs
