"""The fleet's account of a run: one line per bag, the engine, the workers; fleet_report.json.

Plain Python (no Ray): the driver fills a `FleetReport` as bags finish and writes it whole at
the end of every run, also after Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sosmaskfuse_core import __version__

REPORT_NAME = "fleet_report.json"
#: Bag states in the report. `interrupted`: not finished because the run was stopped (Ctrl-C).
DONE, SKIPPED, FAILED, INTERRUPTED, PENDING = "done", "skipped", "failed", "interrupted", "pending"
FINAL_STATES = (DONE, SKIPPED, FAILED, INTERRUPTED)


@dataclass
class BagEntry:
    """One input bag's line in the report."""

    input: str
    output: str
    status: str = PENDING
    pairs: int | None = None  # synchronised pairs found
    fused: int | None = None  # pairs fused and written
    failed_pairs: int | None = None  # pairs that could not be fused
    corrupt_messages: int | None = None  # input messages that could not be decoded
    lost_chunks: int | None = None  # MCAP chunks that could not be read (their messages lost)
    seconds: float | None = None  # the worker's time on the bag (last attempt)
    worker: str | None = None
    attempts: int = 0
    error: str = ""


@dataclass
class FleetReport:
    """What a fleet run did; written to OUT/fleet_report.json, also after Ctrl-C."""

    engine: dict[str, Any] = field(default_factory=dict)
    bags: list[BagEntry] = field(default_factory=list)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # the whole run, Ray start-up and model loading included
    fusion_seconds: float = 0.0  # from the first worker ready to the last bag done
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(bag.status == status for bag in self.bags)

    @property
    def fused(self) -> int:
        """Pairs written by this run (bags done now; skipped bags count nothing)."""
        return sum(bag.fused or 0 for bag in self.bags if bag.status == DONE)

    @property
    def pairs_per_second(self) -> float:
        return self.fused / self.fusion_seconds if self.fusion_seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """0 when every bag is done or skipped, 130 after Ctrl-C, 1 otherwise."""
        if self.interrupted:
            return 130
        return 0 if all(bag.status in (DONE, SKIPPED) for bag in self.bags) else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "sosmaskfuse": __version__,
            "options": self.options,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "fusion_seconds": round(self.fusion_seconds, 3),
            "fused": self.fused,
            "pairs_per_second": round(self.pairs_per_second, 3),
            "counts": {s: self.count(s) for s in FINAL_STATES},
            "workers": self.workers,
            "bags": [dataclasses.asdict(bag) for bag in self.bags],
        }

    def write(self, path: Path) -> None:
        """Written whole or not at all (a temporary file renamed over the old report)."""
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)


def print_summary(report: FleetReport, out_dir: Path, stream: TextIO | None = None) -> None:
    """Counts, throughput over the fleet, and each failure with its error."""
    stream = stream or sys.stderr
    counts = ", ".join(f"{report.count(s)} {s}" for s in FINAL_STATES if report.count(s))
    state = "interrupted: " if report.interrupted else ""
    print(
        f"{state}fleet: {len(report.bags)} bags: {counts}; fused {report.fused} pairs in "
        f"{report.fusion_seconds:.1f} s on {len(report.workers)} workers "
        f"({report.pairs_per_second:.2f} pairs/s; {report.seconds:.1f} s in all) -> {out_dir}",
        file=stream,
    )
    for bag in report.bags:
        if bag.status == FAILED:
            print(f"  failed: {bag.input}: {bag.error}", file=stream)
    print(f"  report: {out_dir / REPORT_NAME}", file=stream)
