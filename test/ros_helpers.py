"""Helpers for tests on real rclpy over DDS: a private context, a spinning executor, waiting."""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class RosSession:
    """One rclpy context with a multi-threaded executor spinning in the background."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.errors: list[
            BaseException
        ] = []  # exceptions raised by callbacks, for tests to assert on
        self._removed: list = []  # nodes taken out of the executor, destroyed at close()
        self._lock = threading.Lock()  # remove_node never runs inside spin_once
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException, ShutdownException

        while self.context.ok():
            try:
                with self._lock:
                    self.executor.spin_once(timeout_sec=0.05)
            except (ExternalShutdownException, ShutdownException):
                return
            except Exception as exc:  # a callback raised: keep spinning, let the test see it
                self.errors.append(exc)

    def add(self, node):
        self.executor.add_node(node)
        return node

    def remove(self, node) -> None:
        """Take a node out of the executor; it is destroyed when the session closes.

        Destroying it now would race the executor: rclpy's MultiThreadedExecutor resumes a
        generator over the nodes of its last wait set on the next spin_once, and touching a
        destroyed node's timer or subscription there raises InvalidHandle. The fusion node's
        worker thread is stopped now, as its destroy_node would.
        """
        with self._lock:
            self.executor.remove_node(node)
        worker = getattr(node, "worker", None)
        if worker is not None:
            worker.stop()
        self._removed.append(node)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
        for node in self._removed:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


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
