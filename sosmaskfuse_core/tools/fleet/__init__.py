"""Fleet scale: fuse many recorded bags on a Ray cluster, one `sosmaskfuse bag` output each.

The planning (`plan`), the settings (`config`) and the report (`report`) are plain Python and
exported here; the Ray parts are imported only where they run (Ray is an optional extra):
`driver.Fleet` runs a fleet, `worker.BagWorker` is the actor that fuses bags with
`tools.fuse_bag.fuse_bag`, `cluster` starts or joins Ray. The command line is
`sosmaskfuse_core.commands.fleet`.
"""

from .config import FleetConfig, worker_count, worker_device
from .plan import (
    FleetError,
    bag_name,
    commit,
    find_bags,
    is_bag,
    is_complete,
    output_of,
    partial_dir,
    plan,
    remove_partials,
)
from .report import (
    DONE,
    FAILED,
    INTERRUPTED,
    PENDING,
    REPORT_NAME,
    SKIPPED,
    BagEntry,
    FleetReport,
    print_summary,
)

__all__ = [
    "DONE",
    "FAILED",
    "INTERRUPTED",
    "PENDING",
    "REPORT_NAME",
    "SKIPPED",
    "BagEntry",
    "FleetConfig",
    "FleetError",
    "FleetReport",
    "bag_name",
    "commit",
    "find_bags",
    "is_bag",
    "is_complete",
    "output_of",
    "partial_dir",
    "plan",
    "print_summary",
    "remove_partials",
    "worker_count",
    "worker_device",
]
