"""The weights shipped inside the package, their names, and how a loaded checkpoint is logged."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_AUTOENCODER = WEIGHTS_DIR / "imvf_autoencoder.pt"
#: The lite autoencoder: the same architecture, widths 8 16 32 48 and an 8-channel stem.
SHIPPED_AUTOENCODER_LITE = WEIGHTS_DIR / "imvf_autoencoder_lite.pt"
SHIPPED_SOSNET = WEIGHTS_DIR / "sosnet.pt"

#: Names that `--autoencoder` / `autoencoder_weights` accept besides a path ("" = the default).
SHIPPED_AUTOENCODERS = {"": SHIPPED_AUTOENCODER, "lite": SHIPPED_AUTOENCODER_LITE}


def shipped_or_none(path: Path) -> str | None:
    """`path` as a string if the file ships with this install, else None."""
    return str(path) if path.is_file() else None


def resolve_autoencoder(spec: str | None) -> tuple[str, str | None]:
    """(path, shipped name) for an autoencoder option: "" or None, "lite", or a file path.

    The shipped name is "default" or "lite" for shipped files and None for a path. A shipped
    file missing from this install is a FileNotFoundError that names it. (A file called
    `lite` in the working directory is given as `./lite`.)
    """
    spec = spec or ""
    if spec not in SHIPPED_AUTOENCODERS:
        return spec, None
    path = SHIPPED_AUTOENCODERS[spec]
    if not path.is_file():
        if spec:
            raise FileNotFoundError(
                f"the shipped {spec} autoencoder is not in this install (expected {path})"
            )
        raise FileNotFoundError(
            f"no autoencoder weights given and none shipped with the package (expected {path})"
        )
    return str(path), spec or "default"


def describe(meta: dict, shipped: bool | str | None) -> str:
    """How a loaded file is named in logs.

    `shipped default <path>`, `shipped lite <path>`, `authors' weights <path>` or
    `weights <path>`; `shipped` is the shipped name ("default", "lite"), True for "default",
    or False/None for a file the user gave.
    """
    if shipped:
        what = f"shipped {'default' if shipped is True else shipped}"
    else:
        what = "authors' weights" if meta.get("layout") == "authors" else "weights"
    return f"{what} {meta['path']}"
