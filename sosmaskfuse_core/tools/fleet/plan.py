"""Which bags a fleet run fuses, where each output goes, and the rename that completes one.

Plain Python (no Ray). Inputs are bags (a folder with metadata.yaml, or a bare .mcap/.db3
file) or folders searched for them; each bag's output is ``OUT/<bag name>_fused``. An attempt
writes under a hidden partial folder beside it (`partial_dir`) and `commit` renames the
finished bag to its final name, so a final name only ever holds a whole bag (`is_complete`);
both come from `formats.bag_output`, which `sosmaskfuse bag` uses too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from sosmaskfuse_core.formats.bag_output import (  # noqa: F401  (the fleet's names for them)
    commit,
    partial_dir,
    remove_partials,
)
from sosmaskfuse_core.formats.rosbag_io import BAG_FILE_SUFFIXES

from .report import FAILED, SKIPPED, BagEntry

OUTPUT_SUFFIX = "_fused"


class FleetError(RuntimeError):
    """The fleet cannot start: no bags, a missing input, workers that cannot load the models."""


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (metadata.yaml) or a bare .mcap/.db3 file."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.is_file() and path.suffix in BAG_FILE_SUFFIXES


def find_bags(inputs: Iterable[Path], exclude: Path | None = None) -> list[Path]:
    """The bags named or found under `inputs`, in sorted order per input, each once.

    Folders are searched, except hidden ones and `exclude` (the output folder). FleetError for
    an input that is neither a bag nor a folder.
    """
    found: list[Path] = []
    skip = exclude.resolve() if exclude is not None else None
    for path in inputs:
        if not path.exists():
            raise FleetError(f"{path}: no such bag or folder")
        if is_bag(path):
            found.append(path)
        elif path.is_dir():
            found.extend(_search(path, skip))
        else:
            raise FleetError(
                f"{path}: not a bag (a folder with metadata.yaml, or an .mcap/.db3 file)"
            )
    unique: dict[Path, Path] = {}
    for bag in found:
        unique.setdefault(bag.resolve(), bag)
    return list(unique.values())


def _search(top: Path, skip: Path | None) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(top):
        here = Path(root)
        keep = []
        for name in sorted(dirs):
            sub = here / name
            if name.startswith(".") or (skip is not None and sub.resolve() == skip):
                continue
            if (sub / "metadata.yaml").is_file():
                found.append(sub)  # a bag folder: its .mcap/.db3 files are part of it
            else:
                keep.append(name)
        dirs[:] = keep
        found.extend(
            here / name
            for name in sorted(files)
            if Path(name).suffix in BAG_FILE_SUFFIXES and not name.startswith(".")
        )
    return sorted(found)


def bag_name(bag: Path) -> str:
    """The bag's folder name, or a bare file's stem."""
    return bag.stem if bag.is_file() else bag.name


def output_of(bag: Path, out_dir: Path) -> Path:
    return out_dir / f"{bag_name(bag)}{OUTPUT_SUFFIX}"


def is_complete(output: Path) -> bool:
    """Final names are only ever made by renaming a finished bag, so a bag there is complete."""
    return output.is_dir() and (output / "metadata.yaml").is_file()


def plan(bags: Sequence[Path], out_dir: Path, overwrite: bool = False) -> list[BagEntry]:
    """A report line per bag: pending, skipped (its output exists) or failed (name taken)."""
    entries: list[BagEntry] = []
    owners: dict[str, Path] = {}  # output name -> the bag that takes it
    for bag in bags:
        output = output_of(bag, out_dir)
        entry = BagEntry(input=str(bag), output=str(output))
        if output.name in owners:
            entry.status = FAILED
            entry.error = (
                f"output {output} would also be that of {owners[output.name]}: "
                "bags with one name go to separate fleet runs (another --out)"
            )
        elif output.exists() and not overwrite:
            if is_complete(output):
                entry.status = SKIPPED
            else:
                entry.status = FAILED
                entry.error = f"{output} exists and is not a bag; remove it or use --overwrite"
        owners.setdefault(output.name, bag)
        entries.append(entry)
    return entries
