"""Shared test fixtures: the ../shared folder, small random networks and an isolated ROS domain."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def load_module(path: Path, name: str, register: bool = False) -> ModuleType:
    """A Python file that is not part of a package (a benchmark, a launch file) as a module.

    `register`: also put it in `sys.modules` under `name` (dataclasses look their module up
    there); the caller removes it when done.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: DDS domains for test sessions. Fast DDS on one host has valid ports for 0..101 (232 with few
#: participants); 0 is every ROS install's default, and tutorials, robots and colcon's domain
#: coordinator mostly take the low ids, so the sessions stay in the upper half.
TEST_DOMAINS = range(51, 102)
_DOMAIN_LOCKS: list = []  # open lock files: a claimed domain stays claimed while we run


def claim_domain_id(pid: int | None = None, lock_dir: Path | None = None) -> int:
    """A domain for this test session: derived from the process id, never one held by another.

    Starting at ``TEST_DOMAINS[pid % len]``, the first domain whose lock file (in ``lock_dir``,
    default the temp folder) no other process holds is locked until this process exits; so two
    sessions on one host never share a domain, whatever their process ids. Without file locks
    (not POSIX) the pid-derived domain is used as it is.
    """
    pid = os.getpid() if pid is None else pid
    start = pid % len(TEST_DOMAINS)
    order = [TEST_DOMAINS[(start + k) % len(TEST_DOMAINS)] for k in range(len(TEST_DOMAINS))]
    try:
        import fcntl
    except ImportError:
        return order[0]
    lock_dir = lock_dir or Path(tempfile.gettempdir()) / "sosmaskfuse-test-ros-domains"
    lock_dir.mkdir(parents=True, exist_ok=True)
    for domain in order:
        handle = open(lock_dir / f"{domain}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _DOMAIN_LOCKS.append(handle)
        return domain
    return order[0]  # every domain is taken: share the pid-derived one


# Every test session gets its own DDS domain, so parallel runs on one machine never cross-talk
# (namespaces, /clock and all); discovery stays on this host. Set before anything imports
# rclpy; a domain given from outside is respected. Subprocesses inherit both.
if "ROS_DOMAIN_ID" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = str(claim_domain_id())
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


# --- ROS fixtures (rclpy imported only by the tests that ask for them) -----------------------


@pytest.fixture(scope="module")
def session():
    """One `RosSession` (own rclpy context, background executor) per test module."""
    from ros_helpers import RosSession

    s = RosSession()
    yield s
    s.close()


@pytest.fixture(scope="module")
def rosout(session):
    """The module's /rosout listener (`node_rig.Rosout`)."""
    from node_rig import Rosout

    return Rosout(session)


@pytest.fixture
def rig(session, tiny_checkpoint_files):
    """`rig(**parameters)`: a fusion node on the tiny networks with its tester, closed after."""
    from node_rig import Rig

    rigs = []

    def make(**kw):
        rigs.append(Rig(session, tiny_checkpoint_files, **kw))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()
