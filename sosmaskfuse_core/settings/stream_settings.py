"""The settings of how pairs arrive and results leave: inputs, outputs, reporting, lifecycle.

A part of the one settings table (`settings.table` joins it after the fusion's own groups, in
this order): the node's topics, transports, pairing and QoS, what it publishes, its diagnostics
and its lifecycle, and the few of them the bag tool shares.
"""

from __future__ import annotations

from .setting import LIVE_STREAMS, NODE, Setting
from .vocabulary import TRANSPORTS

STREAM_SETTINGS: tuple[Setting, ...] = (
    # inputs (start-up)
    Setting(
        "input_transport",
        "str",
        "raw",
        "raw (sensor_msgs/Image on <topic>) or compressed (CompressedImage on <topic>/compressed)",
        "inputs",
        choices=TRANSPORTS,
        scopes=frozenset({NODE}),
    ),
    Setting(
        "sync_queue_size",
        "int",
        10,
        "ApproximateTime queue size per input",
        "inputs",
        range=(1, 1000),
        scopes=LIVE_STREAMS,
    ),
    Setting(
        "sync_slop",
        "float",
        0.05,
        "largest stamp difference (s) of a thermal/visible pair (above 0: a slop of 0 pairs "
        "nothing)",
        "inputs",
        range=(0.0, 10.0),
        open_low=True,
        scopes=LIVE_STREAMS,
    ),
    Setting(
        "max_input_pixels",
        "int",
        8192 * 8192,
        "largest input image (width x height) decoded; a bigger one is dropped before its "
        "pixels are decoded (PNG/JPEG data: the size in its header; image files: also a file "
        "size cap)",
        "inputs",
        range=(1, 1 << 30),
    ),
    # outputs (start-up)
    Setting(
        "publish_compressed",
        "bool",
        False,
        "also publish fused_image/compressed (JPEG) for remote viewing and recording",
        "outputs",
        scopes=frozenset({NODE}),
    ),
    Setting(
        "jpeg_quality",
        "int",
        90,
        "JPEG quality of fused_image/compressed",
        "outputs",
        range=(1, 100),
        scopes=frozenset({NODE}),
    ),
    # reporting (start-up)
    Setting(
        "diagnostic_updater.period",
        "float",
        1.0,
        "seconds between /diagnostics messages (diagnostic_updater's parameter)",
        "reporting",
        range=(0.05, 3600.0),
        scopes=frozenset({NODE}),
    ),
    Setting(
        "diagnostic_updater.use_fqn",
        "bool",
        False,
        "status names '/ns/name: task', not 'name: task' (diagnostic_updater's parameter)",
        "reporting",
        scopes=frozenset({NODE}),
    ),
    Setting(
        "log_period",
        "float",
        10.0,
        "seconds between one-line summaries in the log (0 = never)",
        "reporting",
        range=(0.0, 86400.0),
        scopes=frozenset({NODE}),
    ),
    Setting(
        "input_min_rate",
        "float",
        1.0,
        "diagnostics: an input below this rate (Hz) less 10% is WARN, none in the window ERROR",
        "reporting",
        range=(0.0, 10000.0),
        scopes=frozenset({NODE}),
    ),
    Setting(
        "input_max_rate",
        "float",
        1000.0,
        "diagnostics: an input faster than this (Hz) plus 10% is WARN",
        "reporting",
        range=(0.0, 10000.0),
        open_low=True,
        scopes=frozenset({NODE}),
    ),
    Setting(
        "max_stamp_age",
        "float",
        5.0,
        "diagnostics: stamps older than this (s) on arrival (inputs) or publication "
        "(fused_image) are ERROR",
        "reporting",
        range=(0.0, 86400.0),
        open_low=True,
        scopes=frozenset({NODE}),
    ),
    Setting(
        "output_min_rate",
        "float",
        0.0,
        "diagnostics: fused_image below this rate (Hz) less 10% is WARN, none in the window ERROR",
        "reporting",
        range=(0.0, 10000.0),
        scopes=frozenset({NODE}),
    ),
    # lifecycle (start-up)
    Setting(
        "autostart",
        "bool",
        True,
        "configure and activate at start-up (false: wait unconfigured for a lifecycle manager); "
        "if a start-up value stops it, the configure after the fix activates too",
        "lifecycle",
        scopes=frozenset({NODE}),
    ),
)
