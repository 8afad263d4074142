"""The fleet's worker: a Ray actor that builds the bag tool's stage once and fuses bag after bag.

A worker builds its `PairStage` from settings values with `pipeline.builder.build_stage`, as
`sosmaskfuse bag` does, and fuses each bag with `tools.fuse_bag.fuse_bag`, so its outputs are
the bag command's. A bad bag comes back as a `failed` result, never as an exception: only a
dead worker process is an error to the driver.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from typing import Any

import ray

from sosmaskfuse_core.pipeline.builder import build_stage
from sosmaskfuse_core.tools.fuse_bag import BagJob, BagJobError, BagReport, fuse_bag

from .report import DONE, FAILED


class PairCounter:
    """The `progress` BagFusion.run steps once per pair written; the driver polls `count`."""

    def __init__(self, exit_after: int | None = None) -> None:
        self.total: int | None = None
        self.count = 0
        self.exit_after = exit_after

    def step(self, status: str = "", ok: bool = True, n: int = 1) -> None:
        self.count += n
        if self.exit_after is not None and self.count >= self.exit_after:
            os._exit(3)  # fault injection: dies mid-bag, as on an OOM kill or a lost node


class BagWorker:
    """Builds the stage once, then fuses one bag per `fuse` call. Runs as a Ray actor.

    `values`: the settings values of `sosmaskfuse bag` (`commands.options.setting_values`),
    with the worker's device. `exit_after_pairs`: fault injection for tests.
    """

    def __init__(
        self,
        name: str,
        values: Mapping[str, Any],
        job: BagJob,
        threads: int = 1,
        exit_after_pairs: int | None = None,
    ) -> None:
        import torch  # the worker's process: one torch thread per reserved CPU

        torch.set_num_threads(max(1, threads))
        self.name, self.job = name, job
        self.stage, self.sources = build_stage(values)
        self._exit_after = exit_after_pairs
        self._counter = PairCounter()

    def describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node": ray.util.get_node_ip_address(),
            "device": str(self.stage.pipeline.device),
            "models": str(self.sources),
            "gpu_ids": [str(i) for i in ray.get_gpu_ids()],
        }

    def progress(self) -> int:
        """Pairs written of the bag in hand (answered while `fuse` runs: two actor threads)."""
        return self._counter.count

    def fuse(self, src: str, dst: str) -> dict[str, Any]:
        """Fuse `src` into the new bag `dst`: a result dict, never an exception for a bad bag."""
        self._counter = PairCounter(self._exit_after)
        start = time.perf_counter()
        try:
            report = fuse_bag(src, dst, self.job, self.stage, self.sources, self._counter)
        except BagJobError as exc:
            return {"status": FAILED, "error": str(exc), "seconds": time.perf_counter() - start}
        except Exception as exc:  # noqa: BLE001 - a bag rosbags cannot parse must not end the run
            return {
                "status": FAILED,
                "error": f"{src}: {type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - start,
            }
        return result_of(src, report, self.job)


def result_of(src: str, report: BagReport, job: BagJob) -> dict[str, Any]:
    """The report line of a bag `fuse_bag` fused (or stopped fusing)."""
    result = {
        "status": DONE,
        "pairs": report.paired.get(job.thermal_topic, 0),
        "fused": report.pairs,
        "failed_pairs": len(report.failed),
        "corrupt_messages": len(report.corrupt),
        "lost_chunks": len(report.lost),
        "seconds": report.seconds,
        "error": "",
    }
    if report.error:
        result["status"] = FAILED
        result["error"] = (
            f"cannot read {src}: {report.error}"
            if not report.storage
            else f"{src}: stopped after {report.pairs} pairs: {report.error}"
        )
    elif report.interrupted:
        result["status"] = FAILED
        result["error"] = f"{src}: interrupted in the worker after {report.pairs} pairs"
    return result
