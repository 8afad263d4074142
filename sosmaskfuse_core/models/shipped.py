"""The weights shipped inside the package, their names, and how a loaded checkpoint is logged."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_AUTOENCODER = WEIGHTS_DIR / "imvf_autoencoder.pt"
#: The lite autoencoder: the same architecture, widths 8 16 32 48 and an 8-channel stem.
SHIPPED_AUTOENCODER_LITE = WEIGHTS_DIR / "imvf_autoencoder_lite.pt"
SHIPPED_SOSNET = WEIGHTS_DIR / "sosnet.pt"

#: Names that `--autoencoder` / `autoencoder_weights` accept besides a path ("auto", or the
#: empty string of earlier versions, is the device's: `resolve_autoencoder`).
SHIPPED_AUTOENCODERS = {"full": SHIPPED_AUTOENCODER, "lite": SHIPPED_AUTOENCODER_LITE}
AUTO = ("auto", "")


def shipped_or_none(path: Path) -> str | None:
    """`path` as a string if the file ships with this install, else None."""
    return str(path) if path.is_file() else None


def resolve_autoencoder(spec: str | None, on_gpu: bool = False) -> tuple[str, str | None]:
    """(path, shipped name) for an autoencoder option: "auto" (or ""), "full", "lite", a path.

    "auto" is the full model on a GPU (`on_gpu`) and the lite model on a CPU. The shipped name
    is "full" or "lite" for shipped files and None for a path. A shipped file missing from this
    install is a FileNotFoundError that names it. (A file called `lite` in the working
    directory is given as `./lite`.)
    """
    spec = spec or ""
    if spec in AUTO:
        spec = "full" if on_gpu else "lite"
    if spec not in SHIPPED_AUTOENCODERS:
        return spec, None
    path = SHIPPED_AUTOENCODERS[spec]
    if not path.is_file():
        raise FileNotFoundError(
            f"the shipped {spec} autoencoder is not in this install (expected {path})"
        )
    return str(path), spec


def describe(meta: dict, shipped: bool | str | None) -> str:
    """How a loaded file is named in logs.

    `shipped full <path>`, `shipped lite <path>`, `authors' weights <path>` or
    `weights <path>`; `shipped` is the shipped name ("full", "lite"), True for "full",
    or False/None for a file the user gave.
    """
    if shipped:
        what = f"shipped {'full' if shipped is True else shipped}"
    else:
        what = "authors' weights" if meta.get("layout") == "authors" else "weights"
    return f"{what} {meta['path']}"
