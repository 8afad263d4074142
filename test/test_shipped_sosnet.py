"""The shipped SOS network: the default mask source, documented, better than the classical mask."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import shared_path

from sosmaskfuse_core.evaluation import mask_metrics
from sosmaskfuse_core.evaluation.weak_eval import evaluate_boxes
from sosmaskfuse_core.models.checkpoints import load_sosnet
from sosmaskfuse_core.models.shipped import SHIPPED_SOSNET
from sosmaskfuse_core.pipeline.builder import build_pipeline
from sosmaskfuse_core.pipeline.fusion_pipeline import PipelineConfig
from sosmaskfuse_core.pipeline.sos_masker import SOSNetMasker
from sosmaskfuse_core.thermal.agc import ThermalAGC
from sosmaskfuse_core.thermal.hot_object_mask import ThermalHotObjectMasker
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene

MODEL_CARD = SHIPPED_SOSNET.parent / "MODEL_CARD_sosnet.md"


@pytest.fixture(scope="module")
def shipped_masker():
    return SOSNetMasker(str(SHIPPED_SOSNET))


def test_auto_uses_the_shipped_network_and_the_log_names_it():
    pipeline, sources = build_pipeline(device="cpu")
    assert sources.mask.startswith(f"shipped SOS network {SHIPPED_SOSNET}"), sources.mask
    assert sources.mask.endswith("averaged with the classical thermal mask"), sources.mask
    assert pipeline.mask_source == "ensemble" and pipeline.sosnet is not None
    # the classical mask and the network alone stay one setting away
    _, classical = build_pipeline(device="cpu", mask_source="thermal")
    assert classical.mask == "classical thermal hot-object mask (no network)"
    alone, network = build_pipeline(device="cpu", mask_source="sosnet")
    assert alone.mask_source == "sosnet" and "averaged" not in network.mask


def test_weights_you_give_run_alone_under_auto():
    pipeline, sources = build_pipeline(device="cpu", sosnet=str(SHIPPED_SOSNET))
    assert pipeline.mask_source == "sosnet"
    assert sources.mask.startswith("SOS network, weights ") and "averaged" not in sources.mask


def test_the_ensemble_is_the_mean_of_the_network_and_the_classical_mask():
    frame = SyntheticScene(320, 256, seed=3).render(1.0)
    ir = ThermalAGC(mode="minmax").apply(frame.thermal)
    masks = {
        source: build_pipeline(device="cpu", mask_source=source)[0].mask(ir)
        for source in ("ensemble", "sosnet", "thermal")
    }
    assert np.abs(masks["sosnet"] - masks["thermal"]).max() > 0.5  # two different opinions
    np.testing.assert_allclose(
        masks["ensemble"], (masks["sosnet"] + masks["thermal"]) / 2, atol=1e-6
    )


def test_the_shipped_file_is_a_release_with_its_training_record():
    model, meta = load_sosnet(SHIPPED_SOSNET)
    assert meta["stored_as"] == "float16"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert meta["input_size"] == [320, 256] and meta["steps"] > 0
    card = MODEL_CARD.read_text()
    assert f"{meta['steps']} steps" in card
    assert "sosmaskfuse eval-mask" in card and "--source sosnet" in card
    assert re.search(r"IoU \*\*0\.\d+\*\*", card)


def test_on_the_synthetic_street_it_finds_the_targets_better_than_the_classical_mask(
    shipped_masker,
):
    """In every clone: the scene's true target mask, frames never used in training."""
    ious = {"sosnet": [], "thermal": []}
    classical = ThermalHotObjectMasker()
    for seed in (0, 1, 2):
        frame = SyntheticScene(320, 256, seed=seed).render(1.0)
        ir = ThermalAGC(mode="minmax").apply(frame.thermal)
        truth = mask_metrics.to_unit_float(frame.mask)
        ious["sosnet"].append(mask_metrics.iou(shipped_masker(ir), truth))
        ious["thermal"].append(mask_metrics.iou(classical(ir), truth))
    assert np.mean(ious["sosnet"]) >= 0.4, ious
    assert np.mean(ious["sosnet"]) > np.mean(ious["thermal"]), ious


def test_on_held_out_drone_frames_its_mask_stays_on_the_targets(shipped_masker, tmp_path):
    """HIT-UAV test split (never trained on): most mask pixels lie in a labelled box."""
    root = shared_path("data", "hit_uav")
    # the authors' split lists the whole set; only some of its images are here
    here = {p.stem for p in (root / "images").iterdir()}
    stems = sorted(set((root / "test.txt").read_text().split()) & here)[:12]
    (tmp_path / "stems.txt").write_text("\n".join(stems))
    args = (str(root / "images"), str(root / "annotations"))
    net = evaluate_boxes(*args, shipped_masker, stems_file=str(tmp_path / "stems.txt"))
    classical = evaluate_boxes(
        *args, ThermalHotObjectMasker(), stems_file=str(tmp_path / "stems.txt")
    )
    assert net["boxes"] > 50
    assert net["precision"] >= 0.6 > classical["precision"], (net, classical)
    assert net["recall"] >= classical["recall"] - 0.05, (net, classical)


def test_a_dim_thermal_camera_gives_the_same_targets_through_the_input_stretch():
    """IR x 0.3 (a dim 8-bit camera): the stretched SOS input finds what the bright frame shows."""
    stretched = build_pipeline(device="cpu", mask_source="sosnet")[0]
    paper_input = build_pipeline(
        device="cpu", mask_source="sosnet", config=PipelineConfig(mask_input_stretch=False)
    )[0]
    ious = {"stretched": [], "paper input": []}
    for seed in (0, 1, 2):
        frame = SyntheticScene(320, 256, seed=seed).render(1.0)
        ir = ThermalAGC(mode="minmax").apply(frame.thermal)
        dim = np.round(ir * 0.3).astype(np.uint8)
        truth = mask_metrics.to_unit_float(frame.mask)
        ious["stretched"].append(mask_metrics.iou(stretched.mask(dim), truth))
        ious["paper input"].append(mask_metrics.iou(paper_input.mask(dim), truth))
    assert np.mean(ious["stretched"]) >= 0.4, ious
    assert np.mean(ious["stretched"]) > np.mean(ious["paper input"]) + 0.1, ious
