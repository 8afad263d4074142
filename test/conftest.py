"""Shared test fixtures: the ../shared folder, small random networks and an isolated ROS domain."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Every test session gets its own DDS domain, so parallel runs on one machine never cross-talk.
# Set before anything imports rclpy; a domain given from outside is respected.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when that folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"{path} is absent (../shared is only beside the repository on dev/CI machines)"
        )
    return path


def make_tiny_autoencoder():
    """The real IMV-F architecture with random weights scaled to keep activations moderate."""
    from sosmaskfuse_core.models.imvf_autoencoder import IMVFAutoencoder

    torch.manual_seed(0)
    model = IMVFAutoencoder().eval()
    with torch.no_grad():
        model.encoder.stem.conv.weight.mul_(1 / 255.0)
        model.decoder.head.conv.bias.fill_(1.0)
    return model


def make_tiny_sosnet():
    """The real HRNetV2 SOS network, narrow, with random weights."""
    from sosmaskfuse_core.models.sos_hrnet import HRNetConfig, SOSNet

    torch.manual_seed(0)
    cfg = HRNetConfig(
        stem_channels=8,
        layer1_blocks=1,
        stage_channels=((4, 8), (4, 8, 16), (4, 8, 16, 32)),
        stage_modules=(1, 1, 1),
        blocks_per_branch=1,
    )
    return SOSNet(cfg).eval()


@pytest.fixture
def tiny_autoencoder():
    return make_tiny_autoencoder()


@pytest.fixture
def tiny_sosnet():
    return make_tiny_sosnet()


@pytest.fixture(scope="session")
def tiny_checkpoint_files(tmp_path_factory) -> tuple[str, str]:
    """The two tiny networks saved once per test session: (autoencoder path, SOS network path)."""
    from sosmaskfuse_core.models import checkpoints

    root = tmp_path_factory.mktemp("weights")
    checkpoints.save_checkpoint(root / "ae.pt", make_tiny_autoencoder())
    checkpoints.save_checkpoint(root / "sos.pt", make_tiny_sosnet())
    return str(root / "ae.pt"), str(root / "sos.pt")
