"""Command-line glue, apart from the library: one module per `sosmaskfuse` sub-command.

Each module holds a sub-command's argparse definition and its run function.

`CORE_COMMANDS` are the sub-commands that need no ROS runtime; the ROS package registers its
own (`play`, `demo`) through the `sosmaskfuse.commands` entry-point group, which `cli` reads.
`fleet` imports Ray only when it runs (Ray is an optional extra).
"""

from . import (
    bag,
    calibrate,
    eval_mask,
    evaluate,
    export_onnx,
    fleet,
    fuse,
    make_bag,
    make_sos_data,
    train_autoencoder,
    train_sosnet,
    weights,
)

CORE_COMMANDS = (
    fuse,
    evaluate,
    eval_mask,
    train_autoencoder,
    make_sos_data,
    train_sosnet,
    weights,
    export_onnx,
    bag,
    make_bag,
    fleet,
    calibrate,
)

__all__ = ["CORE_COMMANDS"]
