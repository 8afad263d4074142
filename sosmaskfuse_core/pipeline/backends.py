"""What runs the networks: the `Backend` interface, PyTorch (NHWC, CUDA graphs), the choice.

A backend runs the network calls of a fused pair: the SOS network (`sos`), and the
autoencoder with the fusion strategy between its encoder and decoder (`fuse`, written once in
`Backend` on top of each backend's `encode` and `decode`). The strategy always runs in fp32
PyTorch, whatever the backend and precision. `TorchBackend` is the default;
`sosmaskfuse_core.pipeline.onnx_backend.OnnxRuntimeBackend` runs the same calls in ONNX
Runtime. `choose_backend` is the one place that says which backend a setting, device and
precision give (and refuses an impossible combination); `make_backend` builds it.

On CUDA, `TorchBackend` captures each call as a CUDA graph the second time it sees its input
size and settings (`GraphCache`: a fixed-size video replays one graph per frame; a folder of
odd sizes never pays for a capture), keeping the last few sizes.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar, cast

import torch
from torch import nn

from sosmaskfuse_core.models.imvf_autoencoder import IMVFAutoencoder
from sosmaskfuse_core.models.sos_hrnet import SOSNet
from sosmaskfuse_core.settings.table import BACKENDS

from .bands import fuse_within_budget
from .fusion_modes import FusionMode

log = logging.getLogger(__name__)

M = TypeVar("M", bound=nn.Module)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Backend(abc.ABC):
    """What the pipeline asks of whatever runs the networks.

    `autoencoder` and `sosnet` are the fp32 modules the backend was made from (for their
    configuration; a backend never changes the caller's modules). Inputs are float tensors on
    the pipeline's device; outputs are fp32 there.
    """

    name: str
    autoencoder: IMVFAutoencoder
    sosnet: SOSNet | None
    #: Bytes the encoder-strategy-decoder pass may use: a frame whose pass needs more is fused
    #: in bands of the same output (`bands`); None: no limit.
    memory_budget: float | None = None

    @abc.abstractmethod
    def encode(self, batch: torch.Tensor, precision: str) -> list[torch.Tensor]:
        """The encoder's four feature maps of a batch of gray images (B x 1 x H x W)."""

    @abc.abstractmethod
    def decode(self, feats: Sequence[torch.Tensor], precision: str) -> torch.Tensor:
        """The decoder's image (fp32, N x 1 x H x W) of four fused feature maps."""

    @abc.abstractmethod
    def sos(self, x: torch.Tensor, precision: str) -> torch.Tensor:
        """The SOS network's logit (fp32) of its normalised input."""

    def fuse(
        self,
        ir: torch.Tensor,
        vis: torch.Tensor,
        mask: torch.Tensor,
        mode: FusionMode,
        mu: float,
        precision: str,
    ) -> torch.Tensor:
        """Float gray images and the mask (N x 1 x H x W) -> the decoder's output (fp32).

        The encoder runs once on the mode's encoder batch, the strategy fuses each level in
        fp32, the decoder runs once (its output cropped to the input's size, which only a
        space-to-depth network on a frame of odd size changes); within `memory_budget`, in
        horizontal bands with the same output (`bands.fuse_within_budget`).
        """
        return fuse_within_budget(
            lambda batch: self.encode(batch, precision),
            lambda feats: self.decode(feats, precision),
            mode.encoder_input(ir, vis, mask),
            mode,
            ir.shape[0],
            mu,
            config=self.autoencoder.config,
            element_size=DTYPES[precision].itemsize,
            budget_bytes=self.memory_budget,
        )


# --- CUDA graphs, one per input size ---------------------------------------------------------


class CudaGraph:
    """One function captured as a CUDA graph on static copies of its inputs."""

    def __init__(self, fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor]) -> None:
        self.inputs = [t.clone() for t in inputs]
        side = torch.cuda.Stream(inputs[0].device)
        side.wait_stream(torch.cuda.current_stream(inputs[0].device))
        with torch.cuda.stream(side):  # warm-up: lazy initialisation and cuDNN's choices
            for _ in range(2):
                fn(*self.inputs)
        torch.cuda.current_stream(inputs[0].device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = fn(*self.inputs)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        for static, t in zip(self.inputs, inputs):
            static.copy_(t)
        self.graph.replay()
        return self.output.clone()  # the next replay overwrites the static output


class GraphCache:
    """Captured graphs keyed by (call, input shapes, settings); least recently used go first.

    A key is captured the second time it is run (the first run is eager), so sizes seen once
    cost nothing. `capture(fn, inputs)` makes the replayable object (CudaGraph on CUDA).
    """

    def __init__(
        self,
        capacity: int = 4,
        capture: Callable[[Callable, Sequence[torch.Tensor]], Callable] = CudaGraph,
    ) -> None:
        self.capacity = capacity
        self._capture = capture
        self._graphs: OrderedDict[Hashable, Callable] = OrderedDict()
        self._seen: OrderedDict[Hashable, None] = OrderedDict()
        self.captures = 0

    def __len__(self) -> int:
        return len(self._graphs)

    def keys(self) -> list[Hashable]:
        return list(self._graphs)

    def run(self, key: Hashable, fn: Callable, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        graph = self._graphs.get(key)
        if graph is not None:
            self._graphs.move_to_end(key)
            return graph(*inputs)
        if key not in self._seen:
            self._seen[key] = None
            if len(self._seen) > 64:
                self._seen.popitem(last=False)
            return fn(*inputs)
        graph = self._capture(fn, inputs)
        self.captures += 1
        self._graphs[key] = graph
        if len(self._graphs) > self.capacity:
            self._graphs.popitem(last=False)  # its memory pool goes with it
        log.debug("captured a CUDA graph for %s", key)
        return graph(*inputs)


# --- the PyTorch backend ----------------------------------------------------------------------


class TorchBackend(Backend):
    """The networks in PyTorch, on copies of the caller's modules.

    channels_last: store weights and activations NHWC (oneDNN on the CPU, cuDNN's tensor-core
        layout on CUDA); the results equal NCHW's up to float rounding.
    fp16/bf16 run on a converted copy of the weights (made once per precision), so inputs and
        weights are cast once rather than at every layer; fp32 runs the fp32 copy.
    cuda_graphs: on CUDA, replay a captured graph per input size (`GraphCache`).
    fp32 on CUDA is plain fp32: TF32 convolutions (PyTorch's cuDNN default) are turned off for
    its calls, so fp32 results stay those of the CPU; fp16/bf16 are the fast precisions.
    """

    name = "torch"

    def __init__(
        self,
        autoencoder: IMVFAutoencoder,
        sosnet: SOSNet | None,
        device: torch.device,
        *,
        channels_last: bool = True,
        cuda_graphs: bool = True,
        graph_capacity: int = 4,
    ) -> None:
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.autoencoder = self._own(autoencoder)
        self.sosnet = self._own(sosnet) if sosnet is not None else None
        self._copies: dict[tuple[str, str], nn.Module] = {}
        use_graphs = cuda_graphs and device.type == "cuda"
        self.graphs = GraphCache(graph_capacity) if use_graphs else None

    def _own(self, module: M) -> M:
        """The backend's own fp32 copy of a module, on its device and in its memory format."""
        own = copy.deepcopy(module).eval().float()
        # Module.to takes memory_format (torch's stubs do not list it)
        return own.to(device=self.device, memory_format=self.memory_format)  # type: ignore[call-overload]

    def _module(self, role: str, precision: str) -> nn.Module:
        master = self.autoencoder if role == "autoencoder" else self.sosnet
        if master is None:
            raise ValueError("this backend was made without an SOS network")
        if precision == "fp32":
            return master
        key = (role, precision)
        if key not in self._copies:
            self._copies[key] = copy.deepcopy(master).to(DTYPES[precision])
        return self._copies[key]

    def _autoencoder(self, precision: str) -> IMVFAutoencoder:
        return cast(IMVFAutoencoder, self._module("autoencoder", precision))

    def _numerics(self, precision: str):
        if self.device.type != "cuda" or precision != "fp32":
            return contextlib.nullcontext()
        cudnn = torch.backends.cudnn
        return cudnn.flags(
            enabled=cudnn.enabled,
            benchmark=cudnn.benchmark,
            deterministic=cudnn.deterministic,
            allow_tf32=False,
        )

    def _input(self, x: torch.Tensor, precision: str) -> torch.Tensor:
        return x.to(DTYPES[precision], memory_format=self.memory_format)

    def encode(self, batch: torch.Tensor, precision: str) -> list[torch.Tensor]:
        return self._autoencoder(precision).encoder(self._input(batch, precision))

    def decode(self, feats: Sequence[torch.Tensor], precision: str) -> torch.Tensor:
        decoder = self._autoencoder(precision).decoder
        return decoder([self._input(f, precision) for f in feats]).float()

    def fuse(
        self,
        ir: torch.Tensor,
        vis: torch.Tensor,
        mask: torch.Tensor,
        mode: FusionMode,
        mu: float,
        precision: str,
    ) -> torch.Tensor:
        """`Backend.fuse` with fp32 kept plain on CUDA and, there, one graph per input size."""

        def run(ir: torch.Tensor, vis: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            with self._numerics(precision):
                return Backend.fuse(self, ir, vis, mask, mode, mu, precision)

        if self.graphs is None:
            return run(ir, vis, mask)
        key = ("fuse", tuple(ir.shape), mode.name, float(mu), precision)
        return self.graphs.run(key, run, (ir, vis, mask))

    def sos(self, x: torch.Tensor, precision: str) -> torch.Tensor:
        def run(x: torch.Tensor) -> torch.Tensor:
            with self._numerics(precision):
                return self._module("sosnet", precision)(self._input(x, precision)).float()

        if self.graphs is None:
            return run(x)
        return self.graphs.run(("sos", tuple(x.shape), precision), run, (x,))


def onnxruntime_available() -> bool:
    """True when onnxruntime (to run) and onnx (to export) are both installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(backend: str, device: torch.device, precision: str) -> str:
    """`torch` or `onnxruntime` for a `backend` setting (ValueError for an impossible one).

    `auto` takes ONNX Runtime where it is installed and the run is fp32 on the CPU (measured
    faster there, docs/performance.md), PyTorch otherwise.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    cpu_fp32 = device.type == "cpu" and precision == "fp32"
    if backend == "auto":
        return "onnxruntime" if cpu_fp32 and onnxruntime_available() else "torch"
    if backend == "onnxruntime":
        if not cpu_fp32:
            raise ValueError(
                f"backend 'onnxruntime' runs fp32 on the CPU (asked: {precision} on {device}); "
                "use backend 'torch' (or 'auto') for this device and precision"
            )
        if not onnxruntime_available():
            raise ValueError(
                "backend 'onnxruntime': onnxruntime and onnx are not both installed "
                "(pip install 'sosmaskfuse_ros[onnx]', or use backend 'torch')"
            )
    return backend


def make_backend(
    backend: str,
    autoencoder: IMVFAutoencoder,
    sosnet: SOSNet | None,
    device: torch.device,
    precision: str,
    **options,
) -> Backend:
    """The backend object for a `backend` setting; `options` go to TorchBackend."""
    if choose_backend(backend, device, precision) == "onnxruntime":
        from .onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(autoencoder, sosnet)
    return TorchBackend(autoencoder, sosnet, device, **options)
