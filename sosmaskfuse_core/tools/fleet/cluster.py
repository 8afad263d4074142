"""Joining or starting Ray, what the cluster offers, and whether the workers asked for fit.

`connect` starts a local Ray (the embedded default) or joins the cluster at an address
(`auto`, `HOST:PORT`, `ray://HOST:10001` with Ray Client); `engine_info` is the report's
`engine` entry.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import ray

log = logging.getLogger(__name__)


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address`, or start a local Ray; True if this call connected.

    The caller's SIGTERM and SIGHUP handlers are kept: ray.init replaces them with its own,
    which ends the driver at once (exit code 1, no report, partial folders left).
    """
    if ray.is_initialized():
        return False
    kept = _python_handlers()
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local run reports to no one
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)
    return True


def _python_handlers() -> dict[int, Any]:
    """The Python-level SIGTERM and SIGHUP handlers of the main thread (none elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    names = ("SIGTERM", "SIGHUP")
    sigs = [getattr(signal, name) for name in names if hasattr(signal, name)]
    return {sig: handler for sig in sigs if (handler := signal.getsignal(sig)) is not None}


def engine_info(address: str | None) -> dict[str, Any]:
    """The report's `engine`: Ray, its version, the address, live nodes and their resources."""
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    return {
        "engine": "ray",
        "version": ray.__version__,
        "address": address or "local",
        "nodes": len(nodes),
        "resources": ray.cluster_resources(),
    }


def fit_problem(n: int, cpus: float, gpus: float, resources: dict[str, float]) -> str:
    """Why `n` workers of `cpus` and `gpus` each do not fit in `resources` ("" if they do)."""
    for key, per in (("CPU", cpus), ("GPU", gpus)):
        have = resources.get(key, 0.0)
        if per > 0 and n * per > have + 1e-9:
            return f"{n} workers x {per:g} {key} need more than the {have:g} {key} there"
    return ""


def describe_resources(resources: dict[str, float]) -> str:
    parts = [f"{resources.get(key, 0):g} {key}" for key in ("CPU", "GPU") if key in resources]
    return ", ".join(parts) or "no resources"


def cause(exc: BaseException) -> str:
    """An actor error's message, cut to its last line when it carries a long traceback."""
    text = str(exc).strip()
    return text.splitlines()[-1] if "\n" in text and len(text) > 400 else text


class no_sigint:  # noqa: N801 - used as a statement: `with no_sigint():`
    """Cleanup that a second Ctrl-C must not cut short (signals can be set in the main thread)."""

    def __enter__(self) -> None:
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
