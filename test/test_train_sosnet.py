"""`sosmaskfuse train-sosnet` on tiny data: loss, resume, metadata, bad data, NaN, --init."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from official_hrnet import HEAD_PREFIXES, W30, official_hrnet_state

from sosmaskfuse_core import cli
from sosmaskfuse_core.models import checkpoints
from sosmaskfuse_core.models.sos_hrnet import HRNetConfig, SOSNet
from sosmaskfuse_core.pipeline.preprocessing import logit_to_probability
from sosmaskfuse_core.training import runner
from sosmaskfuse_core.training import sosnet as ts
from sosmaskfuse_core.training.data import DataError
from sosmaskfuse_core.training.sosnet import loop as sos_loop

TINY = dict(
    width=4, stem_channels=8, layer1_blocks=1, stage_modules=(1, 1, 1), blocks_per_branch=1
)
TINY_ARGS = [
    "--width",
    "4",
    "--stem-channels",
    "8",
    "--layer1-blocks",
    "1",
    "--stage-modules",
    "1",
    "1",
    "1",
    "--blocks-per-branch",
    "1",
    "--size",
    "64",
    "48",
    "--device",
    "cpu",
]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions run several times faster on one thread when the machine is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_data(
    root: Path, n: int = 8, layout=("ir", "mask"), seed: int = 0, h: int = 48, w: int = 64
) -> Path:
    """N gray thermal images and their masks.

    Each image has one or two bright blobs on a dark noisy background.
    """
    rng = np.random.default_rng(seed)
    (root / layout[0]).mkdir(parents=True)
    (root / layout[1]).mkdir(parents=True)
    for i in range(n):
        img = rng.normal(60, 12, (h, w))
        mask = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(1, 3))):
            cx, cy = int(rng.integers(8, w - 8)), int(rng.integers(8, h - 8))
            ax, ay = int(rng.integers(3, 8)), int(rng.integers(3, 8))
            cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, 255, -1)
        img[mask > 0] += 120
        cv2.imwrite(str(root / layout[0] / f"{i:02d}.png"), np.clip(img, 0, 255).astype(np.uint8))
        cv2.imwrite(str(root / layout[1] / f"{i:02d}.png"), mask)
    return root


def tiny_cfg(data: Path, **kw) -> ts.SOSNetTrainConfig:
    base = dict(
        data=str(data),
        size=(64, 48),
        device="cpu",
        lr=0.05,
        epochs=3,
        milestones=(2,),
        val_fraction=0.25,
        checkpoint_every=1,
        **TINY,
    )
    base.update(kw)
    return ts.SOSNetTrainConfig(**base)


def test_paper_config_is_w30_exactly():
    assert ts.hrnet_config() == HRNetConfig()
    assert ts.hrnet_config("small").stage_channels[-1] == (18, 36, 72, 144)
    assert ts.hrnet_config("small", width=30).stage_modules == (1, 1, 1)
    d = ts.SOSNetTrainConfig(data="")
    assert (
        d.lr,
        d.momentum,
        d.weight_decay,
        d.batch_size,
        d.epochs,
        d.milestones,
        d.lr_gamma,
        d.seed,
        d.size,
    ) == (1e-3, 0.9, 5e-4, 4, 200, (100, 150), 0.1, 118, (640, 480))


def test_prepare_follows_the_reference_preprocessing(tmp_path):
    thermal = np.random.default_rng(1).integers(0, 256, (30, 40, 3), np.uint8)
    mask = np.zeros((30, 40, 3), np.uint8)
    mask[10:20, 5:25] = 255
    mask[0, 0] = (255, 0, 0)  # a colour pixel: the soft target averages the three channels
    x, y = ts.prepare(ts.MaskSample("a", thermal, mask), (32, 24))
    mean = np.array([0.341, 0.360, 0.753]) * 255
    std = np.array([0.208, 0.269, 0.241]) * 255
    ref = cv2.resize((thermal - mean) / std, (32, 24), interpolation=cv2.INTER_LINEAR) @ np.array(
        [0.11, 0.59, 0.30]
    )
    assert x.shape == (1, 24, 32) and np.allclose(x[0].numpy(), ref, atol=1e-4)
    gt = cv2.resize(mask / 255.0, (32, 24), interpolation=cv2.INTER_LINEAR).mean(axis=2)
    assert np.allclose(y[0].numpy(), gt, atol=1e-6)


def test_kfold_split_is_deterministic_and_partitions():
    stems = [str(i) for i in range(20)]
    held = [ts.kfold_split(stems, 5, i, 118)[1] for i in range(5)]
    assert sorted(sum(held, [])) == sorted(stems) and all(len(h) == 4 for h in held)
    assert held == [ts.kfold_split(stems, 5, i, 118)[1] for i in range(5)]
    assert held != [ts.kfold_split(stems, 5, i, 0)[1] for i in range(5)]
    with pytest.raises(ValueError, match="--fold 5"):
        ts.kfold_split(stems, 5, 5, 118)


def test_batches_are_a_pure_function_of_the_step():
    a = [ts.batch_indices(10, 4, 118, s) for s in range(6)]
    assert a == [ts.batch_indices(10, 4, 118, s) for s in range(6)]
    assert sorted(sum((a[i][0] for i in range(3)), [])) == list(
        range(10)
    )  # one epoch = a permutation
    assert len(a[2][0]) == 2  # the short last batch


def test_loss_falls_and_held_out_metrics_are_recorded(tmp_path):
    data = make_data(tmp_path / "d", n=8)
    meta = ts.train(
        tiny_cfg(data, epochs=5, milestones=()), tmp_path / "run.pt", stream=io.StringIO()
    )
    losses = [h["epoch_loss"] for h in meta["history"]]
    assert losses[-1] < 0.5 * losses[0], losses
    m = meta["metrics"]
    assert m["images"] == 2 and set(m["per_image"]) == set(meta["data"]["held_out_stems"])
    assert 0 <= m["iou"] <= 1 and 0 <= m["f_measure"] <= 1 and 0 <= m["mae"] <= 1


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    data = make_data(
        tmp_path / "d", n=6
    )  # 5 training pairs: 2 steps per epoch, the second one short
    cfg = tiny_cfg(data, epochs=3, batch_size=3)
    full = ts.train(cfg, tmp_path / "full.pt", stream=io.StringIO())
    part = ts.train(cfg, tmp_path / "part.pt", stream=io.StringIO(), stop_at_step=3)  # mid-epoch 2
    assert part["steps"] == 3
    resumed = ts.train(cfg, tmp_path / "part.pt", resume=True, stream=io.StringIO())
    assert resumed["steps"] == full["steps"] == 6

    def strip(history):
        return [{k: v for k, v in h.items() if k != "per_image"} for h in history]

    assert strip(resumed["history"]) == strip(full["history"])
    a = checkpoints.read_file(tmp_path / "full.pt")
    b = checkpoints.read_file(tmp_path / "part.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["training"]["scheduler"] == b["training"]["scheduler"]


def test_cli_road_layout_folds_and_metadata_round_trip(tmp_path, capsys):
    data = make_data(tmp_path / "road", n=8, layout=("Inf", "GT"))
    out = tmp_path / "sos.pt"
    rc = cli.main(
        [
            "train-sosnet",
            "--data",
            str(data),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--lr",
            "0.05",
            "--folds",
            "4",
            "--fold",
            "1",
            *TINY_ARGS,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "validation at epoch 2: IoU" in err and "img/s" in err
    model, meta = checkpoints.load_sosnet(out)
    assert model.config == ts.hrnet_config(**TINY) and not model.training
    assert meta["kind"] == "sosnet training run" and meta["layout"] == "sosmaskfuse"
    assert meta["data"]["layout"] == "Inf/GT" and meta["data"]["split"] == "fold 1 of 4 (seed 118)"
    assert meta["data"]["held_out_pairs"] == 2 and meta["input_size"] == [64, 48]
    assert meta["config"]["folds"] == 4 and meta["config"]["milestones"] == [100, 150]
    assert {"iou", "f_measure", "mae"} <= set(meta["metrics"]) and meta["code_version"]
    assert checkpoints.identify(checkpoints.read_file(out)) == (SOSNet.architecture, "sosmaskfuse")


def _run(args, capsys):
    rc = cli.main(["train-sosnet", *args, *TINY_ARGS])
    return rc, capsys.readouterr().err


def test_bad_data_folders_fail_clearly(tmp_path, capsys):
    out = ["--out", str(tmp_path / "x.pt")]
    rc, err = _run(["--data", str(tmp_path / "nowhere"), *out], capsys)
    assert rc == 2 and "nowhere: not a folder" in err
    (tmp_path / "flat").mkdir()
    rc, err = _run(["--data", str(tmp_path / "flat"), *out], capsys)
    assert rc == 2 and "expected subfolders Inf/ and GT/" in err
    (tmp_path / "half" / "Inf").mkdir(parents=True)
    rc, err = _run(["--data", str(tmp_path / "half"), *out], capsys)
    assert rc == 2 and "has Inf/ but no GT/" in err
    (tmp_path / "empty" / "ir").mkdir(parents=True)
    (tmp_path / "empty" / "mask").mkdir()
    rc, err = _run(["--data", str(tmp_path / "empty"), *out], capsys)
    assert rc == 2 and "no image files" in err
    bad = make_data(tmp_path / "bad", n=2)
    (bad / "mask" / "00.png").rename(bad / "mask" / "zz.png")
    (bad / "mask" / "01.png").rename(bad / "mask" / "yy.png")
    rc, err = _run(["--data", str(bad), *out], capsys)
    assert rc == 2 and "no thermal image has a mask of the same name" in err
    assert "00.png" in err and "zz.png" in err
    assert not (tmp_path / "x.pt").exists()


def test_a_file_without_partner_is_reported_and_skipped(tmp_path):
    data = make_data(tmp_path / "d", n=4)
    (data / "mask" / "03.png").unlink()
    (data / "ir" / "notes.txt").write_text("not an image")
    layout, pairs, skipped = ts.find_pairs(data)
    assert layout == "ir/mask" and [p[0] for p in pairs] == ["00", "01", "02"]
    assert len(skipped) == 1 and "03.png: no partner in mask/" in skipped[0]
    with pytest.raises(DataError, match="no training pairs left"):
        ts.split_data(tiny_cfg(data, folds=None, val_fraction=0.9))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    data = make_data(tmp_path / "d", n=8)
    calls = {"n": 0}
    real = ts.sos_loss

    def poisoned(logit, target, pos_weight=None):
        calls["n"] += 1
        loss = real(logit, target, pos_weight)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(sos_loop, "sos_loss", poisoned)
    out = tmp_path / "nan.pt"
    rc, err = _run(
        ["--data", str(data), "--out", str(out), "--epochs", "5", "--checkpoint-every", "1"],
        capsys,
    )
    assert (
        rc == 3 and "loss is nan at step 3" in err and f"the last good checkpoint is {out}" in err
    )
    obj = checkpoints.read_file(out)
    assert obj["training"]["state"]["step"] == 3
    model, meta = checkpoints.load_sosnet(
        out
    )  # loads, all weights finite (load is strict about NaN)
    assert meta["steps"] == 3


def test_nonfinite_weights_are_never_saved(tmp_path):
    data = make_data(tmp_path / "d", n=4)
    with pytest.raises(runner.NonFiniteLoss):
        ts.train(tiny_cfg(data, lr=1e30, epochs=3), tmp_path / "big.pt", stream=io.StringIO())
    if (tmp_path / "big.pt").exists():
        checkpoints.load_sosnet(tmp_path / "big.pt")  # whatever was kept is finite


# The TINY network's width, stem and depths in the official HRNet classifier's terms.
TINY_OFFICIAL = dict(
    width=4, stem=8, layer1_blocks=1, stage_modules=(1, 1, 1), blocks_per_branch=1
)


def imagenet_state(seed: int = 3, **overrides) -> dict:
    """A synthetic official-HRNet ImageNet classifier checkpoint of the TINY width and depths.

    Its keys are written out from the published code (test/official_hrnet.py), head and all,
    not taken from our SOSNet.
    """
    return official_hrnet_state(seed, **{**TINY_OFFICIAL, **overrides})


def test_init_from_imagenet_averages_the_stem_and_drops_the_head(tmp_path):
    cfg = ts.hrnet_config(**TINY)
    state = imagenet_state()
    path = tmp_path / "hrnetv2_w4_imagenet.pth"
    torch.save(state, path)
    layout, obj = ts.read_init(str(path))
    assert layout == "imagenet"
    torch.manual_seed(7)
    model = SOSNet(cfg)
    fresh_head = {
        k: v.clone() for k, v in model.state_dict().items() if k.startswith("last_layer.")
    }
    info = ts.initialise(model, str(path), layout, obj)
    ours = model.state_dict()
    assert torch.allclose(ours["conv1.weight"], state["conv1.weight"].mean(dim=1, keepdim=True))
    head = [k for k in state if k.startswith(HEAD_PREFIXES)]
    assert len(head) == 4 * 24 + 3 * 7 + 7 + 2  # incre_modules, downsamp_modules, final, fc
    assert info["stem_averaged_from"] == [8, 3, 3, 3] and info["dropped_head_keys"] == len(head)
    assert info["backbone_keys"] == len(state) - len(head)
    assert torch.equal(
        ours["stage4.0.branches.3.0.conv2.weight"], state["stage4.0.branches.3.0.conv2.weight"]
    )
    assert torch.equal(ours["bn1.running_var"], state["bn1.running_var"])
    assert all(torch.equal(ours[k], v) for k, v in fresh_head.items())  # last_layer: default init

    broken = dict(state)
    del broken["stage3.0.fuse_layers.1.0.0.0.weight"]
    torch.save(broken, tmp_path / "missing.pth")
    with pytest.raises(
        checkpoints.CheckpointError, match=r"missing\.pth: missing key 'stage3\.0\.fuse_layers"
    ):
        ts.initialise(
            SOSNet(cfg),
            str(tmp_path / "missing.pth"),
            *ts.read_init(str(tmp_path / "missing.pth")),
        )
    broken = dict(state)
    broken["transition2.2.0.0.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(broken, tmp_path / "shape.pth")
    with pytest.raises(
        checkpoints.CheckpointError,
        match=r"shape\.pth: key 'transition2\.2\.0\.0\.weight' has shape",
    ):
        ts.initialise(
            SOSNet(cfg), str(tmp_path / "shape.pth"), *ts.read_init(str(tmp_path / "shape.pth"))
        )


def test_the_published_w30_imagenet_layout_initialises_the_paper_network():
    """The full official HRNetV2-W30-C key list (as the published checkpoint has it)."""
    state = official_hrnet_state(5, **W30)
    model = SOSNet(ts.hrnet_config())
    info = ts.initialise(model, "hrnetv2_w30_imagenet_pretrained.pth", "imagenet", state)
    head = [k for k in state if k.startswith(HEAD_PREFIXES)]
    assert info["dropped_head_keys"] == len(head) == 126
    assert info["stem_averaged_from"] == [64, 3, 3, 3]
    ours = model.state_dict()
    assert torch.equal(
        ours["stage4.2.fuse_layers.3.0.2.0.weight"], state["stage4.2.fuse_layers.3.0.2.0.weight"]
    )
    assert torch.equal(ours["transition3.3.0.0.weight"], state["transition3.3.0.0.weight"])
    assert torch.allclose(ours["conv1.weight"], state["conv1.weight"].mean(dim=1, keepdim=True))


def test_checkpoints_saved_before_num_batches_tracked_load_too(tmp_path):
    """PyTorch < 0.4.1 wrote no num_batches_tracked (the HRNet releases may lack it)."""
    state = imagenet_state(tracked=False)
    assert not any(k.endswith("num_batches_tracked") for k in state)
    torch.save(state, tmp_path / "old.pth")
    model = SOSNet(ts.hrnet_config(**TINY))
    info = ts.initialise(
        model, str(tmp_path / "old.pth"), *ts.read_init(str(tmp_path / "old.pth"))
    )
    assert info["layout"] == "imagenet"
    assert torch.equal(model.state_dict()["layer1.0.conv3.weight"], state["layer1.0.conv3.weight"])


def test_cli_init_from_imagenet_then_fine_tune_from_our_checkpoint(tmp_path, capsys):
    data = make_data(tmp_path / "d", n=4)
    path = tmp_path / "imagenet.pth"
    torch.save({"state_dict": imagenet_state()}, path)
    first = tmp_path / "first.pt"
    rc, err = _run(
        ["--data", str(data), "--out", str(first), "--epochs", "1", "--init", str(path)], capsys
    )
    assert rc == 0, err
    _, meta = checkpoints.load_sosnet(first)
    assert meta["init"]["layout"] == "imagenet" and meta["init"]["stem_averaged_from"] == [
        8,
        3,
        3,
        3,
    ]
    # Our own checkpoint as --init: its architecture is used when no network option is given.
    rc = cli.main(
        [
            "train-sosnet",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "second.pt"),
            "--epochs",
            "1",
            "--init",
            str(first),
            "--size",
            "64",
            "48",
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    model, meta = checkpoints.load_sosnet(tmp_path / "second.pt")
    assert model.config == ts.hrnet_config(**TINY) and meta["init"]["layout"] == "sosmaskfuse"
    rc = cli.main(
        [
            "train-sosnet",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "third.pt"),
            "--epochs",
            "1",
            "--init",
            str(first),
            "--width",
            "6",
            "--size",
            "64",
            "48",
            "--device",
            "cpu",
        ]
    )
    assert rc == 2 and "another architecture" in capsys.readouterr().err


def test_mask_quality_scores_at_the_mask_resolution_with_mask_metrics():
    """A network whose logit is +/-10 by a fixed pattern.

    The figures are mask_metrics' on the upsampled probability against the full-resolution mask.
    """
    from sosmaskfuse_core.evaluation import mask_metrics

    class Fixed(torch.nn.Module):
        def forward(self, x):
            logit = torch.full_like(x, -10.0)
            logit[..., 8:24, 16:48] = 10.0
            return logit

    mask = np.zeros((96, 128, 3), np.uint8)
    mask[20:44, 40:90] = 255
    thermal = np.zeros((96, 128, 1), np.uint8)
    q = ts.mask_quality(
        Fixed(), [ts.MaskSample("a", thermal, mask)], (64, 32), torch.device("cpu")
    )
    prob = logit_to_probability(Fixed()(torch.zeros(1, 1, 32, 64)), (96, 128))[0, 0].numpy()
    gt = mask[:, :, 0] >= 128
    assert q["per_image"]["a"]["iou"] == pytest.approx(mask_metrics.iou(prob >= 0.5, gt))
    assert q["f_measure"] == pytest.approx(mask_metrics.f_measure(prob >= 0.5, gt))
    assert q["mae"] == pytest.approx(mask_metrics.mae(prob, gt.astype(float)))
    assert 0.3 < q["iou"] < 0.9 and q["images"] == 1
