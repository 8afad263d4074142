"""The labelled development set of issue 19: materialise ir/ vis/ labels/ from ../shared/data.

    python benchmarks/devset.py --out DIR [--split dev|held_out|all] [--conditions night,fog]
        [--shared PATH] [--list]

`benchmarks/devset/manifest.csv` names every frame: its stem, the source files under
../shared/data (IR and visible; for M3SVD the two videos and the frame index, read with OpenCV
frame by frame from the start, so no seeking can pick a neighbour), its condition tags
(night, dusk, glare, fog, distant, day) and its split: `dev` (tune on it) or `held_out`
(never tune on it; score on it). The boxes are YOLO txt files of the thermal image, drawn by
hand (`benchmarks/devset/labels/`, classes 0 person, 1 bicycle, 2 car as in
../shared/data/msrs_boxes), or, for the MSRS frames, the boxes shipped in ../shared.

DIR gets ir/<stem>.png (8-bit gray), vis/<stem>.png (BGR), labels/<stem>.txt and
labels/classes.txt, and manifest.csv (the chosen rows): every `sosmaskfuse` command and
../shared/tools/box_contrast.py can run on it. Only the selected split/conditions are written.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks" / "devset"
MANIFEST = HERE / "manifest.csv"
LABELS = HERE / "labels"
SHARED = ROOT.parent / "shared" / "data"
CONDITIONS = ("night", "dusk", "glare", "fog", "distant", "day")
SPLITS = ("dev", "held_out")
FIELDS = ("stem", "ir", "vis", "frame", "conditions", "split", "labels")


@dataclass(frozen=True)
class Frame:
    """One row of the manifest."""

    stem: str
    ir: str  # path under ../shared/data: an image or a video
    vis: str
    frame: int | None  # frame index for videos
    conditions: tuple[str, ...]
    split: str
    labels: str  # "" = benchmarks/devset/labels/<stem>.txt, else a path under ../shared/data

    def label_path(self, shared: Path) -> Path:
        """Where this frame's YOLO boxes are."""
        return shared / self.labels if self.labels else LABELS / f"{self.stem}.txt"


def read_manifest(path: Path = MANIFEST) -> list[Frame]:
    """The manifest's rows; ValueError naming the row for an unknown tag or split."""
    frames = []
    with open(path, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), 2):
            conditions = tuple(row["conditions"].split())
            bad = [c for c in conditions if c not in CONDITIONS]
            if bad or row["split"] not in SPLITS:
                raise ValueError(f"{path}:{i}: unknown condition {bad} or split {row['split']!r}")
            frames.append(
                Frame(
                    row["stem"],
                    row["ir"],
                    row["vis"],
                    int(row["frame"]) if row["frame"] else None,
                    conditions,
                    row["split"],
                    row["labels"],
                )
            )
    return frames


def video_frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    """The frames of a video at `indices`, decoded in order from the start (no seeking)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise OSError(f"{path}: cannot open the video")
    found, index = {}, 0
    while len(found) < len(indices):
        ok, image = cap.read()
        if not ok:
            break
        if index in indices:
            found[index] = image
        index += 1
    cap.release()
    missing = sorted(indices - set(found))
    if missing:
        raise ValueError(f"{path}: no frame {missing} (it has {index})")
    return found


def load_pairs(frames: list[Frame], shared: Path):
    """(frame, thermal image as 8-bit gray, visible image as BGR) for each of `frames`.

    Each video is decoded once, up to the last frame asked of it.
    """
    wanted: dict[str, set[int]] = {}
    for f in frames:
        if f.frame is not None:
            for video in (f.ir, f.vis):
                wanted.setdefault(video, set()).add(f.frame)
    by_video = {}
    for f in frames:
        if f.frame is None:
            ir, vis = (cv2.imread(str(shared / p), cv2.IMREAD_COLOR) for p in (f.ir, f.vis))
            for image, p in ((ir, f.ir), (vis, f.vis)):
                if image is None:
                    raise OSError(f"{shared / p}: cannot read the image")
        else:
            for video in (f.ir, f.vis):
                if video not in by_video:
                    by_video = {k: v for k, v in by_video.items() if k in (f.ir, f.vis)}
                    by_video[video] = video_frames(shared / video, wanted[video])
            ir, vis = by_video[f.ir][f.frame], by_video[f.vis][f.frame]
        yield f, cv2.cvtColor(ir, cv2.COLOR_BGR2GRAY), vis


def select(
    frames: list[Frame], split: str = "all", conditions: tuple[str, ...] = ()
) -> list[Frame]:
    """The frames of `split` ("all" for both) having any of `conditions` (all if empty)."""
    return [
        f
        for f in frames
        if split in ("all", f.split) and (not conditions or set(conditions) & set(f.conditions))
    ]


def materialise(frames: list[Frame], out: Path, shared: Path = SHARED) -> None:
    """Write ir/, vis/, labels/ and manifest.csv of `frames` under `out`."""
    for sub in ("ir", "vis", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(LABELS / "classes.txt", out / "labels" / "classes.txt")
    order = sorted(frames, key=lambda f: (f.ir, f.frame or 0))  # each video decoded once
    for i, (frame, ir, vis) in enumerate(load_pairs(order, shared), 1):
        if ir.shape != vis.shape[:2]:
            raise ValueError(f"{frame.stem}: IR {ir.shape} and visible {vis.shape} differ")
        cv2.imwrite(str(out / "ir" / f"{frame.stem}.png"), ir)
        cv2.imwrite(str(out / "vis" / f"{frame.stem}.png"), vis)
        shutil.copyfile(frame.label_path(shared), out / "labels" / f"{frame.stem}.txt")
        print(f"[{i}/{len(order)}] {frame.stem}", file=sys.stderr, flush=True)
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for f in frames:
            writer.writerow(
                [
                    f.stem,
                    f.ir,
                    f.vis,
                    "" if f.frame is None else f.frame,
                    " ".join(f.conditions),
                    f.split,
                    f.labels,
                ]
            )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, help="folder to write ir/ vis/ labels/ into")
    ap.add_argument("--split", choices=("all",) + SPLITS, default="all")
    ap.add_argument(
        "--conditions", default="", help=f"comma-separated, any of {', '.join(CONDITIONS)}"
    )
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    ap.add_argument("--list", action="store_true", help="print the selected rows and counts")
    args = ap.parse_args()
    conditions = tuple(c for c in args.conditions.split(",") if c)
    if set(conditions) - set(CONDITIONS):
        ap.error(f"--conditions: expected some of {', '.join(CONDITIONS)}")
    if not args.shared.is_dir():
        ap.error(f"{args.shared}: not a folder (the shared data is needed)")
    frames = select(read_manifest(), args.split, conditions)
    if args.list or not args.out:
        for f in frames:
            n = sum(1 for line in open(f.label_path(args.shared)) if line.strip())
            print(f"{f.stem:28} {f.split:9} {' '.join(f.conditions):22} {n} boxes")
        print(f"{len(frames)} frames")
        if not args.out:
            return 0
    materialise(frames, args.out, args.shared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
