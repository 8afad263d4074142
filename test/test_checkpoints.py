"""Checkpoint loading: authors' and our layouts, strict keys, safe unpickling, clear errors."""

import copy
import os
import zipfile

import pytest
import torch

from sosmaskfuse_core.models import checkpoints as ck
from sosmaskfuse_core.models import imvf_autoencoder as ae
from sosmaskfuse_core.models import sos_hrnet as hr


@pytest.fixture(scope="module")
def authors_autoencoder_state():
    torch.manual_seed(3)
    return ck.export_authors_layout(ae.IMVFAutoencoder())


@pytest.fixture(scope="module")
def authors_sosnet_file(tmp_path_factory):
    torch.manual_seed(4)
    net = hr.SOSNet()
    path = tmp_path_factory.mktemp("sos") / "normal_epoch_170.pth"
    torch.save(ck.export_authors_layout(net), path)
    return path, net


def _save(tmp_path, obj, name="x.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_authors_autoencoder_loads_exactly(tmp_path, authors_autoencoder_state):
    path = _save(tmp_path, authors_autoencoder_state, "Epoch_model_1.model")
    model, meta = ck.load_autoencoder(path)
    assert meta["layout"] == "authors"
    for key, value in authors_autoencoder_state.items():
        assert torch.equal(model.state_dict()[ae.authors_to_ours(key)], value)
    assert not model.training


def test_authors_sosnet_loads_exactly(authors_sosnet_file):
    path, net = authors_sosnet_file
    model, meta = ck.load_sosnet(path)
    assert meta["layout"] == "authors"
    for key, value in net.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_missing_key_is_named_with_the_file(tmp_path, authors_autoencoder_state):
    state = dict(authors_autoencoder_state)
    del state["DB2_1.denseblock.0.conv2d.bias"]
    path = _save(tmp_path, state)
    with pytest.raises(
        ck.CheckpointError, match=r"x\.pth: missing key 'DB2_1\.denseblock\.0\.conv2d\.bias'"
    ):
        ck.load_autoencoder(path)


def test_unexpected_key_is_named(tmp_path, authors_autoencoder_state):
    state = dict(authors_autoencoder_state, **{"DB9_9.denseblock.0.conv2d.weight": torch.zeros(1)})
    with pytest.raises(
        ck.CheckpointError, match=r"unexpected key 'DB9_9\.denseblock\.0\.conv2d\.weight'"
    ):
        ck.load_autoencoder(_save(tmp_path, state))


def test_misshaped_key_is_named_with_both_shapes(tmp_path, authors_autoencoder_state):
    state = dict(authors_autoencoder_state)
    state["conv_out.conv2d.weight"] = torch.zeros(2, 64, 1, 1)
    with pytest.raises(
        ck.CheckpointError,
        match=r"'conv_out\.conv2d\.weight' has shape \(2, 64, 1, 1\), "
        r"the model expects \(1, 64, 1, 1\)",
    ):
        ck.load_autoencoder(_save(tmp_path, state))


def test_nan_weights_are_refused(tmp_path, authors_autoencoder_state):
    state = dict(authors_autoencoder_state)
    state["conv0.conv2d.bias"] = torch.full((16,), float("nan"))
    with pytest.raises(ck.CheckpointError, match="'conv0.conv2d.bias' holds NaN"):
        ck.load_autoencoder(_save(tmp_path, state))


def test_wrong_loader_says_what_the_file_is(
    tmp_path, authors_autoencoder_state, authors_sosnet_file
):
    ae_path = _save(tmp_path, authors_autoencoder_state, "Epoch_model_1.model")
    with pytest.raises(
        ck.CheckpointError,
        match=r"IMV-F autoencoder checkpoint \(authors layout\), not an SOS "
        r"network .*load it with --autoencoder",
    ):
        ck.load_sosnet(ae_path)
    with pytest.raises(
        ck.CheckpointError, match=r"SOS network \(HRNetV2-W30\) checkpoint .*--sosnet"
    ):
        ck.load_autoencoder(authors_sosnet_file[0])


def test_unknown_and_junk_files(tmp_path):
    with pytest.raises(ck.CheckpointError, match="not an IMV-F autoencoder checkpoint"):
        ck.load_autoencoder(_save(tmp_path, {"foo.weight": torch.zeros(1)}))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ck.CheckpointError, match="junk.pth: not a PyTorch checkpoint"):
        ck.load_autoencoder(junk)
    with pytest.raises(ck.CheckpointError, match="no such checkpoint file"):
        ck.load_sosnet(tmp_path / "absent.pth")


@pytest.mark.parametrize(
    "content, what",
    [
        (bytes(4096), "4096 bytes"),  # torch: "legacy .tar format ... weights_only=False"
        (b"autoencoder weights go here\n", "28 bytes"),  # torch: KeyError 101
        (b"", "empty"),
    ],
    ids=["zeros", "text", "empty"],
)
def test_files_that_are_no_checkpoint_get_our_message_not_torchs_advice(tmp_path, content, what):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ck.CheckpointError) as caught:
        ck.load_autoencoder(path)
    text = str(caught.value)
    assert text == (
        f"{path}: not a PyTorch checkpoint ({what}, neither the zip archive torch.save writes "
        "nor PyTorch's legacy format)"
    )
    assert "weights_only=False" not in text and "will likely succeed" not in text


def test_a_folder_is_named_as_one(tmp_path):
    (tmp_path / "weights.pt").mkdir()
    with pytest.raises(ck.CheckpointError, match="weights.pt: a folder, not a checkpoint file"):
        ck.load_sosnet(tmp_path / "weights.pt")


def _inflating_checkpoint(path, declared_floats: int) -> None:
    """A torch.save archive whose one tensor declares `declared_floats` zeros, deflated.

    torch.save stores records uncompressed; deflated, the file is small and inflates to a lot.
    """
    import struct

    base = path.with_name("base.pt")
    torch.save({"w": torch.zeros(4)}, base)
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("data.pkl"):  # numel 4 (BININT1) -> BININT declared
                count = b"J" + struct.pack("<i", declared_floats)
                data = data.replace(b"K\x04t", count + b"t").replace(
                    b"K\x00K\x04\x85", b"K\x00" + count + b"\x85"
                )
            if info.filename.endswith("data/0"):
                packed = zipfile.ZipInfo(info.filename)
                packed.compress_type = zipfile.ZIP_DEFLATED
                with out.open(packed, "w") as f:
                    for _ in range(declared_floats * 4 // (1 << 20)):
                        f.write(bytes(1 << 20))
                continue
            out.writestr(info, data)


def test_a_small_file_declaring_far_more_than_it_holds_is_refused_before_loading(
    tmp_path, monkeypatch
):
    path = tmp_path / "bomb.pt"
    _inflating_checkpoint(path, 64 << 20)  # 256 MB of float zeros in a file of a few hundred KB
    assert path.stat().st_size < 2 << 20
    with zipfile.ZipFile(path) as archive:  # what torch.load would inflate and allocate
        (record,) = [i for i in archive.infolist() if i.filename.endswith("data/0")]
        assert record.file_size == 256 << 20
    with monkeypatch.context() as patched:  # torch.load would inflate the record whole

        def no_load(*args, **kwargs):
            raise AssertionError("torch.load reached")

        patched.setattr(ck.torch, "load", no_load)
        with pytest.raises(ck.CheckpointError, match=r"bomb.pt: holds compressed records"):
            ck.load_autoencoder(path)


def test_tensors_are_mapped_from_the_file_until_they_are_checked(tmp_path):
    """A file of the wrong layout costs no memory to refuse: its tensors are mapped, not read."""
    maps = "/proc/self/maps"
    if not os.path.exists(maps):
        pytest.skip("needs /proc/self/maps")
    path = _save(tmp_path, {"unrelated.weight": torch.zeros(1 << 20)}, "big_unrelated.pt")
    obj = ck.read_file(path)
    with open(maps) as f:
        assert str(path) in f.read()  # the storage is the file's pages, not a copy
    del obj
    with pytest.raises(ck.CheckpointError, match="not an IMV-F autoencoder checkpoint"):
        ck.load_autoencoder(path)


def test_pytorch_legacy_files_still_load(tmp_path, authors_autoencoder_state):
    path = tmp_path / "Epoch_model_1.model"
    torch.save(authors_autoencoder_state, path, _use_new_zipfile_serialization=False)
    model, meta = ck.load_autoencoder(path)
    assert meta["layout"] == "authors"
    key = "conv0.conv2d.weight"
    assert torch.equal(model.state_dict()[ae.authors_to_ours(key)], authors_autoencoder_state[key])


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv0.conv2d.weight": _Payload()}, path)
    with pytest.raises(ck.CheckpointError, match="weights_only=True") as caught:
        ck.load_autoencoder(path)
    assert "unsupported GLOBAL posix.system" in str(caught.value)
    assert "weights_only=False" not in str(caught.value)  # torch's unsafe advice is dropped


def test_our_format_round_trips_with_metadata_and_half_precision(tmp_path):
    torch.manual_seed(5)
    model = ae.IMVFAutoencoder(ae.AutoencoderConfig(widths=(8, 16, 24, 32), stem_channels=4))
    meta = {"steps": 12, "data": {"images": 3, "folders": ["a", "b"]}, "psnr": 41.5}
    path = tmp_path / "ours.pt"
    ck.save_checkpoint(path, model, meta, half=True)
    loaded, got = ck.load_autoencoder(path)
    assert loaded.config == model.config
    assert (
        got["steps"] == 12
        and got["data"]["folders"] == ["a", "b"]
        and got["layout"] == "sosmaskfuse"
    )
    for key, value in model.state_dict().items():
        assert torch.allclose(loaded.state_dict()[key], value.half().float())
    assert ck.identify(torch.load(path, weights_only=True)) == (ae.ARCHITECTURE, "sosmaskfuse")
    assert not os.path.exists(str(path) + ".tmp")


def test_differing_stem_alias_uses_the_authors_loader_order(tmp_path, authors_sosnet_file, caplog):
    path, net = authors_sosnet_file
    state = torch.load(path, weights_only=True)
    state[hr.AUTHORS_STEM_ALIAS] = torch.zeros_like(state[hr.AUTHORS_STEM_ALIAS])
    model, _ = ck.load_sosnet(_save(tmp_path, state))
    assert torch.equal(model.conv1.weight, net.conv1.weight)
    assert "differs" in caplog.text
    del state[hr.AUTHORS_STEM_ALIAS]
    with pytest.raises(ck.CheckpointError, match="missing key 'encoder_thermal_conv1.weight'"):
        ck.load_sosnet(_save(tmp_path, state, "y.pth"))


# --- malformed files of our format: a clear CheckpointError, never a KeyError or a huge build ---


def _our_file(tmp_path, model, name="ours.pt", **changes):
    """Our checkpoint of `model` with top-level entries (or config values) replaced."""
    ck.save_checkpoint(tmp_path / name, model)
    obj = torch.load(tmp_path / name, weights_only=True)
    config_changes = changes.pop("config_changes", {})
    obj["config"] = {**obj["config"], **config_changes}
    for key in changes.pop("drop_config", ()):
        del obj["config"][key]
    obj.update(changes)
    torch.save(obj, tmp_path / name)
    return tmp_path / name


@pytest.fixture(scope="module")
def small_autoencoder():
    torch.manual_seed(6)
    return ae.IMVFAutoencoder(ae.AutoencoderConfig(widths=(8, 16, 24, 32), stem_channels=4))


@pytest.mark.parametrize(
    "changes,text",
    [
        ({"drop_config": ["widths"]}, "config has no 'widths'"),
        ({"config": None}, "'config' is missing or not a dict"),
        ({"state_dict": None}, "'state_dict' is missing or not a dict"),
        ({"state_dict": [1, 2]}, "'state_dict' is missing or not a dict"),
        ({"metadata": [1, 2]}, "'metadata' is a list, not a dict"),
        (
            {"config_changes": {"widths": [8, 16, 24]}},
            r"config widths = \[8, 16, 24\]; expected 4",
        ),
        ({"config_changes": {"widths": "wide"}}, "config widths = 'wide'; expected 4 items"),
        ({"config_changes": {"stem_channels": 0}}, r"stem_channels = 0; expected an integer in"),
        ({"config_changes": {"stem_channels": 4.5}}, r"stem_channels = 4.5; expected an integer"),
        (
            {"config_changes": {"widths": [w * 20 for w in (64, 112, 160, 208)]}},
            r"config widths = 1280; expected an integer in \[1, 1024\]",
        ),
    ],
)
def test_malformed_autoencoder_files_give_a_clear_error(
    tmp_path, small_autoencoder, changes, text
):
    path = _our_file(tmp_path, small_autoencoder, **changes)
    with pytest.raises(ck.CheckpointError, match=rf"ours\.pt: .*{text}"):
        ck.load_autoencoder(path)


def test_a_state_dict_that_does_not_fit_its_config_is_refused_before_the_model_is_built(
    tmp_path, small_autoencoder, monkeypatch
):
    built_on = []
    real = ck.ae.IMVFAutoencoder

    class Recording(real):
        def __init__(self, *a, **k):
            built_on.append(torch.get_default_device().type)
            super().__init__(*a, **k)

    monkeypatch.setattr(ck.ae, "IMVFAutoencoder", Recording)
    path = _our_file(
        tmp_path, small_autoencoder, config_changes={"widths": [640, 1000, 1000, 1000]}
    )
    with pytest.raises(ck.CheckpointError, match="has shape .* the model expects"):
        ck.load_autoencoder(path)
    assert built_on == ["meta"]  # compared on storage-less tensors only: nothing was allocated
    model, _ = ck.load_autoencoder(_our_file(tmp_path, small_autoencoder, name="fine.pt"))
    assert built_on == ["meta", "meta", "cpu"] and isinstance(model, real)


@pytest.mark.parametrize(
    "changes,text",
    [
        ({"drop_config": ["stage_channels"]}, "config has no 'stage_channels'"),
        ({"config_changes": {"stage_channels": [[4, 8], [4, 8, 16]]}}, "expected 3 items"),
        ({"config_changes": {"stage_channels": [[4], [4, 8, 16], [4, 8, 16, 32]]}}, "expected 2"),
        ({"config_changes": {"in_channels": 0}}, r"in_channels = 0; expected an integer in \[1"),
        ({"config_changes": {"bn_momentum": "x"}}, "bad config"),
        ({"state_dict": None}, "'state_dict' is missing or not a dict"),
    ],
)
def test_malformed_sosnet_files_give_a_clear_error(tmp_path, tiny_sosnet, changes, text):
    path = _our_file(tmp_path, tiny_sosnet, **changes)
    with pytest.raises(ck.CheckpointError, match=rf"ours\.pt: .*{text}"):
        ck.load_sosnet(path)


def test_non_string_keys_and_a_non_tensor_stem_alias_are_named(
    tmp_path, authors_autoencoder_state, authors_sosnet_file
):
    state = dict(authors_autoencoder_state)
    state[7] = torch.zeros(1)
    with pytest.raises(ck.CheckpointError, match="state dict key 7 is not a string"):
        ck.load_autoencoder(_save(tmp_path, state))
    sos = torch.load(authors_sosnet_file[0], weights_only=True)
    sos[hr.AUTHORS_STEM_ALIAS] = [1, 2, 3]
    with pytest.raises(ck.CheckpointError, match="missing key 'encoder_thermal_conv1.weight'"):
        ck.load_sosnet(_save(tmp_path, sos, "z.pth"))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_useless_weights_are_refused_at_load(tmp_path, tiny_autoencoder, tiny_sosnet, backend):
    """All-zero weights would give a constant 'fused' image: the probe refuses them.

    It runs through the backend that will run them (an ONNX Runtime graph is probed as such).
    """
    from sosmaskfuse_core.pipeline import UselessWeightsError, build_pipeline

    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

    zero_ae = copy.deepcopy(tiny_autoencoder)
    zero_sos = copy.deepcopy(tiny_sosnet)
    with torch.no_grad():
        for module in (zero_ae, zero_sos):
            for p in module.parameters():
                p.zero_()
    for name, model in (("ae", tiny_autoencoder), ("zero_ae", zero_ae), ("zero_sos", zero_sos)):
        ck.save_checkpoint(tmp_path / f"{name}.pt", model)
    with pytest.raises(UselessWeightsError, match="autoencoder gives the same output"):
        build_pipeline(
            str(tmp_path / "zero_ae.pt"), mask_source="thermal", device="cpu", backend=backend
        )
    with pytest.raises(UselessWeightsError, match="SOS network gives the same logit"):
        build_pipeline(
            str(tmp_path / "ae.pt"),
            str(tmp_path / "zero_sos.pt"),
            mask_source="sosnet",
            device="cpu",
            backend=backend,
        )
    pipeline, _ = build_pipeline(
        str(tmp_path / "ae.pt"), mask_source="thermal", device="cpu", backend=backend
    )
    assert pipeline.mask_source == "thermal" and pipeline.backend.name == backend
