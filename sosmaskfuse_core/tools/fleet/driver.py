"""The fleet's driver: plan the bags, start the workers, hand out bags, retry, rename, report.

`Fleet(config, job, values).run()` finds the bags, connects to Ray (`cluster.connect`), starts
`worker.BagWorker` actors and keeps each busy with one bag at a time. A finished bag is renamed
from its partial folder to its final name (`plan.commit`); a worker that died is replaced and
its bag retried on a fresh one, up to `max_retries` times; Ctrl-C kills the workers and drops
the bags in hand. The report is written at the end of every run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import ray

from sosmaskfuse_core.progress import Progress
from sosmaskfuse_core.tools.fuse_bag import BagJob

from . import cluster
from .config import FleetConfig, worker_count, worker_device
from .plan import FleetError, commit, find_bags, partial_dir, plan, remove_partials
from .report import DONE, FAILED, INTERRUPTED, PENDING, REPORT_NAME, BagEntry, FleetReport
from .worker import BagWorker


@dataclass
class _Attempt:
    entry: BagEntry
    worker: str
    partial: Path
    tag: str


class Fleet:
    """One fleet run: `run()` fuses the planned bags on the workers and fills `report`.

    `values`: the settings values of `sosmaskfuse bag` (`commands.options.setting_values`);
    the workers build their stage from them, on the device `worker_device` chooses.
    ValueError for a device the workers cannot have.
    """

    def __init__(
        self,
        config: FleetConfig,
        job: BagJob,
        values: Mapping[str, Any],
        stream: TextIO | None = None,
    ) -> None:
        self.config, self.job = config, job
        device = worker_device(values.get("device", "auto"), config.gpus_per_worker)
        self.values = {**values, "device": device}
        self.stream = stream or sys.stderr
        self.run_id = uuid.uuid4().hex[:8]
        self.report = FleetReport(
            options={
                "inputs": [str(p) for p in config.inputs],
                "out": str(config.out_dir),
                "job": dataclasses.asdict(job),
                "device": device,
                "cpus_per_worker": config.cpus_per_worker,
                "gpus_per_worker": config.gpus_per_worker,
                "max_retries": config.max_retries,
                "overwrite": config.overwrite,
            }
        )
        self._actors: dict[str, Any] = {}  # name -> actor handle
        self._idle: deque[str] = deque()
        self._starting: dict[Any, str] = {}  # describe() ref -> worker name
        self._running: dict[Any, _Attempt] = {}  # fuse() ref -> attempt
        self._polls: dict[str, Any] = {}  # worker name -> progress() ref
        self._live: dict[str, int] = {}  # worker name -> pairs written of the bag in hand
        self._serial = 0
        self._fusion_start: float | None = None
        self._actor_cls = ray.remote(BagWorker)

    @property
    def report_path(self) -> Path:
        return self.config.out_dir / REPORT_NAME

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> FleetReport:
        """Plan, connect, fuse. FleetError: no bags (nothing written), or no worker starts."""
        start = time.perf_counter()
        config = self.config
        bags = find_bags(config.inputs, exclude=config.out_dir)
        if not bags:
            raise FleetError(
                f"no bags in {', '.join(map(str, config.inputs))} "
                "(folders with metadata.yaml, .mcap or .db3 files)"
            )
        self.report.bags = plan(bags, config.out_dir, config.overwrite)
        todo = [entry for entry in self.report.bags if entry.status == PENDING]
        config.out_dir.mkdir(parents=True, exist_ok=True)
        started = False
        try:
            cpus = None
            if config.workers and not config.ray_address:  # a local Ray with room for them
                cpus = max(os.cpu_count() or 1, math.ceil(config.workers * config.cpus_per_worker))
            try:
                started = cluster.connect(config.ray_address, cpus)
            except (ValueError, ConnectionError, RuntimeError) as exc:  # no cluster, no client
                raise FleetError(
                    f"cannot start or join Ray ({config.ray_address or 'local'}): {exc}"
                ) from None
            engine = self.report.engine = cluster.engine_info(config.ray_address)
            self.say(
                f"fleet: {len(bags)} bags, {len(todo)} to fuse, "
                f"{len(bags) - len(todo)} skipped or failed before the start; "
                f"Ray {ray.__version__} ({engine['address']}, {engine['nodes']} nodes, "
                f"{cluster.describe_resources(engine['resources'])})"
            )
            if todo:
                self._fuse(todo)
        except KeyboardInterrupt:
            self.report.interrupted = True
            self._stop(INTERRUPTED, "not finished: the run was stopped (Ctrl-C)")
            self.say("fleet: interrupted; workers stopped, unfinished bags left out")
        except FleetError as exc:
            self._stop(FAILED, str(exc))
            raise
        finally:
            self.report.seconds = time.perf_counter() - start
            if self._fusion_start is not None:
                self.report.fusion_seconds = time.perf_counter() - self._fusion_start
            self.report.write(self.report_path)
            if started:
                with cluster.no_sigint():
                    ray.shutdown()
        return self.report

    def _fuse(self, todo: list[BagEntry]) -> None:
        pending = deque(todo)
        for entry in todo:
            remove_partials(Path(entry.output))  # leftovers of crashed runs
        n = worker_count(self.config, self.report.engine["resources"], len(todo))
        self._check_fit(n)
        for _ in range(n):
            self._start_worker()
        total = len(self.report.bags)
        progress = Progress(
            total, "fleet", unit="bag", stream=self.stream, initial=total - len(todo)
        )
        try:
            self._loop(pending, progress)
        finally:
            progress.close()
        self._kill_workers()  # those still loading when the last bag was done, too

    def _loop(self, pending: deque[BagEntry], progress: Progress) -> None:
        while pending or self._running:
            while self._idle and pending:
                self._dispatch(pending.popleft(), self._idle.popleft())
            if not self._actors and pending:
                raise FleetError("no worker left to fuse the remaining bags")
            refs = list(self._starting) + list(self._running)
            ready, _ = ray.wait(refs, num_returns=1, timeout=0.5)
            for ref in ready:
                if ref in self._starting:
                    self._worker_ready(ref)
                else:
                    self._finished(ref, pending, progress)
            if self._running:
                self._poll()
                progress.step(self._status(), n=0)

    # --- workers -------------------------------------------------------------------------------

    def _start_worker(self) -> None:
        config = self.config
        self._serial += 1
        name = f"w{self._serial}"
        crash = config.crash_first_worker_after if self._serial == 1 else None
        actor_cls = self._actor_cls.options(
            num_cpus=config.cpus_per_worker,
            num_gpus=config.gpus_per_worker,
            max_concurrency=2,  # `progress` is answered while `fuse` runs
            max_restarts=0,  # the driver replaces dead workers and counts the attempts
            name=f"sosmaskfuse-fleet-{self.run_id}-{name}",
        )
        threads = max(1, int(config.cpus_per_worker))
        # a handle, as in _actors: Ray types the methods of an undecorated actor as functions
        actor: Any = actor_cls.remote(name, self.values, self.job, threads, crash)
        self._actors[name] = actor
        self._starting[actor.describe.remote()] = name

    def _worker_ready(self, ref: Any) -> None:
        name = self._starting.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            self._actors.pop(name, None)
            if getattr(exc, "actor_init_failed", False) and not self.report.workers:
                raise FleetError(
                    f"worker {name} could not load the models: {cluster.cause(exc)}"
                ) from None
            self.say(f"fleet: worker {name} did not start: {cluster.cause(exc)}")
            if not self._actors:
                raise FleetError(f"no worker could start: {cluster.cause(exc)}") from None
            return
        self.report.workers[name] = info
        if self._fusion_start is None:
            self._fusion_start = time.perf_counter()
        self.say(
            f"fleet: worker {name} ready (pid {info['pid']} on {info['node']}, "
            f"{info['device']}; {info['models']})"
        )
        self._idle.append(name)

    def _replace(self, worker: str, needed: bool) -> None:
        """A dead worker's stand-in (a new actor, models loaded afresh), if there is work left."""
        actor = self._actors.pop(worker, None)
        if actor is not None:
            _kill(actor)
        if needed:
            self._start_worker()

    def _kill_workers(self) -> None:
        for actor in self._actors.values():
            _kill(actor)
        self._actors.clear()
        self._idle.clear()
        self._starting.clear()

    def _check_fit(self, n: int) -> None:
        config = self.config
        problem = cluster.fit_problem(
            n, config.cpus_per_worker, config.gpus_per_worker, self.report.engine["resources"]
        )
        if not problem:
            return
        if not config.ray_address:  # a local Ray gets no more nodes: they would wait forever
            raise FleetError(f"{problem}; lower --workers or the resources per worker")
        self.say(
            f"fleet: warning: {problem}; workers wait for resources "
            "(an autoscaler adds nodes; otherwise lower --workers)"
        )

    # --- bags ----------------------------------------------------------------------------------

    def _dispatch(self, entry: BagEntry, worker: str) -> None:
        entry.attempts += 1
        entry.worker = worker
        tag = f"{self.run_id}-{entry.attempts}"
        output = Path(entry.output)
        partial = partial_dir(output, tag)
        partial.mkdir()
        ref = self._actors[worker].fuse.remote(entry.input, str(partial / output.name))
        self._running[ref] = _Attempt(entry, worker, partial, tag)
        self._live[worker] = 0

    def _finished(self, ref: Any, pending: deque[BagEntry], progress: Progress) -> None:
        attempt = self._running.pop(ref)
        entry, worker = attempt.entry, attempt.worker
        self._live.pop(worker, None)
        self._polls.pop(worker, None)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            shutil.rmtree(attempt.partial, ignore_errors=True)
            retry = entry.attempts <= self.config.max_retries
            self._replace(worker, needed=retry or bool(pending))
            if retry:
                self.say(
                    f"fleet: worker {worker} died on {entry.input} "
                    f"(attempt {entry.attempts}); retrying on another worker"
                )
                pending.appendleft(entry)
                return
            entry.status = FAILED
            entry.error = (
                f"the worker died on each of {entry.attempts} attempts; last: {cluster.cause(exc)}"
            )
        except ray.exceptions.RayError as exc:  # an error of the call itself, not of the bag
            shutil.rmtree(attempt.partial, ignore_errors=True)
            self._idle.append(worker)
            entry.status, entry.error = FAILED, f"{type(exc).__name__}: {exc}"
        else:
            self._idle.append(worker)
            self._record(attempt, result)
        ok = entry.status == DONE
        if not ok:
            self.say(f"fleet: failed: {entry.input}: {entry.error}")
        progress.step(self._status(), ok=ok)

    def _record(self, attempt: _Attempt, result: dict[str, Any]) -> None:
        """A worker's result into the report; a finished bag renamed to its final name."""
        entry = attempt.entry
        counts = ("pairs", "fused", "failed_pairs", "corrupt_messages", "lost_chunks", "seconds")
        for key in counts:
            if key in result:
                setattr(entry, key, result[key])
        entry.status, entry.error = result["status"], result["error"]
        if entry.status == DONE:
            try:
                commit(attempt.partial, Path(entry.output), attempt.tag)
            except OSError as exc:
                entry.status = FAILED
                entry.error = f"cannot move the finished bag to {entry.output}: {exc}"
        if entry.status != DONE:
            shutil.rmtree(attempt.partial, ignore_errors=True)

    def _poll(self) -> None:
        """Ask busy workers how far they are, without waiting for the answer."""
        busy = {attempt.worker for attempt in self._running.values()}
        for worker, ref in list(self._polls.items()):
            done, _ = ray.wait([ref], timeout=0)
            if done:
                del self._polls[worker]
                try:
                    if worker in busy:
                        self._live[worker] = int(ray.get(ref))
                except ray.exceptions.RayError:
                    pass
        for worker in busy - set(self._polls):
            self._polls[worker] = self._actors[worker].progress.remote()

    def _status(self) -> str:
        if self._fusion_start is None:
            return "starting workers"
        fused = self.report.fused + sum(self._live.values())
        rate = fused / max(time.perf_counter() - self._fusion_start, 1e-9)
        return f"{fused} pairs, {rate:.2f} pairs/s, {len(self._running)} busy"

    def _stop(self, status: str, reason: str) -> None:
        """Ctrl-C or no workers: kill the workers, drop the bags in hand, mark the unfinished."""
        with cluster.no_sigint():
            self._kill_workers()
            self._running.clear()
            for entry in self.report.bags:
                remove_partials(Path(entry.output), f"{self.run_id}-")
                if entry.status == PENDING:
                    entry.status, entry.error = status, reason


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone, or Ray itself is going down
        pass
