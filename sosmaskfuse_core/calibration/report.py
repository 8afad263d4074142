"""Writing a calibration: the node's parameter file, the report, and the overlay images.

`write_all(calibration, out, pair)` writes

    OUT.yaml          /**: ros__parameters: homography: [9 numbers]  (the node's --params-file)
    OUT.report.json   every figure, machine-readable
    OUT.report.md     the same for a person
    OUT.edges.png     thermal edges on the visible image (`overlay.edge_overlay`)
    OUT.checker.png   a checkerboard of thermal and visible tiles (`overlay.checker_blend`)

beside each other (OUT is the output path without its suffix).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sosmaskfuse_core.formats.image_files import write_image

from .geometry import describe
from .overlay import checker_blend, edge_overlay
from .result import Calibration, FramePair


def companion(out: Path, suffix: str) -> Path:
    """`rig.yaml` -> `rig<suffix>` in the same folder."""
    return out.with_name(out.stem + suffix)


def params_text(calibration: Calibration, command: str = "") -> str:
    """The ROS 2 parameter file of the node: the homography, with the figures as comments."""
    numbers = ", ".join(yaml_double(v) for v in calibration.homography.ravel())
    c = calibration
    lines = [
        f"# sosmaskfuse calibrate --method {c.method}: thermal pixel -> visible pixel",
        f"# thermal {c.thermal_size[0]}x{c.thermal_size[1]}, visible "
        f"{c.visible_size[0]}x{c.visible_size[1]}; {len(c.used)} frames used, "
        f"{len(c.rejected)} set aside; confidence {c.confidence.get('level')}",
        "# " + ", ".join(f"{k} {_fmt(v)}" for k, v in c.errors.items()),
        f"# {describe(c.homography, c.thermal_size, c.visible_size)}",
    ]
    if command:
        lines.append(f"# {command}")
    lines += [
        "#   ros2 run sosmaskfuse_ros sosmaskfuse_node --ros-args --params-file THIS_FILE",
        "#   sosmaskfuse bag ... --params-file THIS_FILE",
        "/**:",
        "  ros__parameters:",
        f"    homography: [{numbers}]",
        "",
    ]
    return "\n".join(lines)


def yaml_double(value: float) -> str:
    """A double that every YAML reader takes for a number (1e-05 is text to YAML 1.1)."""
    text = repr(float(value))
    mantissa, _, exponent = text.partition("e")
    if exponent and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3g}"
    return str(value)


def _plain(value: Any) -> Any:
    """JSON-ready: NumPy scalars as Python numbers, NaN as None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_dict(calibration: Calibration, command: str = "") -> dict[str, Any]:
    """Everything about a calibration, as JSON-ready values."""
    c = calibration
    return _plain(
        {
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "method": c.method,
            "homography": c.homography.ravel().tolist(),
            "thermal_size": list(c.thermal_size),
            "visible_size": list(c.visible_size),
            "pose": str(describe(c.homography, c.thermal_size, c.visible_size)),
            "errors": c.errors,
            "confidence": c.confidence,
            "seconds": c.seconds,
            "frames_used": len(c.used),
            "frames_set_aside": len(c.rejected),
            "frames": [
                {
                    "name": f.name,
                    "used": f.used,
                    "reason": f.reason,
                    "residual_px": f.residual_px,
                    "score": f.score,
                }
                for f in c.frames
            ],
            "details": c.details,
        }
    )


def report_markdown(calibration: Calibration, command: str = "") -> str:
    """The report for a person: figures, confidence, and each frame's fate."""
    c = calibration
    residual = (
        "RMS reprojection (thermal px)" if c.method == "target" else "residual shift (thermal px)"
    )
    lines = [
        f"# Calibration ({c.method})",
        "",
        f"`{command}`" if command else "",
        "",
        f"- thermal {c.thermal_size[0]}x{c.thermal_size[1]} -> visible "
        f"{c.visible_size[0]}x{c.visible_size[1]}: "
        f"{describe(c.homography, c.thermal_size, c.visible_size)}",
        "- errors: " + ", ".join(f"{k} {_fmt(v)}" for k, v in c.errors.items()),
        "- confidence: " + ", ".join(f"{k} {_fmt(v)}" for k, v in c.confidence.items()),
        f"- frames: {len(c.used)} used, {len(c.rejected)} set aside; run time {c.seconds:.1f} s",
        "",
        f"| frame | used | {residual} | score | reason |",
        "|---|---|---|---|---|",
    ]
    for f in c.frames:
        r = "" if f.residual_px is None else f"{f.residual_px:.2f}"
        s = "" if f.score is None else f"{f.score:.3g}"
        lines.append(f"| {f.name} | {'yes' if f.used else 'no'} | {r} | {s} | {f.reason} |")
    return "\n".join(lines) + "\n"


def overlay_frame(calibration: Calibration, pairs: list[FramePair]) -> FramePair | None:
    """The used frame to draw: the best-scoring one."""
    used = {f.name: f for f in calibration.used}
    candidates = [p for p in pairs if p.name in used]
    if not candidates:
        return None
    return max(candidates, key=lambda p: used[p.name].score or 0.0)


def write_all(
    calibration: Calibration, out: Path, pairs: list[FramePair], command: str = ""
) -> list[Path]:
    """Write the parameter file, the reports and the overlays; the paths written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out]
    out.write_text(params_text(calibration, command))
    report = companion(out, ".report.json")
    report.write_text(json.dumps(report_dict(calibration, command), indent=2))
    markdown = companion(out, ".report.md")
    markdown.write_text(report_markdown(calibration, command))
    written += [report, markdown]
    pair = overlay_frame(calibration, pairs)
    if pair is not None:
        h = calibration.homography
        for suffix, image in (
            (".edges.png", edge_overlay(pair.thermal, pair.visible, h)),
            (".checker.png", checker_blend(pair.thermal, pair.visible, h)),
        ):
            path = companion(out, suffix)
            write_image(path, image)
            written.append(path)
    return written
