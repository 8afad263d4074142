"""`sosmaskfuse train-sosnet`: train the SOS network (HRNetV2) to segment salient objects in thermal images.

The paper's settings are the defaults (ALGORITHM.md, section 3): thermal image read as
3-channel BGR, normalised, resized to 640 x 480 and collapsed to one channel; the ground
truth read as 3 channels, / 255, resized bilinearly and averaged to one channel (a soft
target); BCE-with-logits; SGD lr 1e-3, momentum 0.9, weight decay 5e-4, batch 4, 200 epochs,
lr / 10 at epochs 100 and 150, seed 118; HRNetV2-W30, optionally initialised from an ImageNet
HRNetV2-W30 checkpoint (`--init`, stem conv averaged to one input channel, classifier head
dropped, `last_layer` from PyTorch's default initialisation). Every setting can be changed.

Not from the paper: random horizontal flips (on by default, `--no-flip` turns them off; the
paper does not say whether it augments), the held-out validation (IoU, F-measure with
beta^2 = 0.3 and MAE, the probability thresholded at 0.5, at the mask's own resolution) and
the lighter networks for CPU training (`--config small`, `--width N`, ...).

Data folders: DIR/Inf + DIR/GT (the ROAD layout, same file names) or DIR/ir + DIR/mask,
matched by file stem. A file without a partner is reported by name and skipped.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .. import checkpoints, mask_metrics
from ..checkpoints import CheckpointError
from ..devices import resolve_device
from ..image_files import IMAGE_SUFFIXES, ImageReadError, read_image
from ..models.sos_hrnet import HRNetConfig, SOSNet
from ..preprocessing import PAPER_SOS_SIZE, logit_to_probability, resize_bilinear, sos_input
from ..progress import Progress
from . import runner
from .data import DataError, split_holdout

log = logging.getLogger(__name__)

#: The two folder layouts, (thermal, mask) subfolder names (matched case-insensitively).
LAYOUTS = (("Inf", "GT"), ("ir", "mask"))

#: Keys of an ImageNet HRNet classification checkpoint that have no place in the SOS network.
IMAGENET_HEAD_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")

#: Architecture presets. "paper" is HRNetV2-W30 exactly (HRNetConfig's defaults); "small" is a
#: lighter HRNetV2 for CPU training: a 32-channel stem, one bottleneck, one module per stage
#: and two blocks per branch (with width 18 about 1.9 M parameters instead of 26 M).
PRESETS = {
    "paper": {"width": 30, "stem_channels": 64, "layer1_blocks": 4, "stage_modules": (1, 4, 3),
              "blocks_per_branch": 4},
    "small": {"width": 18, "stem_channels": 32, "layer1_blocks": 1, "stage_modules": (1, 1, 1),
              "blocks_per_branch": 2},
}


@dataclass
class SOSNetTrainConfig:
    """Every setting of a run; stored in the checkpoint's metadata."""

    data: str
    val_data: str | None = None
    val_fraction: float = 0.1
    folds: int | None = None  # k-fold cross-validation: hold out fold `fold` (0 .. folds-1)
    fold: int | None = None
    size: tuple[int, int] = PAPER_SOS_SIZE  # network input, width x height
    # Architecture: None everywhere means the paper's W30, or the architecture of the file
    # given to --init / --resume when that file is one of ours.
    config: str | None = None  # a PRESETS name
    width: int | None = None  # branch widths (w, 2w, 4w, 8w)
    stem_channels: int | None = None
    layer1_blocks: int | None = None
    stage_modules: tuple[int, int, int] | None = None
    blocks_per_branch: int | None = None
    init: str | None = None
    flip: bool = True
    batch_size: int = 4
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 200
    milestones: tuple[int, ...] = (100, 150)
    lr_gamma: float = 0.1
    pos_weight: float | None = None  # BCE weight of the salient class; None = the paper's plain BCE
    val_every: int = 1  # epochs
    checkpoint_every: int = 200  # steps (also at every validation and at the end)
    seed: int = 118
    device: str = "auto"
    amp: bool = True

    def architecture_given(self) -> bool:
        return any(v is not None for v in (self.config, self.width, self.stem_channels, self.layer1_blocks,
                                            self.stage_modules, self.blocks_per_branch))

    def plain(self) -> dict:
        """The settings as plain data (lists, no tuples) for the checkpoint's metadata."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def hrnet_config(preset: str | None = None, width: int | None = None, stem_channels: int | None = None,
                 layer1_blocks: int | None = None, stage_modules: Sequence[int] | None = None,
                 blocks_per_branch: int | None = None) -> HRNetConfig:
    """An HRNetV2 config from a preset ("paper" = W30, "small") with any field overridden.

    `width` w gives branches (w, 2w) / (w, 2w, 4w) / (w, 2w, 4w, 8w), as HRNetV2-W18/W30/W48.
    """
    if preset is None:
        preset = "paper"
    if preset not in PRESETS:
        raise ValueError(f"config {preset!r}: expected one of {', '.join(PRESETS)}")
    p = dict(PRESETS[preset])
    for key, value in (("width", width), ("stem_channels", stem_channels), ("layer1_blocks", layer1_blocks),
                       ("stage_modules", stage_modules), ("blocks_per_branch", blocks_per_branch)):
        if value is not None:
            p[key] = value
    w = int(p["width"])
    if w < 1 or p["stem_channels"] < 1 or p["layer1_blocks"] < 1 or p["blocks_per_branch"] < 1:
        raise ValueError("width, stem channels and block counts must be positive")
    modules = tuple(int(m) for m in p["stage_modules"])
    if len(modules) != 3 or min(modules) < 1:
        raise ValueError(f"stage_modules {p['stage_modules']!r}: expected three positive counts")
    return HRNetConfig(stem_channels=int(p["stem_channels"]), layer1_blocks=int(p["layer1_blocks"]),
                       stage_channels=((w, 2 * w), (w, 2 * w, 4 * w), (w, 2 * w, 4 * w, 8 * w)),
                       stage_modules=modules, blocks_per_branch=int(p["blocks_per_branch"]))


# --- data -----------------------------------------------------------------------------------

@dataclass
class MaskSample:
    """One thermal image and its mask, as read (uint8, H x W x C; C = 1 when the file's three
    channels are equal, which is what OpenCV's 3-channel read of a gray file gives)."""

    stem: str
    thermal: np.ndarray
    mask: np.ndarray
    thermal_path: str = ""
    mask_path: str = ""


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
            have, missing = (thermal_dir, mask_name) if mask_dir is None else (mask_dir, thermal_name)
            raise DataError(f"{root}: has {have.name}/ but no {missing}/ beside it "
                            f"(expected {thermal_name}/ and {mask_name}/)")
        break
    else:
        raise DataError(f"{root}: expected subfolders Inf/ and GT/ (ROAD layout) or ir/ and mask/")
    layout = f"{thermal_dir.name}/{mask_dir.name}"
    listings = []
    for folder in (thermal_dir, mask_dir):
        files: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
                files.setdefault(path.stem, path)
        if not files:
            raise DataError(f"{folder}: no image files")
        listings.append(files)
    thermals, masks = listings
    pairs, skipped = [], []
    for stem in sorted(set(thermals) | set(masks)):
        if stem in thermals and stem in masks:
            pairs.append((stem, thermals[stem], masks[stem]))
        elif stem in thermals:
            skipped.append(f"{thermals[stem]}: no mask of that name in {mask_dir}")
        else:
            skipped.append(f"{masks[stem]}: no thermal image of that name in {thermal_dir}")
    for reason in skipped:
        log.warning("skipped %s", reason)
    if not pairs:
        shown = "; ".join(skipped[:4]) + (f"; and {len(skipped) - 4} more" if len(skipped) > 4 else "")
        raise DataError(f"{root}: no thermal image has a mask of the same name ({shown})")
    return layout, pairs, skipped


def _compact(image: np.ndarray) -> np.ndarray:
    """H x W x 3 -> H x W x 1 when the three channels are equal (a gray file read as BGR)."""
    if image.ndim == 2:
        return image[:, :, None]
    if image.shape[2] == 3 and np.array_equal(image[:, :, 0], image[:, :, 1]) and \
            np.array_equal(image[:, :, 0], image[:, :, 2]):
        return image[:, :, :1].copy()
    return image


def read_samples(pairs: Sequence[tuple[str, Path, Path]]) -> tuple[list[MaskSample], list[str]]:
    """Read pairs as 3-channel BGR uint8 (OpenCV's imread default; 16-bit files become 8-bit).
    Unreadable files are skipped with the reason; a mask of another size than its image is kept
    (it is resized anyway, as the reference does) with a warning."""
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
            log.warning("%s is %dx%d but its mask %s is %dx%d; both are resized to the network size",
                        thermal_path, thermal.shape[1], thermal.shape[0], mask_path, mask.shape[1], mask.shape[0])
        samples.append(MaskSample(stem, _compact(thermal), _compact(mask), str(thermal_path), str(mask_path)))
    return samples, skipped


def load_folder(root: str | Path) -> DataSet:
    layout, pairs, skipped = find_pairs(root)
    samples, unreadable = read_samples(pairs)
    if not samples:
        raise DataError(f"{root}: no readable pairs ({'; '.join(unreadable[:3])})")
    return DataSet(str(root), layout, samples, skipped + unreadable)


def kfold_split(stems: Sequence[str], folds: int, fold: int, seed: int) -> tuple[list[str], list[str]]:
    """(train stems, held-out stems) for fold `fold` of `folds`: the stems, sorted and shuffled
    by `seed`, cut into `folds` near-equal parts; deterministic."""
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
    summary = {"folder": data.folder, "layout": data.layout, "skipped": list(data.skipped)[:1000]}
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
        _, held_paths = split_holdout([Path(s.stem) for s in data.samples], cfg.val_fraction, cfg.seed)
        held_set = {p.stem for p in held_paths}
        train_samples = [s for s in data.samples if s.stem not in held_set]
        val_samples = [s for s in data.samples if s.stem in held_set]
        summary["split"] = f"held-out fraction {cfg.val_fraction} (seed {cfg.seed})"
    if not train_samples:
        raise DataError(f"{cfg.data}: no training pairs left after holding out {len(val_samples)}")
    summary.update(train_pairs=len(train_samples), held_out_pairs=len(val_samples),
                   train_stems=[s.stem for s in train_samples][:1000],
                   held_out_stems=[s.stem for s in val_samples][:1000])
    return train_samples, val_samples, summary


def prepare(sample: MaskSample, size_wh: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(network input 1 x H x W, soft target 1 x H x W) of a sample, as in ALGORITHM.md section 3."""
    thermal = torch.from_numpy(np.ascontiguousarray(sample.thermal)).permute(2, 0, 1)[None]
    x = sos_input(thermal, size_wh)[0]
    mask = torch.from_numpy(np.ascontiguousarray(sample.mask)).permute(2, 0, 1)[None].double() / 255.0
    y = resize_bilinear(mask, (size_wh[1], size_wh[0])).mean(dim=1, keepdim=True)[0].float()
    return x, y


class PreparedSet:
    """Network inputs and targets of a list of samples, prepared once (or on demand when large)."""

    def __init__(self, samples: Sequence[MaskSample], size_wh: tuple[int, int], cache_bytes: int = 2 << 30):
        self.samples = list(samples)
        self.size = tuple(size_wh)
        per_item = 2 * 4 * size_wh[0] * size_wh[1]
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = \
            {} if per_item * len(self.samples) <= cache_bytes else None

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
    """Sample indices and flips of batch `step`: epochs are permutations of the training set
    (the last batch of an epoch may be short), a pure function of (n, batch_size, seed, step)."""
    per_epoch = math.ceil(n / batch_size)
    epoch, i = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    idx = [int(k) for k in order[i * batch_size:(i + 1) * batch_size]]
    flips = (np.random.default_rng([seed, epoch, i, 1]).random(len(idx)) < 0.5).tolist()
    return idx, flips


def make_batch(data: PreparedSet, batch_size: int, seed: int, step: int, flip: bool
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


# --- loss and mask quality --------------------------------------------------------------------

def sos_loss(logit: torch.Tensor, target: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """BCE-with-logits against the soft target (the paper's loss), mean over pixels."""
    pw = None if pos_weight is None else torch.tensor(pos_weight, device=logit.device, dtype=torch.float32)
    return F.binary_cross_entropy_with_logits(logit.float(), target.float(), pos_weight=pw)


def mask_quality(model: SOSNet, samples: Sequence[MaskSample], size_wh: tuple[int, int], device: torch.device,
                 amp: bool = False, threshold: float = 0.5) -> dict:
    """Mean IoU, F-measure (beta^2 = 0.3) and MAE of the predicted masks against the held-out masks,
    at each mask's own resolution (the logit upsampled as at inference), and per image.

    The conventions are `mask_metrics`' (as `sosmaskfuse eval-mask` scores the classical mask):
    IoU and F on the probability thresholded at `threshold` against the mask at >= 0.5, MAE on
    the probability against the mask / 255."""
    per_image: dict[str, dict[str, float]] = {}
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for s in samples:
            x = prepare(s, size_wh)[0][None].to(device)
            with runner.amp_context(device, amp):
                logit = model(x)
            prob = logit_to_probability(logit, s.mask.shape[:2])[0, 0].cpu().numpy()
            soft_gt = s.mask.astype(np.float64).mean(axis=2) / 255.0
            gt = soft_gt >= 0.5
            pred = prob >= threshold
            per_image[s.stem] = {"iou": mask_metrics.iou(pred, gt), "f_measure": mask_metrics.f_measure(pred, gt),
                                 "mae": mask_metrics.mae(prob, soft_gt)}
    model.train(was_training)
    out = {k: float(np.mean([m[k] for m in per_image.values()])) for k in ("iou", "f_measure", "mae")}
    out.update(images=len(per_image), per_image=per_image)
    return out


# --- initialisation ----------------------------------------------------------------------------

def _strip_module_prefix(state: dict) -> dict:
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def init_from_imagenet(model: SOSNet, state: dict, path: str) -> dict:
    """Copy an ImageNet HRNet backbone into `model`: head keys dropped, the stem conv averaged
    over its input channels when the model has fewer, `last_layer` left as initialised.

    Strict about the backbone: a missing, unexpected or mis-shaped key is a CheckpointError
    naming the key and the file (BatchNorm's `num_batches_tracked` may be absent)."""
    ours = model.state_dict()
    kept: dict[str, torch.Tensor] = {}
    dropped = 0
    stem_averaged = None
    for key, value in state.items():
        if key.startswith(IMAGENET_HEAD_PREFIXES):
            dropped += 1
            continue
        if key not in ours or key.startswith("last_layer."):
            raise CheckpointError(f"{path}: unexpected key {key!r} for this network "
                                  f"(is it HRNetV2 of the same width?)")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: key {key!r} holds a {type(value).__name__}, not a tensor")
        want = tuple(ours[key].shape)
        if key == "conv1.weight" and value.dim() == 4 and value.shape[1] != want[1] and want[1] == 1:
            stem_averaged = tuple(value.shape)
            value = value.float().mean(dim=1, keepdim=True)
        if tuple(value.shape) != want:
            raise CheckpointError(f"{path}: key {key!r} has shape {tuple(value.shape)}, the model expects {want}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: key {key!r} holds NaN or infinite values")
        kept[key] = value.to(ours[key].dtype)
    missing = [k for k in ours if k not in kept and not k.startswith("last_layer.")
               and not k.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(f"{path}: missing key {missing[0]!r}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    merged = dict(ours)
    merged.update(kept)
    model.load_state_dict(merged, strict=True)
    return {"path": path, "layout": "imagenet", "backbone_keys": len(kept), "dropped_head_keys": dropped,
            "stem_averaged_from": list(stem_averaged) if stem_averaged else None}


def read_init(path: str) -> tuple[str, object]:
    """(layout, loaded object) of an --init file: 'imagenet', 'authors' or 'sosmaskfuse'."""
    obj = checkpoints.read_file(path)
    arch, layout = checkpoints.identify(obj)
    if arch is None:
        stripped = _strip_module_prefix(checkpoints._unwrap(obj)) if isinstance(obj, dict) else obj
        arch, layout = checkpoints.identify(stripped)
        obj = stripped
    if arch != SOSNet.architecture:
        what = f"a {arch!r} checkpoint" if arch else "not an SOS network / ImageNet HRNet checkpoint"
        raise CheckpointError(f"{path}: {what}; --init takes an ImageNet HRNetV2 checkpoint, the "
                              f"authors' SOS network file or one of ours")
    return layout, obj


def initialise(model: SOSNet, path: str, layout: str, obj) -> dict:
    """Load --init weights into `model` (see read_init); returns what was done, for the metadata."""
    if layout == "imagenet":
        return init_from_imagenet(model, _strip_module_prefix(checkpoints._unwrap(obj)), path)
    source, meta = checkpoints.load_sosnet(path)  # ours or the authors': strict, names key and file
    if source.config != model.config:
        raise CheckpointError(f"{path}: holds a network of another architecture ({source.config}) than "
                              f"this run's ({model.config})")
    model.load_state_dict(source.state_dict())
    return {"path": path, "layout": layout, "source": meta.get("kind", meta.get("source", ""))}


def _file_architecture(obj, path: Path | str) -> HRNetConfig | None:
    """The HRNetConfig stored in one of our checkpoints (None for other layouts)."""
    if isinstance(obj, dict) and obj.get("format") == checkpoints.FORMAT and "config" in obj:
        if obj.get("architecture") != SOSNet.architecture:
            raise CheckpointError(f"{path}: holds a {obj.get('architecture')!r} network, not an SOS network")
        return HRNetConfig.from_dict(obj["config"])
    return None


def resolve_architecture(cfg: SOSNetTrainConfig, source: Path | str | None = None, obj=None) -> HRNetConfig:
    """The run's network: from the options, else from `obj` (loaded from `source`, a checkpoint
    of ours), else the paper's W30."""
    given = hrnet_config(cfg.config, cfg.width, cfg.stem_channels, cfg.layer1_blocks, cfg.stage_modules,
                         cfg.blocks_per_branch)
    stored = _file_architecture(obj, source) if obj is not None else None
    if stored is None:
        return given
    if cfg.architecture_given() and stored != given:
        raise CheckpointError(f"{source}: holds a network of another architecture ({stored}) than the "
                              f"options ask for ({given}); leave out --config/--width/... to use the file's")
    return stored


# --- training ----------------------------------------------------------------------------------

def _weights_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def train(cfg: SOSNetTrainConfig, out: Path, resume: bool = False, stream=None,
          stop_at_step: int | None = None) -> dict:
    """Run (or resume) training; returns the final metadata. Raises DataError, ValueError,
    CheckpointError, NonFiniteLoss.

    `stop_at_step` ends this call (after a checkpoint) once that many steps are done, as an
    interruption would; `resume=True` later continues the run exactly.
    """
    out = Path(out)
    size = (int(cfg.size[0]), int(cfg.size[1]))
    if min(size) < 32:
        raise ValueError(f"--size {size[0]} {size[1]}: width and height must be at least 32 (multiples of 32 "
                         f"keep all four HRNet branches aligned)")
    if cfg.batch_size < 1 or cfg.epochs < 1 or cfg.val_every < 1 or cfg.checkpoint_every < 1:
        raise ValueError("batch size, epochs, --val-every and --checkpoint-every must be positive")
    device = resolve_device(cfg.device)
    train_samples, val_samples, data = split_data(cfg)
    if resume and not out.is_file():
        raise CheckpointError(f"{out}: nothing to resume (no such file)")
    init_layout, init_obj = read_init(cfg.init) if cfg.init and not resume else (None, None)
    resumed = checkpoints.read_file(out) if resume else None
    resumed_meta = resumed.get("metadata", {}) if isinstance(resumed, dict) else {}
    if resume:
        arch = resolve_architecture(cfg, out, resumed)
    else:
        arch = resolve_architecture(cfg, cfg.init, init_obj if init_layout == checkpoints.FORMAT else None)

    torch.manual_seed(cfg.seed)
    model = SOSNet(arch)
    init_info = resumed_meta.get("init")
    if cfg.init and not resume:
        init_info = initialise(model, cfg.init, init_layout, init_obj)
        log.info("initialised from %s (%s layout)", cfg.init, init_layout)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.milestones), gamma=cfg.lr_gamma)
    scaler = runner.grad_scaler(device, cfg.amp)
    state = runner.RunState()
    if resume:
        state = runner.load_run(out, model, optimizer, scheduler)
        log.info("resumed %s at step %d (epoch %d)", out, state.step, state.epoch)
        before = resumed_meta.get("config", {})
        changed = sorted(k for k, v in cfg.plain().items() if k in before and before[k] != v and k != "device")
        if changed:
            log.warning("resuming %s with other settings than it was started with: %s", out,
                        ", ".join(f"{k} {before[k]!r} -> {getattr(cfg, k)!r}" for k in changed))

    train_set = PreparedSet(train_samples, size)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    n_params = sum(p.numel() for p in model.parameters())
    version = runner.code_version()

    # Losses of the current epoch so far: stored with each checkpoint so a run resumed in the
    # middle of an epoch reports the same epoch loss as an uninterrupted one.
    epoch_losses: list[float] = list(resumed_meta.get("epoch_losses", [])) if resume else []

    def metadata() -> dict:
        validated = [h for h in state.history if "iou" in h]
        metrics = validated[-1] if validated else (state.history[-1] if state.history else {})
        return {"kind": "sosnet training run", "config": cfg.plain(), "data": data, "init": init_info,
                "input_size": list(size), "parameters": n_params,
                "steps": state.step, "epochs": state.step / steps_per_epoch, "history": state.history,
                "metrics": metrics, "code_version": version, "device": str(device),
                "train_seconds": round(state.seconds, 1), "epoch_losses": list(epoch_losses)}

    def save() -> None:
        if not _weights_finite(model):  # keep the last good checkpoint
            raise runner.NonFiniteLoss(f"weights became NaN or infinite by step {state.step}")
        runner.save_run(out, model, optimizer, state, metadata(), scheduler)

    model.train()
    progress = Progress(total, "train-sosnet", unit="step", stream=stream)
    progress.count = state.step
    started = time.perf_counter() - state.seconds
    session_start, session_steps = time.perf_counter(), 0
    while state.step < total:
        if stop_at_step is not None and state.step >= stop_at_step:
            save()
            break
        x, y = make_batch(train_set, cfg.batch_size, cfg.seed, state.step, cfg.flip)
        x, y = x.to(device), y.to(device)
        with runner.amp_context(device, cfg.amp):
            logit = model(x)
        loss = sos_loss(logit, y, cfg.pos_weight)
        value = runner.check_finite(loss, state.step)  # raises before anything is saved
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        state.step += 1
        session_steps += 1
        epoch_losses.append(value)
        end_of_epoch = state.step % steps_per_epoch == 0
        lr = optimizer.param_groups[0]["lr"]  # the rate this step used
        if end_of_epoch:
            scheduler.step()
        state.epoch = state.step // steps_per_epoch
        state.seconds = time.perf_counter() - started
        rate = cfg.batch_size * session_steps / max(time.perf_counter() - session_start, 1e-9)
        progress.step(f"epoch {(state.step - 1) // steps_per_epoch + 1}/{cfg.epochs}  loss {value:.4f}  "
                      f"lr {lr:.2g}  {rate:.1f} img/s")
        validate = end_of_epoch and (state.epoch % cfg.val_every == 0 or state.step == total)
        if end_of_epoch:
            entry = {"step": state.step, "epoch": state.epoch, "loss": value,
                     "epoch_loss": float(np.mean(epoch_losses)), "lr": lr}
            epoch_losses.clear()
            if validate and val_samples:
                quality = mask_quality(model, val_samples, size, device, cfg.amp)
                entry.update(quality)
                print(f"validation at epoch {state.epoch}: IoU {quality['iou']:.4f}, F-measure "
                      f"{quality['f_measure']:.4f}, MAE {quality['mae']:.4f} on {quality['images']} held-out "
                      f"masks", file=stream or sys.stderr)
                for old in state.history:  # per-image figures only for the latest validation
                    old.pop("per_image", None)
            state.history.append(entry)
        if validate or state.step % cfg.checkpoint_every == 0 or state.step == total:
            save()
    progress.close()
    return metadata()


# --- command line ------------------------------------------------------------------------------

def add_parser(subparsers) -> argparse.ArgumentParser:
    d = SOSNetTrainConfig(data="")
    p = subparsers.add_parser("train-sosnet", help="train the SOS network on thermal images and masks",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with Inf/ + GT/ (ROAD) or ir/ + mask/")
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write (periodically, and at the end)")
    p.add_argument("--init", default=None,
                   help="start from these weights: ImageNet HRNetV2 (stem averaged to 1 channel, head "
                        "dropped), the authors' SOS network file or one of ours (default: from scratch)")
    p.add_argument("--resume", action="store_true", help="continue the run stored in --out")
    g = p.add_argument_group("validation (not in the paper)")
    v = g.add_mutually_exclusive_group()
    v.add_argument("--val-data", default=None, help="held-out folder (same layouts as --data)")
    v.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"hold out this fraction of --data, by seed (default {d.val_fraction}; 0: no "
                        f"validation; ignored with --folds)")
    g.add_argument("--folds", type=int, default=None, help="k-fold cross-validation: K folds (by seed)")
    g.add_argument("--fold", type=int, default=None, help="the fold held out, 0 .. K-1")
    g.add_argument("--val-every", type=int, default=d.val_every, help="validate every N epochs (default 1)")
    a = p.add_argument_group("network (default: the paper's HRNetV2-W30, or the --init/--resume file's)")
    a.add_argument("--config", choices=sorted(PRESETS), default=None,
                   help="paper: HRNetV2-W30; small: stem 32, 1 bottleneck, 1 module per stage, 2 blocks "
                        "per branch, width 18 (for CPU training)")
    a.add_argument("--width", type=int, default=None, help="branch widths W, 2W, 4W, 8W (paper 30)")
    a.add_argument("--stem-channels", type=int, default=None)
    a.add_argument("--layer1-blocks", type=int, default=None)
    a.add_argument("--stage-modules", type=int, nargs=3, default=None, metavar=("S2", "S3", "S4"))
    a.add_argument("--blocks-per-branch", type=int, default=None)
    t = p.add_argument_group("training (defaults: the paper's)")
    t.add_argument("--size", type=int, nargs=2, default=list(d.size), metavar=("W", "H"),
                   help="network input size (default 640 480; e.g. 320 256 on a CPU)")
    t.add_argument("--no-flip", dest="flip", action="store_false",
                   help="no random horizontal flips (the paper does not say whether it flips)")
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--momentum", type=float, default=d.momentum)
    t.add_argument("--weight-decay", type=float, default=d.weight_decay)
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--milestones", type=int, nargs="*", default=list(d.milestones),
                   help="epochs at which the lr is multiplied by --lr-gamma (default 100 150)")
    t.add_argument("--lr-gamma", type=float, default=d.lr_gamma)
    t.add_argument("--pos-weight", type=float, default=None,
                   help="BCE weight of salient pixels (default: none, as the paper)")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="steps between checkpoints (also at each validation and at the end)")
    t.add_argument("--device", default=d.device)
    t.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> SOSNetTrainConfig:
    return SOSNetTrainConfig(
        data=args.data, val_data=args.val_data, val_fraction=args.val_fraction, folds=args.folds, fold=args.fold,
        size=tuple(args.size), config=args.config, width=args.width, stem_channels=args.stem_channels,
        layer1_blocks=args.layer1_blocks,
        stage_modules=tuple(args.stage_modules) if args.stage_modules else None,
        blocks_per_branch=args.blocks_per_branch, init=args.init, flip=args.flip, batch_size=args.batch_size,
        lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, epochs=args.epochs,
        milestones=tuple(args.milestones), lr_gamma=args.lr_gamma, pos_weight=args.pos_weight,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every, seed=args.seed, device=args.device,
        amp=args.amp)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        meta = train(cfg, args.out, resume=args.resume)
    except (DataError, ValueError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except runner.NonFiniteLoss as exc:
        kept = f"the last good checkpoint is {args.out}" if Path(args.out).is_file() else "no checkpoint was written"
        print(f"error: {exc}; stopped, {kept}", file=sys.stderr)
        return 3
    m = meta["metrics"]
    summary = (f", held-out IoU {m['iou']:.4f}, F-measure {m['f_measure']:.4f}, MAE {m['mae']:.4f}"
               if "iou" in m else "")
    print(f"trained {meta['steps']} steps ({meta['epochs']:.2f} epochs) in {meta['train_seconds']:.0f} s"
          f"{summary} -> {args.out}", file=sys.stderr)
    return 0
