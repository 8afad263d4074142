"""Command-line options that mirror the fusion node's parameters, and the pipeline and frame preparation they build.

Each option is the node parameter of the same name with dashes (``--sync-slop`` is
``sync_slop``), with the node's default, so an offline run computes what the node would publish.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .frames import FramePreparer, parse_homography
from .fusion import FUSION_MODES
from .pipeline import OUTPUT_SCALINGS, FusionPipeline, PipelineConfig
from .thermal_agc import MODES as AGC_MODES
from .thermal_agc import ThermalAGC

if TYPE_CHECKING:
    from .weights import ModelSources

MASK_SOURCES = ("auto", "sosnet", "thermal")  # the node's `topic` needs a mask topic: not offered offline
PRECISIONS = ("fp32", "fp16", "bf16")


def add_node_options(parser: argparse.ArgumentParser) -> None:
    """The node's model, fusion, size, registration, gain-control and pairing parameters."""
    models = parser.add_argument_group("models (node parameters autoencoder_weights, sosnet_weights, ...)")
    models.add_argument("--autoencoder", metavar="CKPT", help="autoencoder checkpoint (default: the shipped weights)")
    models.add_argument("--sosnet", metavar="CKPT",
                        help="SOS network checkpoint (default: the shipped weights, if any)")
    models.add_argument("--mask-source", choices=MASK_SOURCES, default="auto",
                        help="sosnet, thermal (classical mask) or auto (default: auto)")
    models.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    models.add_argument("--precision", choices=PRECISIONS, default="fp32", help="default: fp32")

    fusion = parser.add_argument_group("fusion")
    fusion.add_argument("--fusion-mode", choices=FUSION_MODES, default="imvf", help="default: imvf")
    fusion.add_argument("--mu", type=float, default=0.8, help="IMV-F thermal foreground weight (default 0.8)")
    fusion.add_argument("--mask-threshold", type=float, default=None,
                        help="binarise the mask at this probability (default: soft mask)")
    fusion.add_argument("--output-scaling", choices=OUTPUT_SCALINGS, default="minmax",
                        help="minmax: the paper's per-frame stretch (default); clip: no flicker between frames")
    fusion.add_argument("--color-output", action="store_true",
                        help="fused_image as bgr8: fused luma with the visible chroma")
    fusion.add_argument("--process-width", type=int, default=0, metavar="W",
                        help="fuse at this size (with --process-height; default: the visible size)")
    fusion.add_argument("--process-height", type=int, default=0, metavar="H")
    fusion.add_argument("--homography", type=float, nargs=9, metavar="H",
                        help="3x3 row-major thermal pixel -> visible pixel (default: resize the thermal image)")

    agc = parser.add_argument_group("thermal gain control (16-bit counts to 8 bit)")
    agc.add_argument("--thermal-agc", choices=AGC_MODES, default="percentile", help="default: percentile")
    agc.add_argument("--agc-low-percent", type=float, default=1.0, help="percentile mode: black (default 1)")
    agc.add_argument("--agc-high-percent", type=float, default=99.0, help="percentile mode: white (default 99)")
    agc.add_argument("--agc-min", type=float, default=0.0, help="fixed mode: count mapped to black")
    agc.add_argument("--agc-max", type=float, default=65535.0, help="fixed mode: count mapped to white")

    sync = parser.add_argument_group("pairing (message_filters ApproximateTime)")
    sync.add_argument("--sync-queue-size", type=int, default=10, help="queue per input (default 10)")
    sync.add_argument("--sync-slop", type=float, default=0.05,
                      help="largest stamp difference of a pair, seconds (default 0.05)")


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The PipelineConfig the node builds from the same parameters (ValueError if one is out of range)."""
    if bool(args.process_width) != bool(args.process_height):
        raise ValueError("--process-width and --process-height go together")
    process = (args.process_width, args.process_height) if args.process_width else None
    return PipelineConfig(fusion_mode=args.fusion_mode, mu=args.mu, mask_threshold=args.mask_threshold,
                          output_scaling=args.output_scaling, precision=args.precision,
                          color_output=args.color_output, process_size=process)


def frame_preparer(args: argparse.Namespace) -> FramePreparer:
    """Gain control and registration as the node sets them up (ValueError for bad values)."""
    agc = ThermalAGC(mode=args.thermal_agc, low_percent=args.agc_low_percent, high_percent=args.agc_high_percent,
                     fixed_min=args.agc_min, fixed_max=args.agc_max)
    return FramePreparer(agc=agc, homography=parse_homography(args.homography))


def check_sync(args: argparse.Namespace) -> None:
    """The node's ranges for the pairing parameters."""
    if not 1 <= args.sync_queue_size <= 1000:
        raise ValueError(f"--sync-queue-size {args.sync_queue_size}: expected 1..1000")
    if not 0.0 <= args.sync_slop <= 10.0:
        raise ValueError(f"--sync-slop {args.sync_slop}: expected 0..10 seconds")


def build(args: argparse.Namespace) -> tuple[FusionPipeline, ModelSources, FramePreparer]:
    """Pipeline, a description of its models, and the frame preparation (ValueError, OSError, RuntimeError)."""
    from .weights import build_pipeline  # torch and the models load only when a job runs

    config = pipeline_config(args)
    preparer = frame_preparer(args)
    check_sync(args)
    pipeline, sources = build_pipeline(args.autoencoder, args.sosnet, mask_source=args.mask_source,
                                       device=args.device, config=config)
    return pipeline, sources, preparer
