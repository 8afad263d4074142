"""The latest-wins worker: one waiting item at most, stale ones dropped, failures kept."""

from __future__ import annotations

import logging
import threading

import pytest
from ros_helpers import wait_for

from sosmaskfuse_ros.latest_worker import MAX_ERRORS, LatestWorker

BOUND = 10.0  # seconds any wait below may take at most; none is expected to come near it


class Gate:
    """A process function that blocks on each item until released; records what it saw."""

    def __init__(self, fail_on=()):
        self.seen, self.fail_on = [], set(fail_on)
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.finished = threading.Semaphore(0)

    def __call__(self, item):
        self.seen.append(item)
        self.started.release()
        assert self.release.acquire(timeout=BOUND)
        try:
            if item in self.fail_on:
                raise RuntimeError(f"bad item {item}")
        finally:
            self.finished.release()


@pytest.fixture
def gate_worker():
    workers = []

    def make(**kwargs):
        gate = Gate(**kwargs)
        worker = LatestWorker(gate, name="test-worker")
        workers.append(worker)
        return gate, worker

    yield make
    for worker in workers:
        worker.stop()


def test_a_busy_worker_keeps_only_the_newest_item(gate_worker):
    gate, worker = gate_worker()
    assert worker.offer(1)
    assert gate.started.acquire(timeout=BOUND)  # 1 is being processed
    assert worker.offer(2) and not worker.offer(3) and not worker.offer(4)  # 2 and 3 replaced
    assert worker.pending
    gate.release.release()
    assert gate.started.acquire(timeout=BOUND)
    gate.release.release()
    assert gate.finished.acquire(timeout=BOUND) and gate.finished.acquire(timeout=BOUND)
    worker.stop()
    assert gate.seen == [1, 4]
    assert (worker.offered, worker.dropped, worker.processed, worker.failed) == (4, 2, 2, 0)
    assert worker.errors == []


def test_an_exception_is_logged_kept_with_its_traceback_and_the_worker_goes_on(
    gate_worker, caplog
):
    gate, worker = gate_worker(fail_on={"bad"})
    with caplog.at_level(logging.ERROR, logger="sosmaskfuse_ros.latest_worker"):
        worker.offer("bad")
        gate.release.release()
        assert gate.finished.acquire(timeout=BOUND)
        worker.offer("good")
        gate.release.release()
        assert gate.finished.acquire(timeout=BOUND)
        worker.stop()
    assert gate.seen == ["bad", "good"]
    assert (worker.processed, worker.failed) == (1, 1)
    assert len(worker.errors) == 1
    assert "Traceback" in worker.errors[0] and "RuntimeError: bad item bad" in worker.errors[0]
    assert "in __call__" in worker.errors[0]  # where it was raised
    assert [r.message for r in caplog.records] == ["processing failed"]
    assert "RuntimeError: bad item bad" in caplog.text


def test_kept_tracebacks_are_bounded_but_every_failure_is_counted():
    done = threading.Semaphore(0)

    def fail(item):
        try:
            raise ValueError(item)
        finally:
            done.release()

    worker = LatestWorker(fail)
    logging.getLogger("sosmaskfuse_ros.latest_worker").disabled = True
    try:
        for i in range(MAX_ERRORS + 5):
            worker.offer(i)
            assert done.acquire(timeout=BOUND)
        worker.stop()
    finally:
        logging.getLogger("sosmaskfuse_ros.latest_worker").disabled = False
    assert worker.failed == MAX_ERRORS + 5 and len(worker.errors) == MAX_ERRORS
    assert "ValueError: 0" in worker.errors[0]


def test_stop_ends_the_thread_and_drops_a_waiting_item(gate_worker):
    gate, worker = gate_worker()
    worker.offer(1)
    assert gate.started.acquire(timeout=BOUND)
    worker.offer(2)
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    assert wait_for(lambda: worker._stopping, BOUND)  # stop() has flagged it, and now waits
    gate.release.release()  # 1 finishes; 2 is never started
    stopper.join(BOUND)
    assert not stopper.is_alive() and not worker._thread.is_alive()
    assert gate.seen == [1] and worker.processed == 1
