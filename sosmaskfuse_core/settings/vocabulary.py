"""The words settings choose from: fusion modes, output scalings, precisions, mask sources, ...

Plain data, re-exported by `sosmaskfuse_core.settings.table` (where callers look them up).
"""

#: `imvf` is the paper's IMV-F; `imvf-contrast` runs the same IMV-F pass and then guards every
#: thermal target's gain-normalised contrast, mask or not (`pipeline.contrast_guard`,
#: docs/thermal_contrast.md); `sca` and `addition` ignore the mask.
#: What each one runs is `pipeline.fusion_modes`.
FUSION_MODES = ("imvf", "imvf-contrast", "sca", "addition")
OUTPUT_SCALINGS = ("minmax", "clip")
PRECISIONS = ("fp32", "fp16", "bf16")
#: What runs the networks: PyTorch, ONNX Runtime (the optional `onnx` extra; CPU, fp32), or
#: `auto` (ONNX Runtime where it is installed and the run is fp32 on the CPU, else PyTorch).
BACKENDS = ("torch", "onnxruntime", "auto")
#: Where the mask comes from: the SOS network, the classical thermal mask, the mean of the two
#: (`ensemble`), masks supplied with each pair (the node's `mask` topic, a bag's mask topic,
#: `fuse --mask-dir`), or `auto`: the shipped SOS network averaged with the classical mask
#: (what measured best on held-out ground-level scenes, the shipped network's model card),
#: SOS network weights you give alone, the classical mask where there is no network.
MASK_SOURCES = ("auto", "ensemble", "sosnet", "thermal", "topic")
AGC_MODES = ("minmax", "percentile", "fixed")
TRANSPORTS = ("raw", "compressed")
