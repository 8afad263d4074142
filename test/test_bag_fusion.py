"""`sosmaskfuse bag`: bag in, fused bag out, both storages; odd, corrupt and interrupted inputs."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import yaml
from bag_helpers import (
    SEC,
    THERMAL,
    VISIBLE,
    compressed_msg,
    frames,
    image_msg,
    one_torch_thread,
    pair_entries,
    read_bag,
    save_tiny_checkpoints,
    serialize,
    stamp_of,
    tiny_models,
    tiny_pipeline,
    write_bag,
)
from conftest import REPO
from rosbags.interfaces import QosReliability

from sosmaskfuse_core import cli
from sosmaskfuse_core.formats.image_codec import image_to_array
from sosmaskfuse_core.formats.rosbag_io import IMAGE, qos_profile, typestore
from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig
from sosmaskfuse_core.pipeline.pair_stage import PairStage
from sosmaskfuse_core.settings import table
from sosmaskfuse_core.tools.fuse_bag import BagFusion, BagJob, BagJobError, common_namespace

FUSED, MASK = "/cam/fused_image", "/cam/sos_mask"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def pipeline():
    return tiny_pipeline()


def fuse(src, dst, pipeline, **job):
    fusion = BagFusion(
        src, dst, BagJob(thermal_topic=THERMAL, visible_topic=VISIBLE, **job), PairStage(pipeline)
    )
    return fusion.run()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_pair_is_fused_with_the_visible_header_and_inputs_are_copied(
    tmp_path, pipeline, storage
):
    entries = pair_entries(5, thermal_encoding="mono16")
    chatter = typestore().types["std_msgs/msg/String"](data="hello")
    entries.append(("/chatter", 100 * SEC + 5, chatter))
    qos = {THERMAL: qos_profile("best_effort", depth=7)}
    write_bag(tmp_path / "in", storage, entries, qos)

    report = fuse(tmp_path / "in", tmp_path / "out", pipeline)

    assert (report.pairs, report.corrupt, report.failed, report.storage) == (5, [], [], storage)
    assert report.unpaired == {THERMAL: 0, VISIBLE: 0} and report.copied == 11
    got, conns = read_bag(tmp_path / "out")
    src, src_conns = read_bag(tmp_path / "in")
    assert (tmp_path / "out" / f"out.{'mcap' if storage == 'mcap' else 'db3'}").is_file()
    meta = yaml.safe_load((tmp_path / "out" / "metadata.yaml").read_text())[
        "rosbag2_bagfile_information"
    ]
    assert meta["version"] == 9 and meta["storage_identifier"] == storage
    for topic in (
        THERMAL,
        VISIBLE,
        "/chatter",
    ):  # copied byte for byte, same log times and connection facts
        assert [(t, raw) for t, _, raw in got[topic]] == [(t, raw) for t, _, raw in src[topic]]
        for attr in ("msgtype", "digest", "msgdef", "ext"):
            assert getattr(conns[topic], attr) == getattr(src_conns[topic], attr), (topic, attr)
    assert conns[THERMAL].ext.offered_qos_profiles[0].reliability == QosReliability.BEST_EFFORT
    visible = got[VISIBLE]
    for topic, encoding in ((FUSED, "mono8"), (MASK, "mono8")):
        assert conns[topic].msgtype == IMAGE and conns[topic].digest == typestore().hash_rihs01(
            IMAGE
        )
        assert conns[topic].msgdef.data == typestore().generate_msgdef(IMAGE, ros_version=2)[0]
        out = got[topic]
        assert [t for t, _, _ in out] == [
            t for t, _, _ in visible
        ]  # written at the visible log time
        assert [stamp_of(m) for _, m, _ in out] == [stamp_of(m) for _, m, _ in visible]
        assert all(
            m.header.frame_id == "visible_frame"
            and m.encoding == encoding
            and (m.height, m.width) == (48, 64)
            for _, m, _ in out
        )
    # the pipeline on frames prepared by hand gives the same image: the counts through the
    # default 1/99 percentile stretch (numpy's percentile), the visible rgb8 through PIL's luma
    counts = image_to_array(got[THERMAL][2][1])
    low, high = np.percentile(counts, [1, 99])
    ir = np.rint(np.clip((counts - low) * 255 / (high - low), 0, 255)).astype(np.uint8)
    luma = np.array(PIL.Image.fromarray(image_to_array(visible[2][1])).convert("L"))
    assert ir.std() > 50 and luma.std() > 20  # the hand-made inputs have contrast
    expected = pipeline(ir, luma)
    assert (
        np.abs(image_to_array(got[FUSED][2][1]).astype(int) - expected.fused.astype(int)).max()
        <= 1
    )
    assert np.array_equal(image_to_array(got[MASK][2][1]), expected.mask_u8)


def test_compressed_inputs_and_colour_output(tmp_path):
    entries = []
    for i in range(3):
        ir, vis = frames(i)
        stamp = 5 * SEC + i * SEC // 10
        entries.append((THERMAL + "/compressed", stamp, compressed_msg(ir, "png", stamp)))
        entries.append((VISIBLE + "/compressed", stamp, compressed_msg(vis, "jpeg", stamp, "vis")))
    write_bag(tmp_path / "in", "mcap", entries)
    fusion = BagFusion(
        tmp_path / "in",
        tmp_path / "out",
        BagJob(THERMAL + "/compressed", VISIBLE + "/compressed"),
        PairStage(tiny_pipeline(color_output=True), with_mask=False),
    )
    report = fusion.run()
    assert report.pairs == 3 and not report.skipped
    got, conns = read_bag(tmp_path / "out")
    assert MASK not in conns  # --no-mask
    assert [m.encoding for _, m, _ in got[FUSED]] == ["bgr8"] * 3
    assert [stamp_of(m) for _, m, _ in got[FUSED]] == [5 * SEC + i * SEC // 10 for i in range(3)]


def test_unmatched_far_and_differently_sized_frames(tmp_path, pipeline):
    ir, vis = frames(0)
    small_ir = frames(1, (24, 32))[0]
    big_ir, big_vis = frames(2, (64, 80))
    t = 10 * SEC
    entries = [
        (THERMAL, t, image_msg(ir, "mono8", t)),
        (VISIBLE, t, image_msg(vis, "rgb8", t)),  # a pair
        (
            THERMAL,
            t + SEC // 10,
            image_msg(ir, "mono8", t + SEC // 10),
        ),  # extra thermal frame, no partner
        (
            THERMAL,
            t + 2 * SEC // 10,
            image_msg(small_ir, "mono8", t + 2 * SEC // 10),
        ),  # 32x24 thermal,
        (
            VISIBLE,
            t + 2 * SEC // 10 + 10_000_000,
            image_msg(vis, "rgb8", t + 2 * SEC // 10 + 10_000_000),
        ),  # 10 ms
        (VISIBLE, t + 5 * SEC, image_msg(vis, "rgb8", t + 5 * SEC)),  # no thermal within the slop
        (
            THERMAL,
            t + 6 * SEC,
            image_msg(big_ir, "mono8", t + 6 * SEC),
        ),  # another size: a pass of its own
        (VISIBLE, t + 6 * SEC, image_msg(big_vis, "bgr8", t + 6 * SEC)),
    ]
    write_bag(tmp_path / "in", "sqlite3", entries)
    report = fuse(tmp_path / "in", tmp_path / "out", pipeline, batch_size=8)
    assert report.pairs == 3 and not report.skipped
    assert report.unpaired == {THERMAL: 1, VISIBLE: 1}
    got, _ = read_bag(tmp_path / "out")
    fused = got[FUSED]
    assert [stamp_of(m) for _, m, _ in fused] == [t, t + 2 * SEC // 10 + 10_000_000, t + 6 * SEC]
    assert [(m.height, m.width) for _, m, _ in fused] == [
        (48, 64),
        (48, 64),
        (64, 80),
    ]  # the visible grid


def test_corrupt_messages_are_reported_and_skipped(tmp_path, pipeline):
    entries = pair_entries(4)
    bad_encoding = image_msg(frames(9)[0], "mono8", entries[2][1])
    bad_encoding.encoding = "yuv_fancy"
    entries[2] = (THERMAL, entries[2][1], bad_encoding)  # pair 1: unknown encoding
    short = image_msg(frames(9)[1], "rgb8", entries[5][1])
    short.data = short.data[:100]
    entries[5] = (VISIBLE, entries[5][1], short)  # pair 2: truncated pixels
    entries[6] = (
        THERMAL,
        entries[6][1],
        serialize(entries[6][2])[:40],
        IMAGE,
    )  # pair 3: truncated CDR
    write_bag(tmp_path / "in", "mcap", entries)
    report = fuse(tmp_path / "in", tmp_path / "out", pipeline)
    assert report.pairs == 1
    assert [(c.topic, c.log_time) for c in report.corrupt] == [
        (THERMAL, entries[2][1]),
        (VISIBLE, entries[5][1]),
        (THERMAL, entries[6][1]),
    ]
    reasons = [c.reason for c in report.corrupt]
    assert (
        "yuv_fancy" in reasons[0]
        and "data has 100 bytes" in reasons[1]
        and "sensor_msgs/msg/Image" in reasons[2]
    )
    assert report.corrupt[0].stamp == entries[2][1] and report.corrupt[2].stamp is None
    got, _ = read_bag(tmp_path / "out")
    assert (
        len(got[THERMAL]) == 4 and got[THERMAL][3][2] == entries[6][2]
    )  # corrupt messages are still copied
    assert [stamp_of(m) for _, m, _ in got[FUSED]] == [entries[0][1]]


class Boom(BaseException):
    """What a pair's exception cannot be (PairStage keeps those to their pair): it ends the run."""


@pytest.mark.parametrize("storage,error", [("sqlite3", KeyboardInterrupt), ("mcap", Boom)])
def test_an_interrupted_run_leaves_a_valid_bag_of_what_was_done(tmp_path, storage, error):
    pipeline = tiny_pipeline()
    original, calls = pipeline.fuse_batch, []

    def fuse_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error()
        return original(*args, **kwargs)

    pipeline.fuse_batch = fuse_then_fail
    write_bag(tmp_path / "in", storage, pair_entries(6))
    fusion = BagFusion(
        tmp_path / "in",
        tmp_path / "out",
        BagJob(THERMAL, VISIBLE, batch_size=2),
        PairStage(pipeline),
    )
    with pytest.raises(error):
        fusion.run()
    assert fusion.report.pairs == 2 and fusion.report.interrupted == (error is KeyboardInterrupt)
    got, conns = read_bag(tmp_path / "out")  # metadata.yaml, index and all: rosbags opens it
    assert len(got[FUSED]) == len(got[MASK]) == 2
    assert len(got[VISIBLE]) == 4  # copied up to the message that completed the second batch
    assert conns[FUSED].msgcount == 2


def _stop_signals_default():
    """In the child: SIGINT, SIGTERM and SIGHUP as a terminal leaves them (not ignored).

    A shell without job control starts background jobs with SIGINT ignored, nohup ignores
    SIGHUP, and Python keeps an inherited SIG_IGN (as `bag` does, on purpose).
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _bag_process(tmp_path, pairs: int) -> subprocess.Popen:
    """`sosmaskfuse bag` in its own process on a bag of `pairs` pairs, at batch size 1."""
    ae, sos = save_tiny_checkpoints(tmp_path)
    write_bag(tmp_path / "in", "mcap", pair_entries(pairs))
    command = [
        sys.executable,
        "-m",
        "sosmaskfuse_core.cli",
        "bag",
        "--in",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "out"),
        "--thermal-topic",
        THERMAL,
        "--visible-topic",
        VISIBLE,
        "--autoencoder",
        ae,
        "--sosnet",
        sos,
        "--device",
        "cpu",
        "--batch-size",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_stop_signals_default,
    )


def _signal_after_first_pair(proc: subprocess.Popen, sig: int) -> str:
    """Send `sig` when the process reports its first fused pair; everything it printed."""
    before = []
    try:
        for line in proc.stderr:  # the progress line comes after the first pair is written
            before.append(line)
            if line.startswith("bag: "):
                proc.send_signal(sig)
                break
        rest = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(before) + rest
    assert any(line.startswith("bag: ") for line in before), text
    return text


@pytest.mark.parametrize(
    "sig, code",
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_stop_signal_to_a_real_bag_process_leaves_a_valid_bag(tmp_path, sig, code):
    """A real signal, mid-run, to `sosmaskfuse bag` in its own process.

    Ctrl-C, docker stop / systemd (SIGTERM) and a dropped ssh session (SIGHUP) alike: a valid,
    closed bag of the pairs done, marked incomplete, exit code 128 + the signal. The signal
    is sent when the process reports its first fused pair; 400 pairs at batch size 1 leave it
    seconds of work, so the signal arrives mid-run with no timing in the test.
    """
    pairs = 400
    proc = _bag_process(tmp_path, pairs)
    text = _signal_after_first_pair(proc, sig)
    assert proc.returncode == code, text
    got, conns = read_bag(tmp_path / "out")  # closed properly: metadata, index and all
    done = len(got[FUSED])
    assert 0 < done < pairs, f"{done} of {pairs} pairs: the signal did not arrive mid-run"
    assert f"interrupted: fused {done} pairs" in text
    assert f"stopped by {signal.Signals(sig).name}" in text
    assert len(got[MASK]) == done and conns[FUSED].msgcount == done
    visible = [stamp_of(m) for _, m, _ in got[VISIBLE]]
    assert [stamp_of(m) for _, m, _ in got[FUSED]] == visible[:done]
    meta = yaml.safe_load((tmp_path / "out" / "metadata.yaml").read_text())
    assert meta["rosbag2_bagfile_information"]["custom_data"]["sosmaskfuse.complete"] == "false"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_a_killed_run_leaves_no_output_and_does_not_block_the_rerun(tmp_path):
    """SIGKILL (no handler can run): no half-written bag at --out, and the rerun just works."""
    pairs = 120
    proc = _bag_process(tmp_path, pairs)
    _signal_after_first_pair(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "out").exists()
    (left,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")]
    assert (left / "out" / "out.mcap").is_file()  # the killed run's unfinished file
    ae, sos = str(tmp_path / "ae.pt"), str(tmp_path / "sos.pt")
    argv = ["bag", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
            "--thermal-topic", THERMAL, "--visible-topic", VISIBLE, "--autoencoder", ae,
            "--sosnet", sos, "--device", "cpu", "--batch-size", "8"]  # fmt: skip
    args = cli.build_parser().parse_args(argv)
    stream = io.StringIO()
    assert args.func(args, stream=stream) == 0, stream.getvalue()
    got, _ = read_bag(tmp_path / "out")
    assert len(got[FUSED]) == pairs
    assert not left.exists()
    meta = yaml.safe_load((tmp_path / "out" / "metadata.yaml").read_text())
    assert meta["rosbag2_bagfile_information"]["custom_data"]["sosmaskfuse.complete"] == "true"


def test_job_checks_topics_before_writing_anything(tmp_path, pipeline):
    write_bag(
        tmp_path / "in",
        "mcap",
        pair_entries(1) + [("/cam/fused_image", 5, image_msg(frames(0)[0], "mono8", 5))],
    )
    with pytest.raises(
        BagJobError, match="no thermal topic /nope.*image topics in the bag: /cam/fused_image"
    ):
        BagFusion(
            tmp_path / "in", tmp_path / "out", BagJob("/nope", VISIBLE), PairStage(pipeline)
        ).run()
    with pytest.raises(BagJobError, match="already has a topic /cam/fused_image"):
        BagFusion(
            tmp_path / "in", tmp_path / "out", BagJob(THERMAL, VISIBLE), PairStage(pipeline)
        ).run()
    assert not (tmp_path / "out").exists()
    report = BagFusion(
        tmp_path / "in",
        tmp_path / "out",
        BagJob(THERMAL, VISIBLE, output_namespace="/fusion/"),
        PairStage(pipeline),
    ).run()
    assert (report.fused_topic, report.mask_topic, report.pairs) == (
        "/fusion/fused_image",
        "/fusion/sos_mask",
        1,
    )


def test_output_namespace_rule():
    assert common_namespace("/camera/thermal/image_raw", "/camera/visible/image_raw") == "/camera"
    assert (
        common_namespace(
            "/camera/thermal/image_raw/compressed", "/camera/visible/image_raw/compressed"
        )
        == "/camera"
    )
    assert common_namespace("/a/b/ir", "/a/b/rgb") == "/a/b"
    assert common_namespace("/thermal", "/rgb/image") == "/"
    assert BagJob("/thermal", "/rgb").output_topics() == ("/fused_image", "/sos_mask")
    assert BagJob("/r/thermal/image_raw", "/r/visible/image_raw").output_topics() == (
        "/r/fused_image",
        "/r/sos_mask",
    )
    assert BagJob("/x/t", "/x/v", output_namespace="out").output_topics() == (
        "/out/fused_image",
        "/out/sos_mask",
    )


def test_cli_exit_codes_and_summary(tmp_path):
    ae, sos = save_tiny_checkpoints(tmp_path)
    entries = pair_entries(3)
    entries[2] = (THERMAL, entries[2][1], serialize(entries[2][2])[:40], IMAGE)
    write_bag(tmp_path / "in", "mcap", entries)
    base = [
        "bag",
        "--in",
        str(tmp_path / "in"),
        "--thermal-topic",
        THERMAL,
        "--visible-topic",
        VISIBLE,
        "--autoencoder",
        ae,
        "--sosnet",
        sos,
        "--device",
        "cpu",
    ]

    def run(*extra):
        args = cli.build_parser().parse_args(base + list(extra))
        stream = io.StringIO()
        return args.func(args, stream=stream), stream.getvalue()

    code, text = run("--out", str(tmp_path / "out"), "--out-storage", "sqlite3", "--mu", "0.5")
    assert code == 1, text
    assert (
        "fused 2 pairs" in text
        and "1 corrupt messages skipped" in text
        and f"{THERMAL} at 100.1" in text
    )
    assert f"{VISIBLE}: 3 frames, 1 unpaired" in text
    times = re.search(r"time per pair \(ms\): (.*)", text)
    assert times, text  # every stage of the bag's path, in its order
    stages = [item.rsplit(" ", 1)[0] for item in times.group(1).split(", ")]
    assert stages == [  # SOS weights given: the network alone; the bag smooths masks
        "read", "decode", "prepare", "load", "sos network", "mask smoothing", "autoencoder",
        "contrast guard", "output", "encode", "write",
    ]  # fmt: skip
    got, _ = read_bag(tmp_path / "out")
    assert len(got[FUSED]) == 2 and (tmp_path / "out" / "out.db3").is_file()
    meta = yaml.safe_load((tmp_path / "out" / "metadata.yaml").read_text())[
        "rosbag2_bagfile_information"
    ]
    assert '"mu": 0.5' in meta["custom_data"]["sosmaskfuse.pipeline"]
    code, text = run("--out", str(tmp_path / "out2"), "--thermal-topic", "/missing")
    assert code == 2 and "no thermal topic /missing" in text and not (tmp_path / "out2").exists()
    code, text = run("--out", str(tmp_path / "out"))
    assert code == 2 and "exists" in text
    code, text = run("--out", str(tmp_path / "out3"), "--mu", "2")
    assert code == 2 and "mu" in text


def test_node_options_parse_like_the_node_parameters():
    args = cli.build_parser().parse_args(
        [
            "bag",
            "--in",
            "a",
            "--out",
            "b",
            "--thermal-topic",
            "t",
            "--visible-topic",
            "v",
            "--homography",
            "1",
            "0",
            "0",
            "0",
            "1",
            "0",
            "0",
            "0",
            "1",
            "--thermal-agc",
            "fixed",
            "--agc-min",
            "100",
            "--agc-max",
            "900",
            "--process-width",
            "320",
            "--process-height",
            "256",
            "--mask-threshold",
            "0.4",
            "--color-output",
        ]
    )
    from sosmaskfuse_core.commands.options import setting_values
    from sosmaskfuse_core.pipeline.builder import frame_preparer, pipeline_config

    values = setting_values(args, "bag")
    config = pipeline_config(values)
    assert (config.mask_threshold, config.color_output) == (0.4, True)
    prep = frame_preparer(values)
    assert prep.size == (320, 256)
    assert (
        prep.agc.mode == "fixed"
        and prep.agc.fixed_max == 900
        and np.array_equal(prep.homography, np.eye(3))
    )
    with pytest.raises(ValueError, match="go together"):
        frame_preparer({**values, "process_height": 0})  # the processing size: the preparer's


def test_the_bag_smooths_the_computed_masks_over_the_sequence(tmp_path):
    """mask_smoothing (on by default for bags) steadies a jittering mask; the first is as made.

    The mask is a plain threshold of a still thermal scene with sensor noise: the pixels near the
    threshold flip from frame to frame.
    """
    ae, _ = tiny_models()
    pipeline = FusionPipeline(
        ae,
        device="cpu",
        config=PipelineConfig.paper(mask_source="thermal"),
        thermal_masker=lambda gray: (gray > 128).astype(np.float32),
    )
    rng = np.random.default_rng(3)
    base = np.tile(np.linspace(100, 156, 64), (48, 1))
    vis = frames(0)[1]
    entries = []
    for i in range(8):
        stamp = 100 * SEC + i * SEC // 10
        ir = np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)
        entries.append((THERMAL, stamp, image_msg(ir, "mono8", stamp, "thermal_frame")))
        entries.append((VISIBLE, stamp + 1000, image_msg(vis, "rgb8", stamp, "visible_frame")))
    write_bag(tmp_path / "in", "mcap", entries)
    job = BagJob(thermal_topic=THERMAL, visible_topic=VISIBLE)
    default = table.default("mask_smoothing", table.BAG)
    assert default > 0
    masks = {}
    for weight in (0.0, default):
        stage = PairStage(pipeline, mask_smoothing=weight)
        assert BagFusion(tmp_path / "in", tmp_path / f"out{weight}", job, stage).run().pairs == 8
        got, _ = read_bag(tmp_path / f"out{weight}")
        masks[weight] = np.stack([image_to_array(m).astype(float) for _, m, _ in got[MASK]])
    assert np.array_equal(masks[0.0][0], masks[default][0])
    jitter = {k: float(np.abs(np.diff(v, axis=0)).mean()) for k, v in masks.items()}
    assert jitter[0.0] > 5  # the per-frame masks flicker (gray levels of the mask image)
    assert jitter[default] < 0.7 * jitter[0.0]
