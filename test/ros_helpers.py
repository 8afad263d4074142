"""Helpers for tests on real rclpy over DDS: a private context, a spinning executor, waiting.

`RosSession()` makes its own rclpy context and spins a multi-threaded executor in a background
thread; its life, step by step:

* `add(node)`: the executor spins the node; the session remembers it.
* `remove(node)`: the node leaves the executor, its worker thread (`node.worker`, if it has one)
  is stopped, and `assert_no_worker_errors(node)` runs; the node itself is destroyed at
  `close()` (destroying it now would race the executor, see `remove`).
* `close()`: asks the spin loop to stop (an event checked between `spin_once` calls, and a
  wake-up of the executor's wait), joins the spin thread, waits for callbacks still running,
  then destroys every node given to `add` and shuts the context down. It returns as soon as
  the spin thread has stopped, with no busy waiting. Last, it raises AssertionError if a
  callback raised (`errors`) or a node's worker thread recorded an exception.

`assert_no_worker_errors(node)`: the public check that a node's `LatestWorker` (`node.worker`)
recorded no exception, raising AssertionError with the tracebacks; a node without a worker
passes. A test that provokes worker errors on purpose asserts on `node.worker.errors` and
clears that list before the node is removed.

`wait_for(predicate, timeout)`: poll until true or the bound is reached; the result says which.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

SPIN_PERIOD = 0.05  # longest wait of one spin_once: how late the loop can notice `close()`


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def assert_no_worker_errors(node) -> None:
    """Fail with the recorded tracebacks if `node.worker` (a LatestWorker) caught exceptions."""
    worker = getattr(node, "worker", None)
    errors = list(getattr(worker, "errors", ()))
    if errors:
        name = node.get_name() if hasattr(node, "get_name") else repr(node)
        raise AssertionError(
            f"{len(errors)} exception(s) in the worker thread of {name}:\n" + "\n".join(errors)
        )


class RosSession:
    """One rclpy context with a multi-threaded executor spinning in the background."""

    def __init__(self, num_threads: int = 4) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=num_threads, context=self.context)
        self.errors: list[BaseException] = []  # raised by callbacks, for tests to assert on
        self.spin_calls = 0  # spin_once calls so far (tests of this harness read it)
        self._nodes: list = []  # every node given to add(), destroyed at close()
        self._removed: set[int] = set()  # ids of nodes already taken out of the executor
        self._lock = threading.Lock()  # remove_node never runs inside spin_once
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._spin, name="ros-session-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException, ShutdownException

        while not self._stop.is_set():
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self.spin_calls += 1
                    self.executor.spin_once(timeout_sec=SPIN_PERIOD)
            except (ExternalShutdownException, ShutdownException):
                return
            except Exception as exc:  # a callback raised: keep spinning, let the test see it
                self.errors.append(exc)

    @property
    def spinning(self) -> bool:
        return self._thread.is_alive()

    def add(self, node):
        self.executor.add_node(node)
        self._nodes.append(node)
        return node

    def remove(self, node) -> None:
        """Take a node out of the executor, stop its worker and check it; destroyed at close().

        Destroying it now would race the executor: rclpy's MultiThreadedExecutor resumes a
        generator over the nodes of its last wait set on the next spin_once, and touching a
        destroyed node's timer or subscription there raises InvalidHandle. The fusion node's
        worker thread is stopped now, as its destroy_node would.
        """
        self.executor.wake()  # cut the current wait short: the lock is free sooner
        with self._lock:
            self.executor.remove_node(node)
        self._removed.add(id(node))
        if node not in self._nodes:
            self._nodes.append(node)
        self._stop_worker(node)
        assert_no_worker_errors(node)

    def wait_active(self, lifecycle_node: str, process, timeout: float) -> bool:
        """Whether a lifecycle node run by another process reports `active` within `timeout` s.

        `lifecycle_node` is its full name, `process` the Popen running it: False as soon as the
        process has exited. The probe asks the node's get_state service.
        """
        from lifecycle_msgs.srv import GetState
        from rclpy.node import Node

        name = f"active_probe_{lifecycle_node.strip('/').replace('/', '_')}_{process.pid}"
        probe = self.add(Node(name, context=self.context))
        try:
            client = probe.create_client(GetState, f"{lifecycle_node}/get_state")

            def active() -> bool:
                if process.poll() is not None or not client.service_is_ready():
                    return False
                future = client.call_async(GetState.Request())
                return wait_for(future.done, 5) and future.result().current_state.label == "active"

            return wait_for(active, timeout, interval=0.5)
        finally:
            self.remove(probe)

    @staticmethod
    def _stop_worker(node) -> None:
        worker = getattr(node, "worker", None)
        if worker is not None:
            worker.stop()

    def close(self, timeout: float = 10.0) -> None:
        """Stop spinning, then destroy the nodes and the context; raise what went wrong."""
        import rclpy

        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.executor.wake()
        self._thread.join(timeout)
        problems = []
        if self._thread.is_alive():  # a callback is stuck: nothing below would be safe
            raise AssertionError(f"the spin thread did not stop within {timeout} s")
        self._wait_for_callbacks()
        self.executor.shutdown(timeout_sec=0)
        for node in self._nodes:
            self._stop_worker(node)
            try:
                assert_no_worker_errors(node)
            except AssertionError as exc:
                if id(node) not in self._removed:  # remove() has reported the others
                    problems.append(str(exc))
            node.destroy_node()
        self._nodes.clear()
        rclpy.try_shutdown(context=self.context)
        if self.errors:
            problems.append(f"callbacks raised: {self.errors!r}")
        if problems:
            raise AssertionError("\n".join(problems))

    def _wait_for_callbacks(self) -> None:
        """Let callbacks still running in the executor's pool finish; keep what they raised.

        rclpy 7.1's `Executor.shutdown` does not wait for them (it tests `_is_shutdown` right
        after setting it), and a finished callback's exception is only re-raised by a later
        spin_once, which will not come; so the pool and its tasks are read here.
        """
        pool = getattr(self.executor, "_executor", None)
        if pool is not None:
            pool.shutdown(wait=True)
        else:  # another rclpy: wait as its shutdown does
            self.executor.shutdown(timeout_sec=5.0)
        for task in list(getattr(self.executor, "_futures", ())):
            if task.done() and task.exception() is not None:
                self.errors.append(task.exception())


def image_msg(
    array: np.ndarray,
    encoding: str,
    stamp_ns: int,
    frame_id: str = "cam",
    *,
    step: int | None = None,
    bigendian: bool = False,
):
    """A sensor_msgs/Image built by hand (optional row padding and big-endian 16-bit data)."""
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    data = array.astype(array.dtype.newbyteorder(">" if bigendian else "<"))
    row = data.reshape(msg.height, -1).view(np.uint8)
    msg.step = step or row.shape[1]
    padded = np.zeros((msg.height, msg.step), np.uint8)
    padded[:, : row.shape[1]] = row
    msg.is_bigendian = int(bigendian)
    msg.data = padded.tobytes()
    return msg
