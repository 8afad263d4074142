"""`sosmaskfuse fleet` on a real local Ray: outputs equal to `sosmaskfuse bag`'s, a truncated bag.

Also resuming, a worker killed mid-bag, Ctrl-C, and the planning rules.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest
import ray
import yaml
from bag_helpers import SEC, one_torch_thread, read_bag, stamp_of

from sosmaskfuse_core import cli
from sosmaskfuse_core.commands.bag import job_from_args
from sosmaskfuse_core.commands.options import setting_values
from sosmaskfuse_core.formats import rosbag_io
from sosmaskfuse_core.progress import Progress
from sosmaskfuse_core.settings import BAG
from sosmaskfuse_core.tools import fleet
from sosmaskfuse_core.tools.fleet.driver import Fleet, _Attempt
from sosmaskfuse_core.tools.fleet.worker import BagWorker, result_of
from sosmaskfuse_core.tools.fuse_bag import BagJob, BagReport

REPO = Path(__file__).resolve().parents[1]
THERMAL, VISIBLE = "/camera/thermal/image_raw", "/camera/visible/image_raw"
FUSED, MASK = "/camera/fused_image", "/camera/sos_mask"


@pytest.fixture(scope="module")
def ray_address():
    """One real local Ray for the module (2 CPUs), shut down at the end; its GCS address."""
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 characters
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    context = ray.init(
        num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level=logging.WARNING
    )
    try:
        yield context.address_info["address"]
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():  # as the workers (one CPU, one torch thread), for equal results
        yield


def make_bag(tmp: Path, out: Path, n: int, seed: int, *extra: str) -> Path:
    """A bag from `sosmaskfuse make-bag` over two folders of n generated 64x48 frames."""
    rng = np.random.default_rng(seed)
    frames = tmp / f"frames_{out.name}"
    for sub in ("ir", "vis"):
        (frames / sub).mkdir(parents=True)
    for i in range(n):
        ir = cv2.GaussianBlur(rng.integers(0, 256, (48, 64), dtype=np.uint8), (5, 5), 0)
        vis = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (3, 3), 0)
        cv2.imwrite(str(frames / "ir" / f"{i:03d}.png"), ir)
        cv2.imwrite(str(frames / "vis" / f"{i:03d}.png"), vis)
    argv = [
        "make-bag",
        "--ir-dir",
        str(frames / "ir"),
        "--vis-dir",
        str(frames / "vis"),
        "--out",
        str(out),
        "--start-time",
        str(1000 + seed),
        *extra,
    ]
    args = cli.build_parser().parse_args(argv)
    assert args.func(args, stream=io.StringIO()) == 0
    return out


def run_cli(*argv: str) -> tuple[int, str]:
    args = cli.build_parser().parse_args(list(argv))
    stream = io.StringIO()
    return args.func(args, stream=stream), stream.getvalue()


def options(weights: tuple[str, str], *extra: str) -> list[str]:
    ae, sos = weights
    return [
        "--thermal-topic",
        THERMAL,
        "--visible-topic",
        VISIBLE,
        "--autoencoder",
        ae,
        "--sosnet",
        sos,
        "--batch-size",
        "2",
        *extra,
    ]


def load_report(out: Path) -> tuple[dict, dict]:
    report = json.loads((out / "fleet_report.json").read_text())
    return report, {Path(bag["input"]).name: bag for bag in report["bags"]}


def bag_contents(path: Path):
    """What a reader sees: messages (log time, raw bytes), connections per topic, custom_data."""
    messages, conns = read_bag(path)
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    facts = {topic: (c.msgtype, c.digest, c.msgdef, c.ext) for topic, c in conns.items()}
    return (
        {topic: [(t, raw) for t, _, raw in items] for topic, items in messages.items()},
        facts,
        meta["custom_data"],
        meta["storage_identifier"],
    )


def test_fleet_fuses_what_the_bag_command_writes_reports_a_truncated_bag_and_resumes(
    tmp_path, ray_address, tiny_checkpoint_files
):
    bags = tmp_path / "bags"
    good = [
        make_bag(tmp_path, bags / "drive_a", 5, 1),
        make_bag(tmp_path, bags / "day2" / "drive_b", 4, 2, "--storage", "sqlite3"),
        make_bag(tmp_path, tmp_path / "c_folder", 3, 3, "--thermal-encoding", "mono16"),
    ]
    bare = bags / "drive_c.mcap"  # a bare .mcap file is a bag too
    shutil.move(good[2] / "c_folder.mcap", bare)
    good[2] = bare
    broken = make_bag(tmp_path, bags / "day2" / "drive_t", 4, 4)
    data = broken / "drive_t.mcap"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # recorder died mid-write
    out = tmp_path / "fused"

    code, text = run_cli(
        "fleet",
        "--in",
        str(bags),
        "--out",
        str(out),
        "--workers",
        "2",
        *options(tiny_checkpoint_files),
    )
    assert code == 1, text
    report, by_name = load_report(out)
    assert report["engine"]["engine"] == "ray" and report["engine"]["version"] == ray.__version__
    assert report["engine"]["resources"]["CPU"] == 2
    assert {name: bag["status"] for name, bag in by_name.items()} == {
        "drive_a": "done",
        "drive_b": "done",
        "drive_c.mcap": "done",
        "drive_t": "failed",
    }
    error = by_name["drive_t"]["error"]
    assert "cannot read" in error and "drive_t" in error
    assert f"failed: {broken}: {error}" in text
    assert not (out / "drive_t_fused").exists()
    assert sorted(p.name for p in out.iterdir()) == [  # no partial folders left
        "drive_a_fused",
        "drive_b_fused",
        "drive_c_fused",
        "fleet_report.json",
    ]
    for bag, n in zip(good, (5, 4, 3)):
        name = fleet.bag_name(bag)
        entry = by_name[bag.name]
        assert (entry["pairs"], entry["fused"], entry["failed_pairs"]) == (n, n, 0)
        assert entry["worker"] in report["workers"] and entry["seconds"] > 0
        messages, _, _, _ = bag_contents(out / f"{name}_fused")
        visible, _ = read_bag(bag)
        fused, _ = read_bag(out / f"{name}_fused")
        # one fused message per synchronised pair, with the visible stamps and log times
        stamps = [stamp_of(m) for _, m, _ in visible[VISIBLE]]
        assert [stamp_of(m) for _, m, _ in fused[FUSED]] == stamps
        assert [t for t, _, _ in fused[FUSED]] == [t for t, _, _ in visible[VISIBLE]]
        assert len(fused[MASK]) == n
        # exactly what `sosmaskfuse bag` writes for the same bag and options
        ref = tmp_path / "ref" / f"{name}_fused"
        code_bag, bag_text = run_cli(
            "bag",
            "--in",
            str(bag),
            "--out",
            str(ref),
            "--device",
            "cpu",
            *options(tiny_checkpoint_files),
        )
        assert code_bag == 0, bag_text
        assert bag_contents(out / f"{name}_fused") == bag_contents(ref)
        assert messages[FUSED] == bag_contents(ref)[0][FUSED]

    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*_fused")}
    code, text = run_cli(
        "fleet",
        "--in",
        str(bags),
        "--out",
        str(out),
        "--workers",
        "2",
        *options(tiny_checkpoint_files),
    )
    assert code == 1, text
    report, by_name = load_report(out)
    assert [by_name[n]["status"] for n in ("drive_a", "drive_b", "drive_c.mcap", "drive_t")] == [
        "skipped",
        "skipped",
        "skipped",
        "failed",
    ]
    assert all(by_name[n]["attempts"] == 0 for n in ("drive_a", "drive_b", "drive_c.mcap"))
    assert report["fused"] == 0
    assert report["counts"] == {"done": 0, "skipped": 3, "failed": 1, "interrupted": 0}
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*_fused")} == before


def test_a_worker_killed_mid_bag_is_replaced_and_its_bag_retried(
    tmp_path, ray_address, tiny_checkpoint_files
):
    bag = make_bag(tmp_path, tmp_path / "bags" / "long", 6, 5)
    out = tmp_path / "fused"
    args = cli.build_parser().parse_args(
        ["fleet", "--in", str(bag), "--out", str(out), *options(tiny_checkpoint_files)]
    )
    job, values = job_from_args(args), setting_values(args, BAG)
    config = fleet.FleetConfig(inputs=(bag,), out_dir=out, workers=1, crash_first_worker_after=3)
    stream = io.StringIO()
    report = Fleet(config, job, values, stream=stream).run()
    text = stream.getvalue()
    assert report.exit_code == 0, text
    (entry,) = report.bags
    assert (entry.status, entry.attempts, entry.worker, entry.fused) == ("done", 2, "w2", 6), text
    assert "worker w1 died" in text and "retrying" in text
    assert sorted(p.name for p in out.iterdir()) == ["fleet_report.json", "long_fused"]
    fused, _ = read_bag(out / "long_fused")
    assert [stamp_of(m) for _, m, _ in fused[FUSED]] == [
        1005 * SEC + i * SEC // 10 for i in range(6)
    ]

    # a worker that dies on every attempt: the bag fails after --max-retries, the run goes on
    config = fleet.FleetConfig(
        inputs=(bag,),
        out_dir=out,
        workers=1,
        crash_first_worker_after=1,
        max_retries=0,
        overwrite=True,
    )
    report = Fleet(config, job, values, stream=io.StringIO()).run()
    (entry,) = report.bags
    assert (entry.status, entry.attempts, report.exit_code) == ("failed", 1, 1)
    assert "died" in entry.error
    assert len(read_bag(out / "long_fused")[0][FUSED]) == 6  # the old output is kept whole
    assert sorted(p.name for p in out.iterdir()) == ["fleet_report.json", "long_fused"]


def test_a_bag_whose_write_fails_part_way_is_failed_not_renamed_and_a_rerun_fuses_it(
    tmp_path, ray_address, tiny_checkpoint_files, monkeypatch
):
    """A disk that fills after 3 pairs: the bag is `failed`, never renamed to its final name.

    The worker runs in this process, so the failure can be injected into its writer (Ray's
    workers are other processes); its result goes through Ray to the driver's bookkeeping as
    a worker's does. Renamed as `done`, every rerun would skip the truncated bag for good.
    """
    bag = make_bag(tmp_path, tmp_path / "bags" / "disk", 6, 7)
    out = tmp_path / "fused"
    args = cli.build_parser().parse_args(
        ["fleet", "--in", str(bag), "--out", str(out), *options(tiny_checkpoint_files)]
    )
    job, values = job_from_args(args), setting_values(args, BAG)
    config = fleet.FleetConfig(inputs=(bag,), out_dir=out, workers=1)
    written = []
    original = rosbag_io.BagWriter.write

    def disk_full_after_three_fused(self, conn, timestamp, data):
        if conn.topic == FUSED:
            if len(written) == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            written.append(timestamp)
        return original(self, conn, timestamp, data)

    monkeypatch.setattr(rosbag_io.BagWriter, "write", disk_full_after_three_fused)
    driver = Fleet(config, job, values, stream=io.StringIO())
    driver.report.bags = fleet.plan([bag], out)
    (entry,) = driver.report.bags
    out.mkdir()
    entry.attempts, tag = 1, "test-1"
    output = Path(entry.output)
    partial = fleet.partial_dir(output, tag)
    partial.mkdir()
    worker = BagWorker("w1", {**values, "device": "cpu"}, job)
    result = worker.fuse(str(bag), str(partial / output.name))
    ref = ray.put(result)  # what a worker's fuse() call returns through Ray
    driver._running[ref] = _Attempt(entry, "w1", partial, tag)
    driver._finished(ref, deque(), Progress(1, "fleet", stream=io.StringIO()))
    assert written and len(written) == 3
    assert entry.status == "failed", entry
    assert "stopped after 3 pairs" in entry.error and "No space left on device" in entry.error
    assert not output.exists() and not partial.exists()
    assert [e.status for e in fleet.plan([bag], out)] == ["pending"]  # a rerun retries it

    monkeypatch.setattr(rosbag_io.BagWriter, "write", original)
    report = Fleet(config, job, values, stream=io.StringIO()).run()
    assert [(e.status, e.fused, e.lost_chunks) for e in report.bags] == [("done", 6, 0)]
    assert len(read_bag(output)[0][FUSED]) == 6


def test_a_lost_chunk_is_counted_in_the_bag_line():
    lost = rosbag_io.LostChunk("x.mcap", 43, 1, 2, (("/t", 4),), "Chunk checksum mismatch")
    bag_report = BagReport(storage="mcap", pairs=8, lost=[lost])
    job = BagJob(THERMAL, VISIBLE)
    result = result_of("x", bag_report, job)
    assert (result["status"], result["fused"], result["lost_chunks"]) == ("done", 8, 1)


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_ctrl_c_stops_the_workers_and_leaves_only_whole_bags(
    tmp_path, ray_address, tiny_checkpoint_files, sig, code
):
    bags = tmp_path / "bags"
    for i in range(3):
        make_bag(tmp_path, bags / f"run{i}", 40, 10 + i)
    out = tmp_path / "fused"
    cmd = [
        sys.executable,
        "-m",
        "sosmaskfuse_core.cli",
        "fleet",
        "--in",
        str(bags),
        "--out",
        str(out),
        "--ray-address",
        ray_address,
        "--workers",
        "1",
        *options(tiny_checkpoint_files),
    ]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # until a bag is being written
            if any(p.is_dir() for p in out.glob(".*.partial-*/*_fused")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(sig)
        text, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, text
    assert "interrupted" in text
    assert not list(out.glob(".*")), list(out.glob(".*"))  # no partial folders
    report, by_name = load_report(out)
    assert report["interrupted"] is True
    statuses = [by_name[f"run{i}"]["status"] for i in range(3)]
    assert "interrupted" in statuses and set(statuses) <= {"done", "interrupted"}
    deadline = time.monotonic() + 20
    pids = [worker["pid"] for worker in report["workers"].values()]
    assert pids
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)  # the workers were stopped, not left fusing
    for i, status in enumerate(statuses):  # a final name holds a whole bag, or is not there
        final = out / f"run{i}_fused"
        assert final.exists() == (status == "done")
        if final.exists():
            assert len(read_bag(final)[0][FUSED]) == 40


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"  # a zombie has exited


def test_without_ray_the_command_says_how_to_install_it(tmp_path, monkeypatch):
    # the CLI with every sub-command's parser, as `sosmaskfuse --help` builds it
    probe = (
        "import sys; from sosmaskfuse_core import cli; cli.build_parser(); "
        "print('ray' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.stdout.strip() == "False", done.stderr  # the CLI does not import Ray
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not there
    code, text = run_cli(
        "fleet",
        "--in",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
        "--thermal-topic",
        THERMAL,
        "--visible-topic",
        VISIBLE,
    )
    assert code == 2 and "pip install 'sosmaskfuse_ros[fleet]'" in text


def test_bad_options_stop_the_run_before_anything_starts(tmp_path, tiny_checkpoint_files):
    bag = make_bag(tmp_path, tmp_path / "bags" / "one", 1, 7)
    out = tmp_path / "out"
    for extra, message in (
        (["--device", "cuda"], "needs --gpus-per-worker"),
        (["--autoencoder", str(tmp_path / "no.pt")], "no such checkpoint file"),
        (["--mu", "2"], "mu"),
        (["--workers", "0"], "at least 1"),
    ):
        code, text = run_cli(
            "fleet",
            "--in",
            str(bag),
            "--out",
            str(out),
            "--thermal-topic",
            THERMAL,
            "--visible-topic",
            VISIBLE,
            *extra,
        )
        assert code == 2 and message in text, text
    code, text = run_cli(
        "fleet",
        "--in",
        str(tmp_path / "nothing"),
        "--out",
        str(out),
        *options(tiny_checkpoint_files),
    )
    assert code == 2 and "no such bag or folder" in text
    code, text = run_cli(
        "fleet",
        "--in",
        str(tmp_path / "bags" / "one" / "metadata.yaml"),
        "--out",
        str(out),
        *options(tiny_checkpoint_files),
    )
    assert code == 2 and "not a bag" in text
    assert not out.exists()


def test_planning_finds_bags_and_decides_what_to_skip(tmp_path):
    root = tmp_path / "in"
    for folder in ("a", "deep/er/b", ".hidden/c", "out/x_fused"):
        (root / folder).mkdir(parents=True)
        (root / folder / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    (root / "deep" / "bare.mcap").write_bytes(b"")
    (root / "deep" / "other.db3").write_bytes(b"")
    (root / "deep" / "notes.txt").write_text("")
    (root / "a" / "a.mcap").write_bytes(b"")  # inside a bag folder: part of that bag
    found = fleet.find_bags([root, root / "a"], exclude=root / "out")
    assert [p.relative_to(root).as_posix() for p in found] == [
        "a",
        "deep/bare.mcap",
        "deep/er/b",
        "deep/other.db3",
    ]
    with pytest.raises(fleet.FleetError, match="no such bag or folder"):
        fleet.find_bags([root / "missing"])
    with pytest.raises(fleet.FleetError, match="not a bag"):
        fleet.find_bags([root / "deep" / "notes.txt"])

    out = tmp_path / "fused"
    (out / "a_fused").mkdir(parents=True)
    (out / "a_fused" / "metadata.yaml").write_text("")
    (out / "bare_fused").mkdir()  # not a bag: someone else's folder
    bags = [root / "a", root / "deep" / "bare.mcap", root / "deep/er/b", tmp_path / "x" / "b"]
    entries = fleet.plan(bags, out)
    assert [(Path(e.output).name, e.status) for e in entries] == [
        ("a_fused", "skipped"),
        ("bare_fused", "failed"),
        ("b_fused", "pending"),
        ("b_fused", "failed"),
    ]
    assert "not a bag" in entries[1].error and "would also be that of" in entries[3].error
    assert [e.status for e in fleet.plan(bags, out, overwrite=True)] == [
        "pending",
        "pending",
        "pending",
        "failed",
    ]

    # a finished attempt replaces the old output; leftovers of crashed runs are removed
    partial = fleet.partial_dir(out / "a_fused", "run-1")
    (partial / "a_fused").mkdir(parents=True)
    (partial / "a_fused" / "metadata.yaml").write_text("new")
    stale = fleet.partial_dir(out / "a_fused", "old-1")
    stale.mkdir()
    fleet.remove_partials(out / "b_fused")
    assert stale.exists()
    fleet.commit(partial, out / "a_fused", "run-1")
    assert (out / "a_fused" / "metadata.yaml").read_text() == "new" and not partial.exists()
    fleet.remove_partials(out / "a_fused")
    assert sorted(p.name for p in out.iterdir()) == ["a_fused", "bare_fused"]


def test_worker_resources_and_device():
    assert fleet.worker_device("auto", 0.5) == "cuda"
    assert fleet.worker_device("cuda:0", 1) == "cuda:0"
    assert fleet.worker_device("auto", 0) == "cpu"
    with pytest.raises(ValueError, match="needs --gpus-per-worker"):
        fleet.worker_device("cuda", 0)
    base = dict(inputs=(Path("x"),), out_dir=Path("o"))
    resources = {"CPU": 16.0, "GPU": 2.0}
    assert fleet.worker_count(fleet.FleetConfig(**base), resources, 100) == 16
    assert fleet.worker_count(fleet.FleetConfig(**base, cpus_per_worker=4), resources, 100) == 4
    assert fleet.worker_count(fleet.FleetConfig(**base, gpus_per_worker=0.5), resources, 100) == 4
    assert fleet.worker_count(fleet.FleetConfig(**base, gpus_per_worker=0.5), resources, 3) == 3
    assert fleet.worker_count(fleet.FleetConfig(**base, workers=6), resources, 2) == 2
    with pytest.raises(ValueError, match="fractions"):
        fleet.FleetConfig(**base, gpus_per_worker=1.5)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_before_any_bag_is_done():
    # the fleet draws status-only lines (n=0) while its workers start and fuse the first bags
    stream = _Terminal()
    progress = Progress(3, "fleet", unit="bag", stream=stream, initial=1)
    progress.step("starting workers", n=0)
    line = stream.getvalue()
    assert line.endswith("fleet: 1/3  starting workers"), line  # no rate until a bag is done
    progress.close()
    assert stream.getvalue().endswith("\n")  # the drawn line is ended, though no bag was done
    quiet = _Terminal()
    Progress(3, "fleet", stream=quiet).close()
    assert quiet.getvalue() == ""  # nothing drawn, nothing to end
