"""The fused image's camera_info: the visible camera's, with the fused frame's header and size.

The fused image lies in the visible camera's pixel grid, so its calibration is the visible
camera's. When the node fuses at another size (`process_width/height`), K and P are scaled
the way the image was resized: pixel centres aligned, as OpenCV's resize maps them
(`pipeline.frames.pixel_scaling`), so `c' = (c + 0.5) s - 0.5` and `f' = f s`. The distortion
model and coefficients, R, binning and ROI are kept.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo

from sosmaskfuse_core.pipeline.frames import pixel_scaling


def fused_camera_info(visible: CameraInfo, header, width: int, height: int) -> CameraInfo:
    """`visible`'s calibration for an image of `width` x `height` with `header`."""
    out = CameraInfo()
    out.header = header
    out.width, out.height = int(width), int(height)
    out.distortion_model = visible.distortion_model
    out.d = list(visible.d)
    out.r = list(visible.r)
    out.binning_x, out.binning_y = visible.binning_x, visible.binning_y
    out.roi = visible.roi
    k = np.asarray(visible.k, dtype=np.float64).reshape(3, 3)
    p = np.asarray(visible.p, dtype=np.float64).reshape(3, 4)
    source = (int(visible.width), int(visible.height))
    if source != (out.width, out.height) and min(source) > 0:
        scale = pixel_scaling(source, (out.width, out.height))
        if k.any():
            k = scale @ k
        if p.any():
            p = scale @ p
    out.k = [float(v) for v in k.reshape(-1)]
    out.p = [float(v) for v in p.reshape(-1)]
    return out
