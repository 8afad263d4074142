"""The node's fallbacks on real rclpy: only what failed is replaced, and it says so everywhere.

A device or precision that cannot run here keeps the user's models; unusable, malformed or
numerically broken weights fall back to the shipped ones; every reason reaches the log
(/rosout) and /diagnostics; a pipeline whose output is not finite publishes nothing and is an
ERROR until good frames come again.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

import torch  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from node_rig import SEC, Rig, Store, stamp_ns  # noqa: E402
from ros_helpers import wait_for  # noqa: E402

from sosmaskfuse_core.models import checkpoints  # noqa: E402
from sosmaskfuse_ros import model_loading  # noqa: E402

#: A CUDA device this machine does not have, with or without a GPU.
ABSENT_CUDA = f"cuda:{torch.cuda.device_count()}"


@pytest.fixture
def rig(session, tiny_checkpoint_files):
    rigs = []

    def make(weights=tiny_checkpoint_files, **kw):
        rigs.append(Rig(session, weights, **kw))
        rigs[-1].diagnostics = Store()
        fqn = rigs[-1].node.get_fully_qualified_name()
        rigs[-1].tester.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m, store=rigs[-1].diagnostics: [
                store(s) for s in m.status if s.name == f"{fqn}: fusion"
            ],
            10,
        )
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


# precision auto on a CPU: bf16 where the CPU computes it natively (its flags), else fp32
_CPU_AUTO_PRECISION = (
    "bf16"
    if {"avx512_bf16", "amx_bf16"} & set(Path("/proc/cpuinfo").read_text().split())
    else "fp32"
)


def _values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def test_an_unusable_device_keeps_the_users_models_and_runs_them_on_the_cpu(
    rig, rosout, tiny_checkpoint_files
):
    r = rig(device=ABSENT_CUDA)
    ae_path, sos_path = tiny_checkpoint_files
    assert r.node.pipeline.device.type == "cpu"
    assert ae_path in r.node.sources.autoencoder and "shipped" not in r.node.sources.autoencoder
    assert sos_path in r.node.sources.mask and r.node.pipeline.mask_source == "sosnet"
    assert ABSENT_CUDA in r.node.report.fallback
    assert rosout.wait_line(r.logger, f"fusing on cpu ({_CPU_AUTO_PRECISION})")
    r.pair(1 * SEC)
    assert r.wait_outputs(1)


def test_fp16_on_the_cpu_keeps_the_users_models_and_the_log_says_fp32(
    rig, rosout, tiny_checkpoint_files
):
    r = rig(precision="fp16")
    assert r.node.pipeline.config.precision == "fp32"
    assert tiny_checkpoint_files[0] in r.node.sources.autoencoder
    assert tiny_checkpoint_files[1] in r.node.sources.mask
    assert rosout.wait_line(r.logger, "fusing on cpu (fp32)")
    assert not any("(fp16)" in line for line in rosout.texts(r.logger) if "fusing on" in line)
    assert r.diagnostics.wait(lambda items: items and _values(items[-1])["precision"] == "fp32")


def test_a_bad_device_and_missing_weights_give_the_shipped_defaults_on_the_cpu(rig):
    r = rig(weights=("/nonexistent/ae.pt", "/nonexistent/sos.pt"), device=ABSENT_CUDA)
    assert r.node.pipeline.device.type == "cpu"
    assert "shipped lite" in r.node.sources.autoencoder
    assert ABSENT_CUDA in r.node.report.fallback and "no such checkpoint" in r.node.report.fallback
    r.pair(1 * SEC)
    assert r.wait_outputs(1)


def test_the_fallbacks_reason_is_in_the_log_and_in_the_diagnostics(rig, rosout):
    r = rig(weights=("/nonexistent/ae.pt", ""))
    assert rosout.wait_line(r.logger, "no such checkpoint file")
    assert rosout.wait_line(r.logger, "running fallback")
    r.pair(1 * SEC)
    assert r.wait_outputs(1)
    assert r.diagnostics.wait(
        lambda items: items and "no such checkpoint file" in items[-1].message
    ), [s.message for s in r.diagnostics]
    status = r.diagnostics[-1]
    assert status.level == DiagnosticStatus.WARN  # running, but not what was configured
    assert "/nonexistent/ae.pt" in _values(status)["fallback"]


@pytest.mark.parametrize(
    "damage,text",
    [
        ("no widths", "config has no 'widths'"),
        ("no state dict", "'state_dict' is missing or not a dict"),
        ("weights x 1e30", "NaN or infinite values on a 32x32 probe frame"),
        ("all zero", "the same output whatever its input"),
    ],
)
def test_malformed_or_numerically_broken_autoencoders_fall_back(
    rig, tmp_path, tiny_autoencoder, damage, text
):
    path = tmp_path / "ae.pt"
    checkpoints.save_checkpoint(path, tiny_autoencoder)
    obj = torch.load(path, weights_only=True)
    if damage == "no widths":
        del obj["config"]["widths"]
    elif damage == "no state dict":
        obj["state_dict"] = None
    elif damage == "all zero":
        obj["state_dict"] = {k: torch.zeros_like(v) for k, v in obj["state_dict"].items()}
    else:
        obj["state_dict"] = {k: v * 1e30 for k, v in obj["state_dict"].items()}
    torch.save(obj, path)
    r = rig(weights=(str(path), ""))
    assert r.node.state == "active"
    assert "shipped lite" in r.node.sources.autoencoder
    assert text in r.node.report.fallback
    r.pair(1 * SEC)
    assert r.wait_outputs(1)


def test_a_non_finite_output_is_never_published_and_is_an_error_until_good_frames_again(rig):
    r = rig(precision="fp32")  # the decoder scaled below is the one that runs
    with torch.no_grad():
        for p in r.node.pipeline.autoencoder.decoder.parameters():
            p.mul_(1e30)
    r.pair(1 * SEC)
    assert wait_for(lambda: r.node.counts.failed == 1)
    assert r.diagnostics.wait(lambda items: items and items[-1].level == DiagnosticStatus.ERROR), [
        s.message for s in r.diagnostics
    ]
    assert "NaN or infinite" in r.diagnostics[-1].message
    with torch.no_grad():
        for p in r.node.pipeline.autoencoder.decoder.parameters():
            p.div_(1e30)
    r.pair(2 * SEC)
    assert r.wait_outputs(1)
    assert [stamp_ns(m) for m in r.fused] == [2 * SEC]  # the non-finite pair never came out
    assert r.diagnostics.wait(
        lambda items: (
            items and (items[-1].level, items[-1].message) == (DiagnosticStatus.OK, "fusing")
        )
    )
    assert _values(r.diagnostics[-1])["last error"] == ""


def test_with_allow_fallback_false_nothing_is_replaced_and_configure_says_why(rig):
    gpu = rig(device=ABSENT_CUDA, allow_fallback=False, wait_subscribed=False)
    assert gpu.node.state == "unconfigured" and gpu.node.stage is None
    error = gpu.node.report.config_error
    assert "cannot run as configured (allow_fallback is false)" in error and ABSENT_CUDA in error
    assert gpu.diagnostics.wait(lambda items: items and items[-1].level == DiagnosticStatus.ERROR)
    weights = rig(weights=("/nonexistent/ae.pt", ""), allow_fallback=False, wait_subscribed=False)
    assert weights.node.state == "unconfigured"
    assert "no such checkpoint file" in weights.node.report.config_error
    fine = rig(allow_fallback=False)  # what can run as configured runs
    fine.pair(1 * SEC)
    assert fine.wait_outputs(1)


# --- the fallback order, without ROS ----------------------------------------------------------


def test_the_last_resort_runs_on_the_cpu_even_when_the_device_fails_late(monkeypatch):
    """A device that resolves but cannot hold the models (e.g. out of memory) ends on the CPU."""
    tried = []

    def build_stage(values, **overrides):
        tried.append(overrides)
        if overrides["device"] != "cpu":
            raise RuntimeError(f"{overrides['device']}: out of memory")
        pipeline = SimpleNamespace(
            device=overrides["device"], config=SimpleNamespace(precision="fp32")
        )
        return SimpleNamespace(pipeline=pipeline), model_loading.builder.ModelSources("a", "b")

    monkeypatch.setattr(model_loading.builder, "build_stage", build_stage)
    monkeypatch.setattr(model_loading, "resolve_device", lambda spec: torch.device("cpu"))
    monkeypatch.setattr(model_loading, "check_precision", lambda p, d: p)
    monkeypatch.setattr(model_loading, "LoadedModels", lambda *a: a)
    values = {
        "autoencoder_weights": "mine.pt",
        "sosnet_weights": "",
        "mask_source": "auto",
        "device": "cuda:0",
        "precision": "fp16",
    }
    errors = []
    stage, sources, fallback = model_loading.load_models(values, errors.append)
    assert [t["device"] for t in tried] == ["cuda:0", "cuda:0", "cpu"]
    assert tried[-1] == {
        "autoencoder_weights": "auto",
        "sosnet_weights": "",
        "mask_source": "auto",
        "device": "cpu",
        "precision": "fp32",
        "backend": "torch",
    }
    assert "cuda:0: out of memory" in fallback and len(errors) == 3


def test_an_unusable_backend_falls_back_to_torch_and_keeps_the_users_models(monkeypatch):
    """backend:=onnxruntime where it cannot run changes only the backend."""
    tried = []

    def build_stage(values, **overrides):
        tried.append(overrides)
        pipeline = SimpleNamespace(device="cpu", config=SimpleNamespace(precision="fp32"))
        return SimpleNamespace(pipeline=pipeline), model_loading.builder.ModelSources("a", "b")

    def choose_backend(backend, device, precision):
        if backend == "onnxruntime":
            raise ValueError("backend 'onnxruntime' needs the onnxruntime package")
        return backend

    monkeypatch.setattr(model_loading.builder, "build_stage", build_stage)
    monkeypatch.setattr(model_loading, "choose_backend", choose_backend)
    monkeypatch.setattr(model_loading, "LoadedModels", lambda *a: a)
    values = {
        "autoencoder_weights": "mine.pt",
        "sosnet_weights": "sos.pt",
        "mask_source": "sosnet",
        "device": "cpu",
        "precision": "fp32",
        "backend": "onnxruntime",
    }
    errors = []
    _, _, fallback = model_loading.load_models(values, errors.append)
    assert tried == [
        {
            "autoencoder_weights": "mine.pt",
            "sosnet_weights": "sos.pt",
            "mask_source": "sosnet",
            "device": "cpu",
            "precision": "fp32",
            "backend": "torch",
        }
    ]
    assert "onnxruntime" in fallback and "onnxruntime" in errors[0]
