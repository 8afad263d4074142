"""The fused image's camera_info: the visible camera's, checked, at the fused size and header.

The fused image lies in the visible camera's pixel grid, so its calibration is the visible
camera's. A camera_info is first checked (`camera_info_problem`): a size of 0, a size no
camera has (more pixels than `max_input_pixels`), non-finite K, P, R or D, or a binning or
ROI outside the image make it unusable, and it is not published at all rather than published
wrong.

When the node fuses at another size (`process_width/height`), the calibration is scaled as
image_proc's resize scales it: K, P, the calibrated width and height and the ROI (offsets and
size, truncated to whole pixels) by the factor the image was resized by, binning and the
distortion model, D and R kept. Unlike image_proc, the factor is taken from the image the
camera delivered (the calibrated size, or the ROI, divided by the binning), so a binned or
cropped camera comes out right too, and pixel centres stay aligned as OpenCV's resize maps
them: `x' = s x + b (s - 1) / 2` in full-resolution pixels with binning `b` (`c' = (c + 0.5) s
- 0.5` without binning). A camera_info that does not describe the visible images (another
size) is refused (ValueError) for that frame.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, RegionOfInterest


def camera_info_problem(info: CameraInfo, max_pixels: int) -> str | None:
    """What makes `info` unusable, in words; None when it can be used."""
    width, height = int(info.width), int(info.height)
    if width <= 0 or height <= 0:
        return f"camera_info size {width}x{height}: no image has it"
    if width * height > max_pixels:
        return f"camera_info size {width}x{height} is above max_input_pixels ({max_pixels})"
    for name in ("k", "p", "r", "d"):
        values = np.asarray(getattr(info, name), dtype=np.float64)
        if not np.isfinite(values).all():
            return f"camera_info {name.upper()} has non-finite values"
    k = np.asarray(info.k, dtype=np.float64)
    if k.any() and (k[0] <= 0 or k[4] <= 0):
        return f"camera_info K has focal lengths fx {k[0]:g}, fy {k[4]:g} (must be above 0)"
    bx, by = int(info.binning_x), int(info.binning_y)
    if bx > width or by > height:
        return f"camera_info binning {bx}x{by} is larger than its {width}x{height} image"
    roi = info.roi
    if roi.width or roi.height:
        if roi.x_offset + roi.width > width or roi.y_offset + roi.height > height:
            return (
                f"camera_info ROI {roi.width}x{roi.height} at ({roi.x_offset}, {roi.y_offset}) "
                f"is outside its {width}x{height} image"
            )
    return None


def delivered_size(info: CameraInfo) -> tuple[int, int]:
    """(width, height) of the images the camera delivers: the ROI (or all) over the binning."""
    roi = info.roi
    width = int(roi.width) if roi.width else int(info.width)
    height = int(roi.height) if roi.height else int(info.height)
    return width // max(1, int(info.binning_x)), height // max(1, int(info.binning_y))


def fused_camera_info(
    visible: CameraInfo, header, width: int, height: int, image_wh: tuple[int, int]
) -> CameraInfo:
    """`visible`'s calibration for the fused image of `width` x `height`, with `header`.

    `image_wh` is the size of the visible image it was fused from. ValueError when `visible`
    describes images of another size.
    """
    delivered = delivered_size(visible)
    if delivered != tuple(image_wh):
        raise ValueError(
            f"camera_info describes {delivered[0]}x{delivered[1]} images (size "
            f"{visible.width}x{visible.height}, binning {visible.binning_x}x"
            f"{visible.binning_y}, ROI {visible.roi.width}x{visible.roi.height}), the visible "
            f"images are {image_wh[0]}x{image_wh[1]}: camera_info not published"
        )
    sx, sy = width / image_wh[0], height / image_wh[1]
    bx, by = max(1, int(visible.binning_x)), max(1, int(visible.binning_y))
    out = CameraInfo()
    out.header = header
    out.width = int(round(visible.width * sx))
    out.height = int(round(visible.height * sy))
    out.distortion_model = visible.distortion_model
    out.d = list(visible.d)
    out.r = list(visible.r)
    out.binning_x, out.binning_y = visible.binning_x, visible.binning_y
    roi = visible.roi
    out.roi = RegionOfInterest(
        x_offset=int(roi.x_offset * sx),
        y_offset=int(roi.y_offset * sy),
        width=int(roi.width * sx),
        height=int(roi.height * sy),
        do_rectify=roi.do_rectify,
    )
    scale = np.array([[sx, 0.0, bx * (sx - 1) / 2], [0.0, sy, by * (sy - 1) / 2], [0.0, 0.0, 1.0]])
    k = np.asarray(visible.k, dtype=np.float64).reshape(3, 3)
    p = np.asarray(visible.p, dtype=np.float64).reshape(3, 4)
    if (sx, sy) != (1.0, 1.0):
        if k.any():
            k = scale @ k
        if p.any():
            p = scale @ p
    out.k = [float(v) for v in k.reshape(-1)]
    out.p = [float(v) for v in p.reshape(-1)]
    return out
