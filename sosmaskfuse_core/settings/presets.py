"""Presets: named sets of setting values (`preset` setting, `--preset`, `preset:=`).

This is the one place a preset is defined. `apply_preset` gives each setting a preset names
the preset's value, except the settings the user gave a value of their own (the command line
knows which were given; the node takes a value other than the default as given, since its
parameter file lists every default). `PipelineConfig.paper()` reads `PRESETS["paper"]`, and
`table.check_presets` checks every value against the table when the table is imported.

`paper`: what the authors' code computes (their outputs, number for number, with their
checkpoints: test/test_parity.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "autoencoder_weights": "full",
        "precision": "fp32",
        "fusion_mode": "imvf",
        "mask_input_stretch": False,
        "output_scaling": "minmax",
        "mask_smoothing": 0.0,
    },
}
PRESET_NAMES = ("none", *PRESETS)


def preset_text() -> str:
    """Every preset in words: `paper: fusion_mode imvf, mask_input_stretch false, ...`."""
    return "; ".join(
        f"{name}: " + ", ".join(f"{k} {_value_text(v)}" for k, v in values.items())
        for name, values in PRESETS.items()
    )


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def apply_preset(values: dict[str, Any], given: Iterable[str] = ()) -> dict[str, Any]:
    """`values` with the preset they name (`values["preset"]`) applied; a new dict.

    Each setting of the preset gets the preset's value, except those named in `given` (the
    settings the user gave a value of their own). Settings `values` lacks stay absent.
    """
    name = values.get("preset", "none")
    if name in (None, "none"):
        return dict(values)
    if name not in PRESETS:
        raise ValueError(f"preset: {name!r} is not one of {', '.join(PRESET_NAMES)}")
    kept = set(given)
    out = dict(values)
    for key, value in PRESETS[name].items():
        if key in out and key not in kept:
            out[key] = value
    return out


def check_presets(by_name: Callable[[str], Any]) -> None:
    """Every preset names settings of the table, with values they accept (ValueError)."""
    for name, preset in PRESETS.items():
        for key, value in preset.items():
            try:
                by_name(key).check(value)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"preset {name!r}: {exc}") from None
