r"""Cost of an SOS network per frame: parameters, GFLOP, CPU time; against the classical mask.

    python benchmarks/bench_sosnet.py --sosnet CKPT [--frame 640x512] [--threads 1] [--repeat 20]
    python benchmarks/bench_sosnet.py --config small --width 12 --size 320x256   (random weights)

GFLOP counts a multiply-add as two operations (torch's FlopCounterMode), for one forward pass
at the checkpoint's stored input size (the size the pipeline resizes the thermal image to).
Times are the median over --repeat calls, after one warm-up, with --threads torch threads:
the network alone, the whole masker on a --frame sized frame (resize, normalise, network,
upsample, sigmoid: with --sosnet the pipeline's own `SOSNetMasker`, what `eval-mask --source
sosnet` and the fusion run), and the classical thermal mask on the same frame, the baseline
the other two rows are compared with (x its time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sosmaskfuse_core.models.checkpoints import load_sosnet
from sosmaskfuse_core.models.sos_hrnet import SOSNet
from sosmaskfuse_core.pipeline.preprocessing import logit_to_probability, sos_input
from sosmaskfuse_core.pipeline.sos_masker import SOSNetMasker
from sosmaskfuse_core.thermal.hot_object_mask import ThermalHotObjectMasker
from sosmaskfuse_core.training.sosnet import hrnet_config


def _wh(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sosnet", help="checkpoint (its stored input_size is used)")
    p.add_argument("--config", default="small", help="without --sosnet: preset (paper, small)")
    p.add_argument("--width", type=int, default=None, help="without --sosnet: branch width")
    p.add_argument(
        "--size", type=_wh, default=None, help="input size WxH (default: the checkpoint's)"
    )
    p.add_argument(
        "--frame", type=_wh, default=(640, 512), help="thermal frame size WxH (default 640x512)"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.sosnet:
        model, meta = load_sosnet(args.sosnet)
        size = args.size or tuple(meta.get("input_size") or (640, 480))
    else:
        model = SOSNet(hrnet_config(args.config, width=args.width))
        size = args.size or (640, 480)
    model.eval()
    x = torch.zeros(1, 1, size[1], size[0])
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    gflop = counter.get_total_flops() / 1e9
    params = sum(t.numel() for t in model.parameters())
    frame = np.random.default_rng(0).integers(0, 256, (args.frame[1], args.frame[0]), np.uint8)
    t = torch.from_numpy(frame)[None, None]

    @torch.inference_mode()
    def network():
        model(x)

    if args.sosnet and not args.size:
        pipeline_masker = SOSNetMasker(args.sosnet)

        def masker():
            pipeline_masker(frame)

    else:  # random weights or another size: the same steps on the bare network

        @torch.inference_mode()
        def masker():
            logit_to_probability(model(sos_input(t, size)), frame.shape)

    classical = ThermalHotObjectMasker()
    base = median_ms(lambda: classical(frame), args.repeat)
    net, full = median_ms(network, args.repeat), median_ms(masker, args.repeat)
    print(
        f"SOS network {params / 1e6:.2f} M parameters, {gflop:.2f} GFLOP at "
        f"{size[0]}x{size[1]}; {args.threads} thread(s), median of {args.repeat}:"
    )
    frame_wh = f"{args.frame[0]}x{args.frame[1]}"
    print(f"  classical mask       {base:7.1f} ms  (baseline)")
    print(f"  network forward      {net:7.1f} ms  x{net / base:.2f}")
    print(f"  masker on {frame_wh:<10} {full:7.1f} ms  x{full / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
