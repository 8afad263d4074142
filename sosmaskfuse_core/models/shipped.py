"""The weights shipped inside the package, and how a loaded checkpoint is named in logs."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_AUTOENCODER = WEIGHTS_DIR / "imvf_autoencoder.pt"
SHIPPED_SOSNET = WEIGHTS_DIR / "sosnet.pt"


def shipped_or_none(path: Path) -> str | None:
    """`path` as a string if the file ships with this install, else None."""
    return str(path) if path.is_file() else None


def describe(meta: dict, shipped: bool) -> str:
    """`shipped default <path>`, `authors' weights <path>` or `weights <path>` for loaded files."""
    what = (
        "shipped default"
        if shipped
        else ("authors' weights" if meta.get("layout") == "authors" else "weights")
    )
    return f"{what} {meta['path']}"
