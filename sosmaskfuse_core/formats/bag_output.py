"""Where a new bag is written until it is closed, and the rename that gives it its name.

A job writes its bag inside a hidden partial folder beside the output
(``.<name>.partial-<tag>/<name>``, so the storage file inside is already named for the output)
and `commit` renames it to the output's name once it is closed. The output's name therefore only
ever holds a closed bag: a run killed outright (SIGKILL, power loss) leaves a partial folder,
never a bag without index or metadata.yaml where the output should be, and a rerun is not
refused because of it. A job that stopped early but closed its bag (Ctrl-C, SIGTERM) marks it
in its custom_data (`COMPLETE_KEY`), and `is_incomplete` lets a rerun replace it.

Used by `sosmaskfuse bag` (tag: its process id) and by the fleet (tag: run id and attempt).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rosbags.rosbag2 import ReaderError

from .rosbag_io import open_bag

#: custom_data key of our bags: "true" when the whole input was read, "false" when stopped early.
COMPLETE_KEY = "sosmaskfuse.complete"


def partial_dir(output: Path, tag: str) -> Path:
    """Where an attempt writes: a hidden folder beside the output, for a bag of the final name."""
    return output.with_name(f".{output.name}.partial-{tag}")


def partial_dirs(output: Path, prefix: str = "") -> list[Path]:
    """The partial folders of `output` whose tag starts with `prefix` (every one: "")."""
    return sorted(output.parent.glob(f".{output.name}.partial-{prefix}*"))


def remove_partials(output: Path, prefix: str = "") -> None:
    """Remove the partial folders of `output` whose tag starts with `prefix` (all: "")."""
    for stale in partial_dirs(output, prefix):
        shutil.rmtree(stale, ignore_errors=True)


def commit(partial: Path, output: Path, tag: str) -> None:
    """Move a closed bag to its final name (replacing an old output there), drop the partial."""
    src = partial / output.name
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{tag}")
        output.rename(old)
    src.rename(output)
    shutil.rmtree(partial, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def is_incomplete(bag: Path) -> bool:
    """Whether `bag` is a bag folder whose metadata says a job of ours stopped writing it early."""
    if not (bag / "metadata.yaml").is_file():
        return False
    try:
        with open_bag(bag) as reader:
            custom = reader.storage.metadata.custom or {}
    except (ReaderError, OSError, ValueError):
        return False
    return custom.get(COMPLETE_KEY) == "false"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
