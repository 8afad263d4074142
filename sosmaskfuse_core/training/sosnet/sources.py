"""The thermal data sets (HIT-UAV, M3SVD, RoadScene, any VOC boxes) as SOS training folders.

Every source is written in the layout ``train-sosnet`` reads: ``OUT/<part>/ir/<stem>.png``,
``OUT/<part>/mask/<stem>.png`` (0 / 255) and ``OUT/<part>/weight/<stem>.png`` (the per-pixel
loss weight x 255; 0 = ignored). ``<part>`` is the authors' split for HIT-UAV (train, val,
test) and ``train`` / ``heldout`` for the others (whole videos, or a seeded fraction of the
frames, are held out). The masks come from :mod:`.pseudo_labels` and :mod:`.video_labels`.
One unreadable file or video is reported and skipped; it never stops the rest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from sosmaskfuse_core.formats.box_folder import BoxFolder
from sosmaskfuse_core.formats.image_files import (
    ImageReadError,
    list_images,
    natural_key,
    read_image,
    write_image,
)
from sosmaskfuse_core.formats.voc_boxes import BoxFileError

from .pseudo_labels import BoxLabelConfig, ImageLabelConfig, Label, box_label, image_label
from .video_labels import VideoLabelConfig, video_labels

log = logging.getLogger(__name__)

SOURCES = ("hit_uav", "m3svd", "roadscene", "boxes", "voc")  # voc: the old name of boxes
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


class SourceError(ValueError):
    """A data set folder that cannot be used (missing, empty, wrong layout)."""


@dataclass
class MakeReport:
    """What a conversion wrote and skipped, per part (also written as OUT/make_sos_data.json)."""

    source: str
    written: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def add(self, part: str) -> None:
        self.written[part] = self.written.get(part, 0) + 1

    def skip(self, reason: str) -> None:
        log.warning("skipped %s", reason)
        self.skipped.append(reason)


def write_sample(
    out: Path, part: str, stem: str, thermal: np.ndarray | Path, label: Label
) -> None:
    """Write one (thermal, mask, weight) triple; a thermal Path is copied byte for byte."""
    root = out / part
    if isinstance(thermal, Path):
        target = root / "ir" / f"{stem}{thermal.suffix.lower()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(thermal.read_bytes())
    else:
        write_image(root / "ir" / f"{stem}.png", thermal)
    write_image(root / "mask" / f"{stem}.png", label.mask)
    write_image(root / "weight" / f"{stem}.png", label.weight_u8())


# --- HIT-UAV -----------------------------------------------------------------------------------


def _split_lists(root: Path) -> dict[str, list[str]]:
    splits = {}
    for name in ("train", "val", "test"):
        f = root / f"{name}.txt"
        if f.is_file():
            splits[name] = [s.strip() for s in f.read_text().split() if s.strip()]
    return splits


def _images_by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder")
    files = {stem: paths[0] for stem, paths in list_images(folder).items()}
    if not files:
        raise SourceError(f"{folder}: no image files")
    return files


def make_hit_uav(
    root: str | Path,
    out: str | Path,
    config: BoxLabelConfig | None = None,
    parts: Sequence[str] = ("train", "val", "test"),
    limit: int | None = None,
) -> MakeReport:
    """HIT-UAV -> OUT/<split>/ (its ``images``, ``annotations`` and ``{train,val,test}.txt``).

    Images in no split list go to ``OUT/unsplit``; only ``parts`` are written.
    """
    root = Path(root)
    splits = _split_lists(root)
    if not splits:
        raise SourceError(f"{root}: no train.txt / val.txt / test.txt")
    return make_boxes(
        root / "images", root / "annotations", out, config, splits, parts, limit, "hit_uav"
    )


def make_boxes(
    image_dir: str | Path,
    ann_dir: str | Path,
    out: str | Path,
    config: BoxLabelConfig | None = None,
    splits: dict[str, list[str]] | None = None,
    parts: Sequence[str] | None = None,
    limit: int | None = None,
    source: str = "voc",
) -> MakeReport:
    """Images with boxes (``ann_dir``: VOC xml or YOLO txt + classes.txt) -> masks in OUT/<part>/.

    Without ``splits`` every annotated image goes to ``OUT/all`` (images without an annotation
    are left out); with them, to its split's part (``unsplit`` if in none), and a listed image
    without an annotation is reported.
    """
    out = Path(out)
    images = _images_by_stem(Path(image_dir))
    ann_dir = Path(ann_dir)
    if not ann_dir.is_dir():
        raise SourceError(f"{ann_dir}: no annotations folder")
    annotations = BoxFolder(ann_dir)
    part_of = {stem: part for part, stems in (splits or {}).items() for stem in stems}
    report = MakeReport(
        source, details={"config": asdict(config or BoxLabelConfig()), "fallbacks": 0, "boxes": 0}
    )
    done = 0
    for stem in sorted(images, key=natural_key):
        part = part_of.get(stem, "unsplit") if splits else "all"
        if parts is not None and part not in parts and splits:
            continue
        if limit is not None and done >= limit:
            break
        if stem not in annotations.files and not splits:
            continue
        try:
            if stem not in annotations.files:
                raise SourceError(f"{ann_dir}: no annotation for {images[stem].name}")
            image = read_image(images[stem], cv2.IMREAD_GRAYSCALE)
            boxes = annotations.read(stem, image.shape[1], image.shape[0])
        except (SourceError, BoxFileError, ImageReadError) as exc:
            report.skip(str(exc))
            continue
        label = box_label(image, boxes, config)
        write_sample(out, part, stem, images[stem], label)
        report.add(part)
        report.details["boxes"] += label.info["boxes"]
        report.details["fallbacks"] += label.info["fallbacks"]
        done += 1
    return report


# --- video -------------------------------------------------------------------------------------


def read_video_gray(path: str | Path, max_frames: int | None = None) -> list[np.ndarray]:
    """All frames of a video as 8-bit gray; SourceError if it cannot be opened or is empty."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"{path}: OpenCV cannot open this video")
    frames: list[np.ndarray] = []
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame)
    finally:
        cap.release()
    if not frames:
        raise SourceError(f"{path}: no frames could be decoded")
    return frames


def find_videos(folders: Iterable[str | Path]) -> list[Path]:
    found = []
    for folder in map(Path, folders):
        if folder.is_file() and folder.suffix.lower() in VIDEO_SUFFIXES:
            found.append(folder)
            continue
        if not folder.is_dir():
            raise SourceError(f"{folder}: not a folder or video")
        vids = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not vids:
            raise SourceError(f"{folder}: no videos ({', '.join(VIDEO_SUFFIXES)})")
        found.extend(vids)
    return found


def make_videos(
    folders: Sequence[str | Path],
    out: str | Path,
    hold_out: Sequence[str] = (),
    config: VideoLabelConfig | None = None,
    limit: int | None = None,
    agreement: Callable | None = None,
) -> MakeReport:
    """Static-camera thermal videos -> OUT/train, and OUT/heldout for the videos in ``hold_out``.

    Videos are named by file stem; sample stems are ``<video>_<frame index, 5 digits>``.
    """
    out = Path(out)
    cfg = config or VideoLabelConfig()
    videos = find_videos(folders)
    unknown = set(hold_out) - {v.stem for v in videos}
    if unknown:
        raise SourceError(
            f"--hold-out names videos that are not there: {', '.join(sorted(unknown))}"
        )
    report = MakeReport(
        "m3svd", details={"config": asdict(cfg), "videos": {}, "hold_out": sorted(hold_out)}
    )
    for video in videos:
        part = "heldout" if video.stem in hold_out else "train"
        try:
            frames = read_video_gray(video)
            labels = video_labels(frames, cfg, agreement)
        except (SourceError, ValueError) as exc:
            report.skip(f"{video}: {exc}")
            continue
        kept = 0
        for t, label in sorted(labels.items()):
            if limit is not None and kept >= limit:
                break
            write_sample(out, part, f"{video.stem}_{t:05d}", frames[t], label)
            report.add(part)
            kept += 1
        candidates = len(range(cfg.neighbour, len(frames) - cfg.neighbour, cfg.label_every))
        moving = [lb.info["moving_fraction"] for lb in labels.values()]
        report.details["videos"][video.stem] = {
            "part": part,
            "frames": len(frames),
            "labelled": kept,
            "skipped_moving": candidates - len(labels),
            "mean_moving_fraction": float(np.mean(moving)) if moving else None,
        }
        log.info("%s: %d frames, %d labelled (%s)", video.name, len(frames), kept, part)
    return report


# --- single frames -----------------------------------------------------------------------------


def make_frames(
    folder: str | Path,
    out: str | Path,
    held_fraction: float = 0.2,
    seed: int = 118,
    config: ImageLabelConfig | None = None,
    limit: int | None = None,
) -> MakeReport:
    """Frames (RoadScene ir/) -> OUT/train, and a seeded ``held_fraction`` -> OUT/heldout."""
    out = Path(out)
    if not 0.0 <= held_fraction < 1.0:
        raise SourceError(f"held-out fraction {held_fraction}: expected 0 <= f < 1")
    images = _images_by_stem(Path(folder))
    stems = sorted(images, key=natural_key)
    order = np.random.default_rng(seed).permutation(len(stems))
    held = {stems[i] for i in order[: int(round(held_fraction * len(stems)))]}
    report = MakeReport(
        "roadscene",
        details={
            "config": asdict(config or ImageLabelConfig()),
            "heldout_stems": sorted(held, key=natural_key),
        },
    )
    for stem in stems[:limit] if limit else stems:
        try:
            image = read_image(images[stem], cv2.IMREAD_GRAYSCALE)
        except ImageReadError as exc:
            report.skip(str(exc))
            continue
        label = image_label(image, config)
        part = "heldout" if stem in held else "train"
        write_sample(out, part, stem, images[stem], label)
        report.add(part)
    return report


def save_report(report: MakeReport, out: str | Path) -> Path:
    path = Path(out) / f"make_sos_data_{report.source}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=1))
    return path
