"""`sosmaskfuse fleet`: fuse many recorded bags on a Ray cluster (local by default), one bag each.

    sosmaskfuse fleet --in BAG_OR_DIR [BAG_OR_DIR ...] --out DIR
                      --thermal-topic T --visible-topic V [bag options]
                      [--ray-address ADDR] [--workers N] [--gpus-per-worker G] [--overwrite]

Every input bag (a folder with metadata.yaml, or a bare .mcap/.db3 file; folders are searched)
becomes DIR/<bag name>_fused, the bag `sosmaskfuse bag` writes for it with the same options.
Without --ray-address a local Ray is started on this machine; with one (auto, HOST:PORT,
ray://HOST:10001) the run joins that cluster, whose nodes must all see the input and output paths
(a shared filesystem). Workers are Ray actors that load the models once and take one bag at a
time; --gpus-per-worker reserves GPUs (fractions share one) and puts the models there.

A bag is written under DIR/.<name>_fused.partial-<id>/ and renamed when complete, so a final name
always holds a whole bag (a bag whose writing failed part way is `failed`, never renamed). A bag
that cannot be read is reported and the others go on; a worker that dies is replaced and its bag
retried (--max-retries); Ctrl-C, SIGTERM or SIGHUP stops the workers and leaves only finished
bags (exit code 130, 143 or 129). Bags whose output exists are skipped (--overwrite redoes them),
so re-running a crashed command resumes it. DIR/fleet_report.json holds the engine and
cluster resources, and per bag its status (done, skipped, failed), pairs, time, worker and error.
Exit code 0 when every bag is done or skipped, 1 otherwise, 2 when the run cannot start.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from sosmaskfuse_core.commands.bag import add_job_options, job_from_args
from sosmaskfuse_core.commands.options import setting_values
from sosmaskfuse_core.commands.stop_signals import StopSignals
from sosmaskfuse_core.models.shipped import resolve_autoencoder
from sosmaskfuse_core.pipeline.builder import frame_preparer, pipeline_config
from sosmaskfuse_core.settings import BAG

INSTALL_HINT = "pip install 'sosmaskfuse_ros[fleet]'"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fleet",
        help="fuse many bags on a Ray cluster (local by default), one output bag each",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--in",
        dest="inputs",
        required=True,
        nargs="+",
        type=Path,
        metavar="BAG_OR_DIR",
        help="bags (folders with metadata.yaml, .mcap/.db3 files) or folders to search",
    )
    p.add_argument(
        "--out",
        dest="output",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder for the <bag name>_fused bags and fleet_report.json",
    )
    p.add_argument("--overwrite", action="store_true", help="fuse bags whose output exists again")
    cluster = p.add_argument_group("Ray")
    cluster.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join this cluster: auto, HOST:PORT or ray://HOST:10001 (default: start a local Ray)",
    )
    cluster.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker actors (default: as many as the cluster's CPUs, or GPUs, fit)",
    )
    cluster.add_argument(
        "--cpus-per-worker",
        type=float,
        default=1.0,
        metavar="C",
        help="CPUs reserved per worker, also its torch threads (default 1)",
    )
    cluster.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        metavar="G",
        help="GPUs reserved per worker, e.g. 0.5 for two per GPU; the models run there "
        "(default 0: CPU)",
    )
    cluster.add_argument(
        "--max-retries",
        type=int,
        default=2,
        metavar="N",
        help="retries of a bag whose worker died (default 2)",
    )
    add_job_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, *, stream=None) -> int:
    stream = stream or sys.stderr
    if importlib.util.find_spec("ray") is None:  # asks, without importing it
        print(
            f"error: sosmaskfuse fleet runs on Ray, which is not installed: {INSTALL_HINT}",
            file=stream,
        )
        return 2
    from sosmaskfuse_core.tools import fleet
    from sosmaskfuse_core.tools.fleet.driver import Fleet

    try:
        values = setting_values(args, BAG)
        if values["cpu_threads"]:
            raise ValueError(
                "--cpu-threads: a fleet worker uses --cpus-per-worker threads (the CPUs Ray "
                "reserves for it)"
            )
        job = job_from_args(args, values)
        pipeline_config(values)  # bad values fail here, not in every worker
        frame_preparer(values)
        on_gpu = bool(args.gpus_per_worker)
        for option, path in (
            ("--autoencoder", resolve_autoencoder(values["autoencoder_weights"], on_gpu)[0]),
            ("--sosnet", values["sosnet_weights"]),
        ):
            if path and not Path(path).is_file():  # the workers see the same paths as the driver
                raise ValueError(f"{option} {path}: no such checkpoint file")
        config = fleet.FleetConfig(
            inputs=tuple(args.inputs),
            out_dir=args.output,
            ray_address=args.ray_address,
            workers=args.workers,
            cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=args.gpus_per_worker,
            max_retries=args.max_retries,
            overwrite=args.overwrite,
        )
        with StopSignals() as stop:  # SIGTERM and SIGHUP stop the run as Ctrl-C does
            report = Fleet(config, job, values, stream=stream).run()
    except (ValueError, OSError, fleet.FleetError) as exc:
        print(f"error: {exc}", file=stream)
        return 2
    fleet.print_summary(report, args.output, stream)
    return stop.exit_code if report.interrupted else report.exit_code
