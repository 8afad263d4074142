"""The SOS network's training loop: BCE on soft targets, SGD with step decay, validation.

Runs are resumable from their checkpoints. With several folders, sampling weights, zoom or
loss-weight maps the batches come from `sampling` and the loss is weighted per pixel.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sosmaskfuse_core.evaluation import mask_metrics
from sosmaskfuse_core.models import checkpoints
from sosmaskfuse_core.models.checkpoints import CheckpointError
from sosmaskfuse_core.models.sos_hrnet import SOSNet
from sosmaskfuse_core.pipeline.devices import resolve_device
from sosmaskfuse_core.pipeline.preprocessing import (
    logit_to_probability,
)
from sosmaskfuse_core.progress import Progress
from sosmaskfuse_core.training import runner

from .config import SOSNetTrainConfig, resolve_architecture
from .data import MaskSample, PreparedSet, load_folder, make_batch, prepare, split_data
from .init import initialise, read_init
from .sampling import ViewConfig, sample_batch

log = logging.getLogger(__name__)


# --- data -----------------------------------------------------------------------------------


# --- loss and mask quality --------------------------------------------------------------------


def sos_loss(
    logit: torch.Tensor,
    target: torch.Tensor,
    pos_weight: float | None = None,
    weight: torch.Tensor | None = None,
    iou_weight: float = 0.0,
) -> torch.Tensor:
    """BCE-with-logits against the soft target (the paper's loss), mean over pixels.

    With a per-pixel `weight` (N x 1 x H x W, 0 = ignored) the mean is weighted (sum of w x BCE
    over the sum of w, at least 1 pixel's worth). `iou_weight` > 0 adds that times the soft
    Jaccard loss 1 - sum(w p t) / sum(w (p + t - p t)) per image, averaged over the batch.
    """
    pw = (
        None
        if pos_weight is None
        else torch.tensor(pos_weight, device=logit.device, dtype=torch.float32)
    )
    logit, target = logit.float(), target.float()
    if weight is None and iou_weight == 0:
        return F.binary_cross_entropy_with_logits(logit, target, pos_weight=pw)
    w = torch.ones_like(target) if weight is None else weight.float()
    bce = F.binary_cross_entropy_with_logits(logit, target, pos_weight=pw, reduction="none")
    loss = (w * bce).sum() / w.sum().clamp_min(1.0)
    if iou_weight:
        p = torch.sigmoid(logit)
        inter = (w * p * target).flatten(1).sum(1)
        union = (w * (p + target - p * target)).flatten(1).sum(1)
        loss = loss + iou_weight * (1.0 - (inter + 1.0) / (union + 1.0)).mean()
    return loss


def mask_quality(
    model: SOSNet,
    samples: Sequence[MaskSample],
    size_wh: tuple[int, int],
    device: torch.device,
    amp: bool = False,
    threshold: float = 0.5,
) -> dict:
    """Mean IoU, F-measure (beta^2 = 0.3) and MAE of the predictions against the held-out masks.

    They are computed at each mask's own resolution (the logit upsampled as at inference), and
    also per image.

    The conventions are `mask_metrics`' (as `sosmaskfuse eval-mask` scores the classical mask):
    IoU and F on the probability thresholded at `threshold` against the mask at >= 0.5, MAE on
    the probability against the mask / 255.
    """
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
            per_image[s.stem] = {
                "iou": mask_metrics.iou(pred, gt),
                "f_measure": mask_metrics.f_measure(pred, gt),
                "mae": mask_metrics.mae(prob, soft_gt),
            }
    model.train(was_training)
    out: dict[str, Any] = {
        k: float(np.mean([m[k] for m in per_image.values()])) for k in ("iou", "f_measure", "mae")
    }
    out.update(images=len(per_image), per_image=per_image)
    return out


# --- initialisation ----------------------------------------------------------------------------


# --- training ----------------------------------------------------------------------------------


def _sources(
    cfg: SOSNetTrainConfig, train_samples: list[MaskSample], data: dict, size: tuple[int, int]
) -> tuple[list[list[MaskSample]], list[ViewConfig] | None]:
    """The training sources and their views (None: the paper's epochs over the first folder).

    The sources are the first folder's training part, then each extra folder. Records the
    extra folders in `data` (the metadata's data summary).
    """
    extra = [load_folder(folder) for folder in cfg.extra_data]
    sources = [train_samples] + [d.samples for d in extra]
    if cfg.data_weights is not None and len(cfg.data_weights) != len(sources):
        raise ValueError(
            f"--data-weights: {len(cfg.data_weights)} weights for {len(sources)} --data folders"
        )
    if cfg.extra_scale_ranges is not None and len(cfg.extra_scale_ranges) != len(extra):
        raise ValueError(
            f"{len(cfg.extra_scale_ranges)} extra scale ranges for {len(extra)} extra folders"
        )
    if extra:
        data["extra"] = [
            {
                "folder": d.folder,
                "layout": d.layout,
                "pairs": len(d.samples),
                "weight_maps": sum(s.weight is not None for s in d.samples),
                "skipped": list(d.skipped)[:100],
            }
            for d in extra
        ]
    if not (cfg.uses_sampler() or any(s.weight is not None for src in sources for s in src)):
        return sources, None
    ranges = cfg.extra_scale_ranges or [cfg.scale_range] * len(extra)
    views = [ViewConfig(size, cfg.scale_range, cfg.aspect_jitter, cfg.flip)] + [
        ViewConfig(size, r, cfg.aspect_jitter, cfg.flip) for r in ranges
    ]
    return sources, views


def _weights_finite(model: torch.nn.Module) -> bool:
    return all(
        bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point()
    )


def train(
    cfg: SOSNetTrainConfig,
    out: Path,
    resume: bool = False,
    stream=None,
    stop_at_step: int | None = None,
) -> dict:
    """Run (or resume) training; returns the final metadata.

    Raises DataError, ValueError, CheckpointError, NonFiniteLoss.

    `stop_at_step` ends this call (after a checkpoint) once that many steps are done, as an
    interruption would; `resume=True` later continues the run exactly.
    """
    out = Path(out)
    size = (int(cfg.size[0]), int(cfg.size[1]))
    if min(size) < 32:
        raise ValueError(
            f"--size {size[0]} {size[1]}: width and height must be at least 32 (multiples of 32 "
            f"keep all four HRNet branches aligned)"
        )
    if cfg.batch_size < 1 or cfg.epochs < 1 or cfg.val_every < 1 or cfg.checkpoint_every < 1:
        raise ValueError("batch size, epochs, --val-every and --checkpoint-every must be positive")
    device = resolve_device(cfg.device)
    train_samples, val_samples, data = split_data(cfg)
    sources, views = _sources(cfg, train_samples, data, size)
    if resume and not out.is_file():
        raise CheckpointError(f"{out}: nothing to resume (no such file)")
    init_layout, init_obj = read_init(cfg.init) if cfg.init and not resume else (None, None)
    resumed = checkpoints.read_file(out) if resume else None
    resumed_meta = resumed.get("metadata", {}) if isinstance(resumed, dict) else {}
    if resume:
        arch = resolve_architecture(cfg, out, resumed)
    else:
        arch = resolve_architecture(
            cfg, cfg.init, init_obj if init_layout == checkpoints.FORMAT else None
        )

    torch.manual_seed(cfg.seed)
    model = SOSNet(arch)
    init_info = resumed_meta.get("init")
    if cfg.init and not resume:
        assert init_layout is not None  # read above for the same condition
        init_info = initialise(model, cfg.init, init_layout, init_obj)
        log.info("initialised from %s (%s layout)", cfg.init, init_layout)
    model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, list(cfg.milestones), gamma=cfg.lr_gamma
    )
    scaler = runner.grad_scaler(device, cfg.amp)
    state = runner.RunState()
    if resume:
        state = runner.load_run(out, model, optimizer, scheduler)
        log.info("resumed %s at step %d (epoch %d)", out, state.step, state.epoch)
        before = resumed_meta.get("config", {})
        changed = sorted(
            k for k, v in cfg.plain().items() if k in before and before[k] != v and k != "device"
        )
        if changed:
            log.warning(
                "resuming %s with other settings than it was started with: %s",
                out,
                ", ".join(f"{k} {before[k]!r} -> {getattr(cfg, k)!r}" for k in changed),
            )

    if views is not None:
        weights = (
            list(cfg.data_weights) if cfg.data_weights is not None else [len(s) for s in sources]
        )
        steps_per_epoch = cfg.steps_per_epoch or math.ceil(sum(map(len, sources)) / cfg.batch_size)
        data["sampler"] = {"weights": weights, "steps_per_epoch": steps_per_epoch}
    else:
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
        return {
            "kind": "sosnet training run",
            "config": cfg.plain(),
            "data": data,
            "init": init_info,
            "input_size": list(size),
            "parameters": n_params,
            "steps": state.step,
            "epochs": state.step / steps_per_epoch,
            "history": state.history,
            "metrics": metrics,
            "code_version": version,
            "device": str(device),
            "train_seconds": round(state.seconds, 1),
            "epoch_losses": list(epoch_losses),
        }

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
        if views is not None:
            x, y, w = sample_batch(
                sources, weights, views[0], cfg.batch_size, cfg.seed, state.step, views
            )
            x, y, w = x.to(device), y.to(device), w.to(device)
            with runner.amp_context(device, cfg.amp):
                logit = model(x)
            loss = sos_loss(logit, y, cfg.pos_weight, w, cfg.iou_loss)
        else:
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
        progress.step(
            f"epoch {(state.step - 1) // steps_per_epoch + 1}/{cfg.epochs}  loss {value:.4f}  "
            f"lr {lr:.2g}  {rate:.1f} img/s"
        )
        validate = end_of_epoch and (state.epoch % cfg.val_every == 0 or state.step == total)
        if end_of_epoch:
            entry = {
                "step": state.step,
                "epoch": state.epoch,
                "loss": value,
                "epoch_loss": float(np.mean(epoch_losses)),
                "lr": lr,
            }
            epoch_losses.clear()
            if validate and val_samples:
                quality = mask_quality(model, val_samples, size, device, cfg.amp)
                entry.update(quality)
                print(
                    f"validation at epoch {state.epoch}: IoU {quality['iou']:.4f}, F-measure "
                    f"{quality['f_measure']:.4f}, MAE {quality['mae']:.4f} "
                    f"on {quality['images']} held-out masks",
                    file=stream or sys.stderr,
                )
                for old in state.history:  # per-image figures only for the latest validation
                    old.pop("per_image", None)
            state.history.append(entry)
        if validate or state.step % cfg.checkpoint_every == 0 or state.step == total:
            save()
    progress.close()
    return metadata()


# --- command line ------------------------------------------------------------------------------
