"""`sosmaskfuse train-autoencoder` on tiny data: loss falls, resume, metadata, bad data, NaN."""

import cv2
import numpy as np
import pytest
import torch

from sosmaskfuse_core import cli
from sosmaskfuse_core.models import checkpoints
from sosmaskfuse_core.training import autoencoder as tae
from sosmaskfuse_core.training import runner


@pytest.fixture
def images(tmp_path):
    """Smooth gradients with bright and dark shapes, 40x48 gray PNGs, and one colour JPEG."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48]
    for i in range(6):
        img = (60 + 80 * (xx / 48) + 40 * np.sin(yy / (3 + i))).astype(np.float32)
        cv2.circle(img, (int(rng.integers(8, 40)), int(rng.integers(8, 32))), 6, 230, -1)
        cv2.rectangle(img, (3, 3), (10 + i, 12), 20, -1)
        cv2.imwrite(str(folder / f"{i}.png"), np.clip(img, 0, 255).astype(np.uint8))
    cv2.imwrite(str(folder / "colour.jpg"), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    return folder


def _config(images, **kw):
    base = dict(
        images=[str(images)],
        crop=32,
        batch_size=2,
        lr=1e-3,
        steps=24,
        val_every=8,
        val_fraction=0.3,
        checkpoint_every=4,
        seed=3,
        device="cpu",
        widths=(8, 16, 24, 32),
    )
    base.update(kw)
    return tae.AutoencoderTrainConfig(**base)


def test_loss_falls_and_the_checkpoint_carries_metadata(tmp_path, images):
    out = tmp_path / "ae.pt"
    meta = tae.train(_config(images), out)
    losses = [h["train_loss"] for h in meta["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    model, loaded = checkpoints.load_autoencoder(out)
    assert (
        loaded["steps"] == 24 and loaded["config"]["crop"] == 32 and loaded["config"]["lr"] == 1e-3
    )
    assert loaded["data"]["train_images"] + loaded["data"]["held_out_images"] == 7
    assert set(loaded["data"]["held_out_stems"]) and loaded["metrics"]["psnr"] > 0
    assert loaded["code_version"].startswith("0.1.0")
    assert loaded["history"] == meta["history"]


def test_resume_continues_exactly_where_it_stopped(tmp_path, images):
    straight = tmp_path / "straight.pt"
    tae.train(_config(images, steps=12), straight)
    resumed = tmp_path / "resumed.pt"
    tae.train(_config(images, steps=8), resumed)
    assert torch.load(resumed, weights_only=True)["training"]["state"]["step"] == 8
    meta = tae.train(_config(images, steps=12), resumed, resume=True)
    assert meta["steps"] == 12
    a, _ = checkpoints.load_autoencoder(straight)
    b, _ = checkpoints.load_autoencoder(resumed)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-6), name


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, images, monkeypatch):
    out = tmp_path / "ae.pt"
    real = tae.autoencoder_loss
    calls = []

    def loss(out_, x, w):
        calls.append(1)
        value = real(out_, x, w)
        return value * float("nan") if len(calls) == 7 else value

    monkeypatch.setattr(tae, "autoencoder_loss", loss)
    with pytest.raises(runner.NonFiniteLoss, match="at step 6"):
        tae.train(_config(images), out)
    state = torch.load(out, weights_only=True)["training"]["state"]
    assert state["step"] == 4  # the last periodic checkpoint before the bad step
    checkpoints.load_autoencoder(out)


@pytest.mark.parametrize(
    "setup,message",
    [
        ("missing", "not a folder"),
        ("empty", "no image files"),
        ("tiny", "no usable training images"),
    ],
)
def test_bad_data_folders_fail_clearly(tmp_path, capsys, setup, message):
    folder = tmp_path / "data"
    if setup != "missing":
        folder.mkdir()
    if setup == "tiny":
        cv2.imwrite(str(folder / "a.png"), np.zeros((10, 10), np.uint8))
        (folder / "b.png").write_bytes(b"junk")
    code = cli.main(
        [
            "train-autoencoder",
            "--images",
            str(folder),
            "--out",
            str(tmp_path / "x.pt"),
            "--steps",
            "2",
            "--device",
            "cpu",
            "--widths",
            "8",
            "16",
            "24",
            "32",
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_cli_runs_and_reports(tmp_path, images, capsys):
    code = cli.main(
        [
            "train-autoencoder",
            "--images",
            str(images),
            "--out",
            str(tmp_path / "ae.pt"),
            "--crop",
            "32",
            "--batch-size",
            "2",
            "--steps",
            "4",
            "--val-every",
            "4",
            "--device",
            "cpu",
            "--widths",
            "8",
            "16",
            "24",
            "32",
        ]
    )
    assert code == 0
    assert "trained 4 steps" in capsys.readouterr().err


def test_export_strips_the_run_and_eval_rescores_the_held_out_images(tmp_path, images, capsys):
    run = tmp_path / "run.pt"
    meta = tae.train(_config(images, steps=8), run)
    out = tmp_path / "release.pt"
    assert cli.main(["export-weights", "--run", str(run), "--out", str(out), "--half"]) == 0
    obj = torch.load(out, weights_only=True)
    assert "training" not in obj and obj["metadata"]["stored_as"] == "float16"
    assert all(v.dtype == torch.float16 for v in obj["state_dict"].values())
    assert out.stat().st_size < run.stat().st_size
    capsys.readouterr()
    assert (
        cli.main(
            [
                "eval-autoencoder",
                "--weights",
                str(out),
                "--images",
                str(images),
                "--held-out",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    report = capsys.readouterr().out
    n = meta["data"]["held_out_images"]
    assert f"on {n} full-resolution images" in report
    psnr = float(report.split("PSNR ")[1].split(" dB")[0])
    assert abs(psnr - meta["metrics"]["psnr"]) < 0.5  # fp16 storage costs little


@pytest.mark.parametrize("crop", ["0", "8"])
def test_a_crop_below_16_pixels_fails_clearly(tmp_path, images, capsys, crop):
    code = cli.main(
        [
            "train-autoencoder",
            "--images",
            str(images),
            "--out",
            str(tmp_path / "x.pt"),
            "--crop",
            crop,
            "--steps",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert code == 2
    assert "at least 16 pixels" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_the_split_reconstruction_is_what_imvf_decodes_when_both_inputs_are_the_image():
    from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder
    from sosmaskfuse_core.pipeline.strategies import imvf

    torch.manual_seed(0)
    model = IMVFAutoencoder(AutoencoderConfig(widths=(8, 16, 24, 32), stem_channels=4)).eval()
    x = torch.rand(2, 1, 32, 32) * 255
    mask = tae.split_masks(2, 32, seed=1, step=5)
    assert torch.equal(mask, tae.split_masks(2, 32, seed=1, step=5))  # a pure function
    assert not torch.equal(mask, tae.split_masks(2, 32, seed=1, step=6))
    assert 0 <= mask.min() and mask.max() <= 1 and 0.1 < mask.mean() < 0.9
    assert ((mask > 0) & (mask < 1)).any()  # soft edges
    with torch.no_grad():
        ir_fg, ir_bg = model.encoder(x * mask), model.encoder(x * (1 - mask))
        fused = [imvf(a, b, a, b, mu=0.8) for a, b in zip(ir_fg, ir_bg)]  # vis = ir = x
        expected = model.decoder(fused)
        got = tae.split_reconstruction(model, x, mask)
    assert torch.allclose(got, expected, atol=1e-3 * float(expected.abs().max()))


def test_split_training_starts_from_given_weights_and_refuses_another_network(tmp_path, images):
    start = tmp_path / "start.pt"
    tae.train(_config(images, steps=4), start)
    out = tmp_path / "split.pt"
    meta = tae.train(_config(images, steps=4, split_weight=1.0, init=str(start)), out)
    assert meta["config"]["split_weight"] == 1.0 and meta["config"]["init"] == str(start)
    before, _ = checkpoints.load_autoencoder(start)
    tae.train(_config(images, steps=1, lr=0.0, init=str(start)), tmp_path / "zero.pt")
    zero, _ = checkpoints.load_autoencoder(tmp_path / "zero.pt")  # one step that moves nothing
    for (name, x), y in zip(before.state_dict().items(), zero.state_dict().values()):
        assert torch.equal(x, y), name  # the given weights, not a fresh initialisation
    with pytest.raises(checkpoints.CheckpointError, match="is not this run's"):
        tae.train(_config(images, widths=(8, 8, 8, 8), init=str(start)), tmp_path / "x.pt")
