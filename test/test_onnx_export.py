"""`sosmaskfuse export-onnx`: the three networks as ONNX files that ORT runs as PyTorch does."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from sosmaskfuse_core import cli
from sosmaskfuse_core.models.checkpoints import load_autoencoder, load_sosnet
from sosmaskfuse_core.models.shipped import SHIPPED_SOSNET

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (extra 'onnx')")
pytest.importorskip("onnx", reason="onnx is not installed (extra 'onnx')")


@pytest.fixture(scope="module")
def exported(tiny_checkpoint_files, tmp_path_factory):
    ae, sos = tiny_checkpoint_files
    out = tmp_path_factory.mktemp("onnx")
    code = cli.main(["export-onnx", "--out", str(out), "--autoencoder", ae, "--sosnet", sos])
    return code, out, ae, sos


def test_writes_three_files_that_pass_their_check(exported, capsys):
    code, out, _, _ = exported
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["decoder.onnx", "encoder.onnx", "sosnet.onnx"]


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("n, h, w", [(3, 50, 70), (1, 33, 47)])
def test_the_files_take_any_batch_and_size_and_match_pytorch(exported, n, h, w):
    _, out, ae_path, sos_path = exported
    ae, _ = load_autoencoder(ae_path)
    sos, _ = load_sosnet(sos_path)
    encoder, decoder, sosnet = (
        _session(out / f"{k}.onnx") for k in ("encoder", "decoder", "sosnet")
    )
    assert [d for d in encoder.get_inputs()[0].shape] == ["batch", 1, "height", "width"]
    image = torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(n)) * 255
    with torch.no_grad():
        feats = ae.encoder(image)
        fused = [0.5 * f for f in feats]  # any features: the decoder is a separate file
        expected = ae.decoder(fused).numpy()
        logit = sos(image / 255.0).numpy()
    got_feats = encoder.run(None, {"image": image.numpy()})
    for g, e in zip(got_feats, feats):
        assert g.shape == tuple(e.shape)
        assert np.abs(g - e.numpy()).max() <= 1e-4 * np.abs(e.numpy()).max()
    inputs = {f"f{i + 1}": f.numpy() for i, f in enumerate(fused)}
    got = decoder.run(None, inputs)[0]
    assert got.shape == (n, 1, h, w)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    got_logit = sosnet.run(None, {"image": (image / 255.0).numpy()})[0]
    assert np.abs(got_logit - logit).max() <= 1e-4 * max(np.abs(logit).max(), 1e-6)


def test_a_check_that_fails_sets_the_exit_code(tiny_checkpoint_files, tmp_path, capsys):
    ae, _ = tiny_checkpoint_files
    # float32 arithmetic never agrees to 0, so a zero tolerance must fail
    code = cli.main(
        ["export-onnx", "--out", str(tmp_path), "--autoencoder", ae, "--tolerance", "0"]
    )
    assert code == 1
    assert "ABOVE 0" in capsys.readouterr().out
    # none given: the shipped network is exported (and checked) with the autoencoder
    assert (tmp_path / "sosnet.onnx").exists() == SHIPPED_SOSNET.is_file()


def test_without_the_onnx_package_it_says_what_to_install(
    tiny_checkpoint_files, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails
    code = cli.main(
        ["export-onnx", "--out", str(tmp_path), "--autoencoder", tiny_checkpoint_files[0]]
    )
    assert code == 2
    assert "pip install 'sosmaskfuse_ros[onnx]'" in capsys.readouterr().err
