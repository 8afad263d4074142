"""SOS network training data: thermal image + mask pairs, held-out splits, prepared batches."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from sosmaskfuse_core.formats.image_files import (
    ImageReadError,
    list_images,
    pair_by_stem,
    read_image,
)
from sosmaskfuse_core.pipeline.preprocessing import (
    resize_bilinear,
    sos_input,
)
from sosmaskfuse_core.training.data import DataError, split_holdout

from .config import SOSNetTrainConfig

log = logging.getLogger(__name__)


#: The two folder layouts, (thermal, mask) subfolder names (matched case-insensitively).
LAYOUTS = (("Inf", "GT"), ("ir", "mask"))


@dataclass
class MaskSample:
    """One thermal image and its mask, as read (uint8, H x W x C).

    C = 1 when the file's three channels are equal, which is what OpenCV's 3-channel read of a
    gray file gives.
    """

    stem: str
    thermal: np.ndarray
    mask: np.ndarray
    thermal_path: str = ""
    mask_path: str = ""
    weight: np.ndarray | None = None  # per-pixel loss weight x 255 (DIR/weight/<stem>), or None


@dataclass
class DataSet:
    folder: str
    layout: str
    samples: list[MaskSample]
    skipped: list[str] = field(default_factory=list)


def _subfolder(root: Path, name: str) -> Path | None:
    exact = root / name
    if exact.is_dir():
        return exact
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def find_pairs(root: str | Path) -> tuple[str, list[tuple[str, Path, Path]], list[str]]:
    """(layout, [(stem, thermal, mask)], skipped reasons) of a data folder; DataError if unusable.

    The layout is DIR/Inf + DIR/GT (ROAD) or DIR/ir + DIR/mask; files are matched by stem. A
    file without a partner is reported and skipped; it is an error only if no pair is left.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    for thermal_name, mask_name in LAYOUTS:
        thermal_dir, mask_dir = _subfolder(root, thermal_name), _subfolder(root, mask_name)
        if thermal_dir is None and mask_dir is None:
            continue
        if thermal_dir is None or mask_dir is None:
            have, missing = (
                (thermal_dir, mask_name) if mask_dir is None else (mask_dir, thermal_name)
            )
            assert have is not None  # not both are missing
            raise DataError(
                f"{root}: has {have.name}/ but no {missing}/ beside it "
                f"(expected {thermal_name}/ and {mask_name}/)"
            )
        break
    else:
        raise DataError(f"{root}: expected subfolders Inf/ and GT/ (ROAD layout) or ir/ and mask/")
    layout = f"{thermal_dir.name}/{mask_dir.name}"
    for folder in (thermal_dir, mask_dir):
        if not list_images(folder):
            raise DataError(f"{folder}: no image files")
    pairing = pair_by_stem(
        thermal_dir, mask_dir, names=(f"{thermal_dir.name}/", f"{mask_dir.name}/")
    )
    pairs = [(stem, thermal, mask) for stem, (thermal, mask) in pairing.pairs]
    skipped = [f"{path}: {reason}" for path, reason in pairing.unmatched]
    for reason in skipped:
        log.warning("skipped %s", reason)
    if not pairs:
        shown = "; ".join(skipped[:4]) + (
            f"; and {len(skipped) - 4} more" if len(skipped) > 4 else ""
        )
        raise DataError(f"{root}: no thermal image has a mask of the same name ({shown})")
    return layout, pairs, skipped


def _compact(image: np.ndarray) -> np.ndarray:
    """H x W x 3 -> H x W x 1 when the three channels are equal (a gray file read as BGR)."""
    if image.ndim == 2:
        return image[:, :, None]
    if (
        image.shape[2] == 3
        and np.array_equal(image[:, :, 0], image[:, :, 1])
        and np.array_equal(image[:, :, 0], image[:, :, 2])
    ):
        return image[:, :, :1].copy()
    return image


def read_samples(pairs: Sequence[tuple[str, Path, Path]]) -> tuple[list[MaskSample], list[str]]:
    """Read pairs as 3-channel BGR uint8 (OpenCV's imread default; 16-bit files become 8-bit).

    Unreadable files are skipped with the reason; a mask of another size than its image is kept
    (it is resized anyway, as the reference does) with a warning.
    """
    samples, skipped = [], []
    for stem, thermal_path, mask_path in pairs:
        try:
            thermal = read_image(thermal_path, cv2.IMREAD_COLOR)
            mask = read_image(mask_path, cv2.IMREAD_COLOR)
        except ImageReadError as exc:
            skipped.append(str(exc))
            log.warning("skipped %s", exc)
            continue
        if thermal.shape[:2] != mask.shape[:2]:
            log.warning(
                "%s is %dx%d but its mask %s is %dx%d; both are resized to the network size",
                thermal_path,
                thermal.shape[1],
                thermal.shape[0],
                mask_path,
                mask.shape[1],
                mask.shape[0],
            )
        samples.append(
            MaskSample(stem, _compact(thermal), _compact(mask), str(thermal_path), str(mask_path))
        )
    return samples, skipped


def read_weights(root: str | Path, samples: Sequence[MaskSample]) -> list[str]:
    """Attach DIR/weight/<stem>.* (8-bit, loss weight x 255) to the samples that have one.

    In place; a missing, unreadable or mis-sized weight map leaves that sample at weight 1 and
    is reported (the returned reasons).
    """
    folder = _subfolder(Path(root), "weight")
    if folder is None:
        return []
    files = {stem: paths[0] for stem, paths in list_images(folder).items()}
    problems = []
    for s in samples:
        path = files.get(s.stem)
        if path is None:
            problems.append(f"{s.thermal_path}: no weight map in {folder}; weight 1 everywhere")
            continue
        try:
            w = read_image(path, cv2.IMREAD_GRAYSCALE)
        except ImageReadError as exc:
            problems.append(f"{exc}; weight 1 everywhere")
            continue
        if w.shape[:2] != s.mask.shape[:2]:
            problems.append(
                f"{path}: {w.shape[1]}x{w.shape[0]}, its mask "
                f"{s.mask.shape[1]}x{s.mask.shape[0]}; weight 1 everywhere"
            )
            continue
        s.weight = w
    for p in problems:
        log.warning("%s", p)
    return problems


def load_folder(root: str | Path) -> DataSet:
    """The readable pairs of a data folder, with their weight maps where DIR/weight/ has them."""
    layout, pairs, skipped = find_pairs(root)
    samples, unreadable = read_samples(pairs)
    if not samples:
        raise DataError(f"{root}: no readable pairs ({'; '.join(unreadable[:3])})")
    problems = read_weights(root, samples)
    return DataSet(str(root), layout, samples, skipped + unreadable + problems)


def kfold_split(
    stems: Sequence[str], folds: int, fold: int, seed: int
) -> tuple[list[str], list[str]]:
    """(train stems, held-out stems) for fold `fold` of `folds`; deterministic.

    The stems, sorted and shuffled by `seed`, are cut into `folds` near-equal parts.
    """
    stems = sorted(stems)
    if folds < 2:
        raise ValueError(f"--folds {folds}: need at least 2")
    if not 0 <= fold < folds:
        raise ValueError(f"--fold {fold}: expected 0 .. {folds - 1}")
    if folds > len(stems):
        raise ValueError(f"--folds {folds}: only {len(stems)} image pairs")
    order = np.random.default_rng(seed).permutation(len(stems))
    held = {stems[i] for i in np.array_split(order, folds)[fold]}
    return [s for s in stems if s not in held], [s for s in stems if s in held]


def split_data(cfg: SOSNetTrainConfig) -> tuple[list[MaskSample], list[MaskSample], dict]:
    """Training and held-out samples per the config, and a summary for the metadata."""
    data = load_folder(cfg.data)
    summary: dict[str, Any] = {
        "folder": data.folder,
        "layout": data.layout,
        "skipped": list(data.skipped)[:1000],
    }
    if cfg.val_data:
        if cfg.folds is not None:
            raise ValueError("give either --val-data or --folds, not both")
        val = load_folder(cfg.val_data)
        train_samples, val_samples = data.samples, val.samples
        summary.update(split=f"held-out folder {val.folder}", val_folder=val.folder)
        summary["skipped"] = (summary["skipped"] + val.skipped)[:1000]
    elif cfg.folds is not None:
        if cfg.fold is None:
            raise ValueError("--folds needs --fold (0 .. K-1)")
        _, held = kfold_split([s.stem for s in data.samples], cfg.folds, cfg.fold, cfg.seed)
        held_set = set(held)
        train_samples = [s for s in data.samples if s.stem not in held_set]
        val_samples = [s for s in data.samples if s.stem in held_set]
        summary["split"] = f"fold {cfg.fold} of {cfg.folds} (seed {cfg.seed})"
    else:
        if cfg.fold is not None:
            raise ValueError("--fold needs --folds")
        if not 0.0 <= cfg.val_fraction < 1.0:
            raise ValueError(f"--val-fraction {cfg.val_fraction}: expected 0 <= f < 1")
        _, held_paths = split_holdout(
            [Path(s.stem) for s in data.samples], cfg.val_fraction, cfg.seed
        )
        held_set = {p.stem for p in held_paths}
        train_samples = [s for s in data.samples if s.stem not in held_set]
        val_samples = [s for s in data.samples if s.stem in held_set]
        summary["split"] = f"held-out fraction {cfg.val_fraction} (seed {cfg.seed})"
    if not train_samples:
        raise DataError(f"{cfg.data}: no training pairs left after holding out {len(val_samples)}")
    summary.update(
        train_pairs=len(train_samples),
        held_out_pairs=len(val_samples),
        train_stems=[s.stem for s in train_samples][:1000],
        held_out_stems=[s.stem for s in val_samples][:1000],
    )
    return train_samples, val_samples, summary


def prepare(sample: MaskSample, size_wh: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(network input 1 x H x W, soft target 1 x H x W) of a sample.

    As in docs/algorithm.md, section 3.
    """
    thermal = torch.from_numpy(np.ascontiguousarray(sample.thermal)).permute(2, 0, 1)[None]
    x = sos_input(thermal, size_wh)[0]
    mask = (
        torch.from_numpy(np.ascontiguousarray(sample.mask)).permute(2, 0, 1)[None].double() / 255.0
    )
    y = resize_bilinear(mask, (size_wh[1], size_wh[0])).mean(dim=1, keepdim=True)[0].float()
    return x, y


class PreparedSet:
    """Network inputs and targets of a list of samples, prepared once (or on demand when large)."""

    def __init__(
        self, samples: Sequence[MaskSample], size_wh: tuple[int, int], cache_bytes: int = 2 << 30
    ):
        self.samples = list(samples)
        width, height = size_wh
        self.size = (width, height)
        per_item = 2 * 4 * size_wh[0] * size_wh[1]
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = (
            {} if per_item * len(self.samples) <= cache_bytes else None
        )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        item = prepare(self.samples[i], self.size)
        if self.cache is not None:
            self.cache[i] = item
        return item


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> tuple[list[int], list[bool]]:
    """Sample indices and flips of batch `step`, a pure function of (n, batch_size, seed, step).

    Epochs are permutations of the training set (the last batch of an epoch may be short).
    """
    per_epoch = math.ceil(n / batch_size)
    epoch, i = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    idx = [int(k) for k in order[i * batch_size : (i + 1) * batch_size]]
    flips = (np.random.default_rng([seed, epoch, i, 1]).random(len(idx)) < 0.5).tolist()
    return idx, flips


def make_batch(
    data: PreparedSet, batch_size: int, seed: int, step: int, flip: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    idx, flips = batch_indices(len(data), batch_size, seed, step)
    xs, ys = [], []
    for k, f in zip(idx, flips):
        x, y = data[k]
        if flip and f:  # a horizontal flip commutes with the normalisation and the resize
            x, y = x.flip(-1), y.flip(-1)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)
