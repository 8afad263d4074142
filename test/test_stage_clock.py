"""StageClock: each stage's own time per pair; the pipeline and the bag run time their stages."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sosmaskfuse_core.pipeline import stage_clock
from sosmaskfuse_core.pipeline.builder import build_pipeline
from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig
from sosmaskfuse_core.pipeline.stage_clock import StageClock, stage_table


class FakeTime:
    """perf_counter under the test's control: `advance(s)` is the time a stage takes."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(stage_clock.time, "perf_counter", fake)
    return fake


def test_a_stage_inside_another_is_taken_out_of_it(fake_time):
    clock = StageClock()
    with clock("load"):
        fake_time.advance(0.002)
        with clock("classical mask"):
            fake_time.advance(0.005)
        fake_time.advance(0.001)
    with clock("autoencoder"):
        fake_time.advance(0.040)
    clock.pairs_done()
    pairs, ms = clock.take()
    assert pairs == 1
    assert ms == pytest.approx({"load": 3.0, "classical mask": 5.0, "autoencoder": 40.0})
    assert list(ms) == ["load", "classical mask", "autoencoder"]  # the path's order


def test_times_are_means_per_pair_and_take_starts_a_new_period(fake_time):
    clock = StageClock()
    for seconds in (0.010, 0.030):
        with clock("decode"):
            fake_time.advance(seconds)
    clock.pairs_done(2)
    assert clock.take() == (2, pytest.approx({"decode": 20.0}))
    assert clock.take() == (0, {})
    with clock("extra"), clock("write"):  # an unknown stage comes after the known ones
        fake_time.advance(0.001)
    assert list(clock.take()[1]) == ["write", "extra"]
    assert stage_table({"decode": 1.25, "write": 10.0}) == "decode 1.2, write 10.0"


def test_a_failing_stage_is_still_timed_and_threads_keep_their_own_nesting(fake_time):
    clock = StageClock()
    with pytest.raises(RuntimeError), clock("autoencoder"):
        fake_time.advance(0.004)
        raise RuntimeError("out of memory")
    opened, release = threading.Event(), threading.Event()

    def other_thread():
        with clock("decode"):
            opened.set()
            release.wait(10)

    thread = threading.Thread(target=other_thread)
    thread.start()
    opened.wait(10)
    with clock("output"):  # not nested in the other thread's open "decode"
        fake_time.advance(0.002)
    release.set()
    thread.join()
    ms = clock.take()[1]
    assert ms["autoencoder"] == pytest.approx(4.0) and ms["output"] == pytest.approx(2.0)
    assert ms["decode"] == pytest.approx(2.0)  # its wall time, the output stage's included


def test_the_pipeline_times_each_of_its_stages(tiny_autoencoder, tiny_sosnet):
    pipe = FusionPipeline(
        tiny_autoencoder,
        tiny_sosnet,
        device="cpu",
        config=PipelineConfig(mask_source="ensemble", sos_size=(64, 64), precision="fp32"),
    )
    rng = np.random.default_rng(0)
    ir, vis = rng.integers(0, 256, (2, 2, 48, 64), dtype=np.uint8)
    pipe.clock.take()  # the load-time probe's
    pipe.fuse_batch(list(ir), list(vis))
    pairs, ms = pipe.clock.take()
    assert pairs == 2
    expected = {"load", "classical mask", "sos network", "autoencoder", "contrast guard", "output"}
    assert set(ms) == expected and all(v > 0 for v in ms.values()), ms
    pipe.update(fusion_mode="imvf", mask_source="thermal")
    pipe(ir[0], vis[0])
    assert set(pipe.clock.take()[1]) == {"load", "classical mask", "autoencoder", "output"}


def test_the_load_time_probe_is_not_counted_as_a_pair(tiny_checkpoint_files):
    ae, sos = tiny_checkpoint_files
    pipe, _ = build_pipeline(ae, sos, device="cpu", config=PipelineConfig(precision="fp32"))
    assert pipe.clock.take() == (0, {})
