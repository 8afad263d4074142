"""The fusion node's lifecycle plumbing: transitions that log what they raised, safe change_state.

rclpy 7.1 checks a transition requested by label against the current state, but one requested
by id goes straight to the state machine, whose RCLError ("Transition is not registered")
escapes the service callback and ends the process: one `activate` by id while active, or an
unknown id, from any lifecycle manager, and the node is gone (fixed upstream, not in the Jazzy
wheels). `guard_change_state` answers such a request with success=false and a log line, as a
request by label is answered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn


def logged(transition):
    """A transition callback that logs what it raised (rclpy turns it into a silent ERROR).

    The message goes to the node's `report.config_error` too (ERROR in /diagnostics).
    """

    @functools.wraps(transition)
    def callback(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return transition(self, state)
        except Exception as exc:
            self.report.config_error = f"{transition.__name__[3:]} failed: {exc!r}"
            self.get_logger().error(self.report.config_error)
            return TransitionCallbackReturn.ERROR

    return callback


def guard_change_state(
    node: LifecycleNode, after: Callable[[Any, bool], None] | None = None
) -> None:
    """Make `node`'s change_state service refuse a transition the current state does not offer.

    `after(transition, success)` is called once a valid request was carried out (the fusion
    node finishes its autostart there). Without the service (a node made without its
    communication interface) nothing is done.
    """
    service = getattr(node, "_service_change_state", None)
    if service is None:
        return
    original = service.callback
    machine = node._state_machine  # rclpy's: current_state, available_transitions

    def change_state(request, response):
        transition = request.transition
        available = {t[0]: t[1] for t in machine.available_transitions}
        wanted = transition.label or transition.id
        if wanted not in (available.values() if transition.label else available):
            response.success = False
            node.get_logger().warning(
                f"refused lifecycle transition {wanted!r} in state {machine.current_state[1]}: "
                "valid are "
                + ", ".join(f"{i} ({label})" for i, label in sorted(available.items()))
            )
            return response
        try:
            response = original(request, response)
        except _rclpy.RCLError as exc:  # the state changed under the request (a race)
            response.success = False
            node.get_logger().warning(f"lifecycle transition {wanted!r} failed: {exc}")
            return response
        if after is not None:
            after(transition, response.success)
        return response

    service.callback = change_state
