"""The ROS test harness itself: close() stops the spin loop first, and no error goes unseen."""

from __future__ import annotations

import threading

import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

from rclpy.node import Node  # noqa: E402
from ros_helpers import RosSession, assert_no_worker_errors, wait_for  # noqa: E402

from sosmaskfuse_ros.latest_worker import LatestWorker  # noqa: E402

BOUND = 10.0

_counter = iter(range(1_000_000))


class Recorder:
    """Wraps a node's destroy_node to record whether the session's spin thread still ran."""

    def __init__(self, session: RosSession, node) -> None:
        self.spinning_at_destroy: list[bool] = []
        original = node.destroy_node

        def destroy():
            self.spinning_at_destroy.append(session.spinning)
            return original()

        node.destroy_node = destroy


def test_close_stops_the_spin_loop_before_destroying_the_nodes():
    session = RosSession()
    ticks = threading.Event()
    node = session.add(Node(f"harness{next(_counter)}", context=session.context))
    node.create_timer(0.01, ticks.set)
    removed = session.add(Node(f"harness{next(_counter)}", context=session.context))
    assert ticks.wait(BOUND)  # the executor spins the node
    session.remove(removed)
    recorders = [Recorder(session, node), Recorder(session, removed)]
    calls = session.spin_calls
    session.close()
    assert not session.spinning
    # the loop ends at its next check: one spin_once in flight, at most one more, not thousands
    assert session.spin_calls - calls <= 2, session.spin_calls - calls
    assert [r.spinning_at_destroy for r in recorders] == [[False], [False]]
    assert not session.context.ok()
    session.close()  # a second close does nothing


def test_a_callback_exception_fails_close():
    session = RosSession()
    node = session.add(Node(f"harness{next(_counter)}", context=session.context))
    fired = threading.Event()

    def boom():
        fired.set()
        raise RuntimeError("callback broke")

    timer = node.create_timer(0.01, boom)
    assert fired.wait(BOUND)
    timer.cancel()
    assert wait_for(lambda: session.errors, BOUND)
    with pytest.raises(AssertionError, match="callback broke"):
        session.close()
    assert not session.spinning and not session.context.ok()


class WorkerNode(Node):
    """A node with a LatestWorker, as the fusion node has."""

    def __init__(self, context) -> None:
        super().__init__(f"worker{next(_counter)}", context=context)
        self.worker = LatestWorker(self._process)

    def _process(self, item) -> None:
        if item == "bad":
            raise KeyError("no such thing")


def _fail_once(node: WorkerNode) -> None:
    node.worker.offer("bad")
    assert wait_for(lambda: node.worker.failed == 1, BOUND)


def test_worker_errors_fail_remove_with_the_traceback(caplog):
    session = RosSession()
    try:
        node = session.add(WorkerNode(session.context))
        assert_no_worker_errors(node)
        _fail_once(node)
        with pytest.raises(AssertionError, match=r"(?s)worker thread of worker\d+.*KeyError"):
            assert_no_worker_errors(node)
        with pytest.raises(AssertionError, match="no such thing"):
            session.remove(node)
        assert not node.worker._thread.is_alive()  # stopped before the check
    finally:
        session.close()  # remove() reported it: close() does not fail a second time


def test_worker_errors_of_a_node_never_removed_fail_close():
    session = RosSession()
    node = session.add(WorkerNode(session.context))
    recorder = Recorder(session, node)
    _fail_once(node)
    with pytest.raises(AssertionError, match="no such thing"):
        session.close()
    assert recorder.spinning_at_destroy == [False]  # cleaned up all the same


def test_errors_provoked_on_purpose_are_cleared_by_the_test():
    session = RosSession()
    node = session.add(WorkerNode(session.context))
    _fail_once(node)
    assert "KeyError" in node.worker.errors[0]
    node.worker.errors.clear()
    session.remove(node)
    session.close()


def test_nodes_without_a_worker_pass_the_check():
    session = RosSession()
    node = session.add(Node(f"plain{next(_counter)}", context=session.context))
    assert_no_worker_errors(node)
    session.remove(node)
    session.close()
