"""Training the IMV-F autoencoder to reconstruct gray images (the paper's loss), in resumable runs.

Loss MSE(out, x) + w * (1 - MS-SSIM(out, x)) on gray levels 0..255, Adam. The paper's
settings are the defaults (batch 4, lr 1e-4, w = 100, whole images resized to 256 x 256
with nearest interpolation when `resize=256` is given); any folder of images will do.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sosmaskfuse_core.models.checkpoints import CheckpointError, load_autoencoder
from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder
from sosmaskfuse_core.pipeline.devices import resolve_device
from sosmaskfuse_core.progress import Progress
from sosmaskfuse_core.training import runner
from sosmaskfuse_core.training.data import (
    CropSpec,
    DataError,
    find_images,
    load_gray,
    sample_batch,
    split_holdout,
)
from sosmaskfuse_core.training.losses import ms_ssim

log = logging.getLogger(__name__)


@dataclass
class AutoencoderTrainConfig:
    """Every setting of a run; stored in the checkpoint's metadata."""

    images: list[str]
    val_images: list[str] = field(default_factory=list)
    val_fraction: float = 0.1
    crop: int | None = 64
    resize: int | None = None
    batch_size: int = 4
    lr: float = 1e-4
    lr_schedule: str = "constant"  # or "cosine" (to lr / 100 at the last step)
    ssim_weight: float = 100.0
    epochs: float = 2.0
    steps: int | None = None
    val_every: int | None = None  # steps; default: once per epoch
    val_limit: int | None = None  # validate on at most this many held-out images
    checkpoint_every: int = 200
    widths: tuple[int, int, int, int] = (
        AutoencoderConfig().widths
    )  # the paper's; smaller for experiments
    stem_channels: int = AutoencoderConfig().stem_channels
    space_to_depth: int = AutoencoderConfig().space_to_depth
    split_weight: float = 0.0  # the split-consistency loss's weight (0: the paper's loss alone)
    init: str | None = None  # start from these weights (same architecture) instead of random
    seed: int = 0
    device: str = "auto"
    amp: bool = True


#: Initial bias of the decoder's head. The head ends in a ReLU (the paper's layer); with
#: PyTorch's default initialisation a space-to-depth network's four outputs all start negative
#: and stay dead (loss stuck at the image's energy), so new runs start them at mid-gray.
HEAD_BIAS = 128.0


def reconstruction_quality(
    model: IMVFAutoencoder, images: list[np.ndarray], device: torch.device
) -> dict[str, float]:
    """Mean PSNR and SSIM (scikit-image, data_range 255) of full-resolution reconstructions.

    The output is rounded and clipped to 8 bits, as an image would be stored.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnrs, ssims = [], []
    model.eval()
    with torch.inference_mode():
        for img in images:
            x = torch.from_numpy(img).float()[None, None].to(device)
            out = model(x).round().clamp(0, 255)[0, 0].to(torch.uint8).cpu().numpy()
            psnrs.append(peak_signal_noise_ratio(img, out, data_range=255))
            ssims.append(structural_similarity(img, out, data_range=255))
    model.train()
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "images": len(images)}


def split_masks(batch: int, size: int, seed: int, step: int) -> torch.Tensor:
    """Batch `step`'s soft masks (B x 1 x S x S in [0, 1]): smooth random blobs, soft edges.

    Random 4x4 values in [0, 1] upsampled (bilinear) to the crop and stepped at 0.5 over a
    ramp a quarter of the value range wide, like the SOS network's soft masks; a pure function.
    """
    rng = np.random.default_rng([seed, step, 7])
    coarse = torch.from_numpy(rng.random((batch, 1, 4, 4), dtype=np.float32))
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return ((smooth - 0.5) * 4.0 + 0.5).clamp_(0.0, 1.0)


def split_reconstruction(model: IMVFAutoencoder, x: torch.Tensor, mask: torch.Tensor):
    """The decoder on the sum of the features of x * m and x * (1 - m).

    This is IMV-F's output when both inputs are x (with x as infrared and visible the mu and
    SCA weights cancel, docs/algorithm.md): what the fused image is made of, so a network
    trained to reconstruct it keeps the scene's levels where the mask cuts it.
    """
    parts = model.encoder(torch.cat([x * mask, x * (1.0 - mask)]))
    return model.decoder([f.chunk(2)[0] + f.chunk(2)[1] for f in parts])


def autoencoder_loss(out: torch.Tensor, x: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    out, x = out.float(), x.float()
    return F.mse_loss(out, x) + ssim_weight * (1.0 - ms_ssim(out, x, data_range=255.0))


def train(cfg: AutoencoderTrainConfig, out: Path, resume: bool = False, stream=None) -> dict:
    """Run (or resume) training; returns the final metadata. Raises DataError, NonFiniteLoss."""
    device = resolve_device(cfg.device)
    spec = CropSpec(crop=cfg.crop, resize=cfg.resize)
    paths = find_images(cfg.images)
    if cfg.val_images:
        train_paths, val_paths = paths, find_images(cfg.val_images)
    else:
        train_paths, val_paths = split_holdout(paths, cfg.val_fraction, cfg.seed)
    train_images, skipped = load_gray(train_paths, min_size=spec.crop or 16)
    if not train_images:
        raise DataError(
            f"no usable training images in {', '.join(cfg.images)} "
            f"({len(skipped)} skipped: {skipped[:3]})"
        )
    val_images, val_skipped = load_gray(val_paths, min_size=16)
    if cfg.val_limit is not None:
        val_images = val_images[: cfg.val_limit]

    torch.manual_seed(cfg.seed)
    model = IMVFAutoencoder(
        AutoencoderConfig(
            widths=cfg.widths, stem_channels=cfg.stem_channels, space_to_depth=cfg.space_to_depth
        )
    ).to(device)
    head_bias = model.decoder.head.conv.bias
    assert head_bias is not None
    if cfg.init and not resume:
        start, _ = load_autoencoder(cfg.init)  # CheckpointError names a bad file
        if start.config != model.config:
            raise CheckpointError(
                f"--init {cfg.init}: its network ({start.config}) is not this run's "
                f"({model.config}); give the run's --widths/--stem-channels/--space-to-depth"
            )
        model.load_state_dict(start.state_dict())
    else:
        with torch.no_grad():  # the output layer's ReLU starts alive: outputs begin at mid-gray
            head_bias.fill_(HEAD_BIAS)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = max(1, math.ceil(len(train_images) / cfg.batch_size))
    total = (
        cfg.steps if cfg.steps is not None else max(1, int(round(cfg.epochs * steps_per_epoch)))
    )
    scheduler = None
    if cfg.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, total, eta_min=cfg.lr / 100
        )
    elif cfg.lr_schedule != "constant":
        raise ValueError(f"lr_schedule {cfg.lr_schedule!r}: expected constant or cosine")
    scaler = runner.grad_scaler(device, cfg.amp)

    state = runner.RunState()
    if resume:
        if not out.is_file():
            raise CheckpointError(f"{out}: nothing to resume (no such file)")
        state = runner.load_run(out, model, optimizer, scheduler)
        log.info("resumed %s at step %d of %d", out, state.step, total)
    val_every = cfg.val_every or steps_per_epoch
    data = {
        "train_images": len(train_images),
        "held_out_images": len(val_images),
        "skipped": skipped + val_skipped,
        "folders": [str(p) for p in cfg.images],
        "held_out_stems": sorted({p.stem for p in val_paths})[:500],
    }

    def metadata() -> dict:
        return {
            "kind": "autoencoder training run",
            "config": asdict(cfg),
            "data": data,
            "steps": state.step,
            "epochs": state.step / steps_per_epoch,
            "history": state.history,
            "metrics": next((h for h in reversed(state.history) if "psnr" in h), {}),
            "code_version": runner.code_version(),
            "device": str(device),
            "train_seconds": round(state.seconds, 1),
        }

    model.train()
    progress = Progress(total, "train-autoencoder", unit="step", stream=stream, initial=state.step)
    started = time.perf_counter() - state.seconds
    losses: list[float] = []  # since the last validation
    while state.step < total:
        x = sample_batch(train_images, spec, cfg.batch_size, cfg.seed, state.step).to(device)
        with runner.amp_context(device, cfg.amp):
            recon = model(x)
        loss = autoencoder_loss(recon, x, cfg.ssim_weight)
        if cfg.split_weight > 0:
            mask = split_masks(x.shape[0], x.shape[-1], cfg.seed, state.step).to(device)
            with runner.amp_context(device, cfg.amp):
                split = split_reconstruction(model, x, mask)
            loss = loss + cfg.split_weight * autoencoder_loss(split, x, cfg.ssim_weight)
        value = runner.check_finite(loss, state.step)  # raises before anything is saved
        losses.append(value)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        state.step += 1
        state.epoch = state.step // steps_per_epoch
        state.seconds = time.perf_counter() - started
        progress.step(
            f"loss {value:.4f}  {cfg.batch_size * state.step / max(state.seconds, 1e-9):.1f} img/s"
        )
        report = state.step % val_every == 0 or state.step == total
        if report:  # one history entry per epoch (or --val-every steps)
            entry = {
                "step": state.step,
                "epoch": round(state.step / steps_per_epoch, 3),
                "train_loss": sum(losses) / len(losses),
            }
            losses.clear()
            if val_images:
                entry.update(reconstruction_quality(model, val_images, device))
                print(
                    f"validation at step {state.step}: PSNR {entry['psnr']:.2f} dB, "
                    f"SSIM {entry['ssim']:.4f} on {entry['images']} held-out images",
                    file=stream or sys.stderr,
                )
            state.history.append(entry)
        if report or state.step % cfg.checkpoint_every == 0:
            runner.save_run(out, model, optimizer, state, metadata(), scheduler)
    progress.close()
    return metadata()
