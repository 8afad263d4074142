"""Synthetic weights for the parity fixture: a checkpoint schema -> a deterministic state dict.

The fixture's expected outputs (test/fixtures/parity) were computed by the reference
implementation with weights built this way, so every clone rebuilds the same tensors here:

* entry ``i`` of the schema ``[[key, shape, dtype], ...]`` draws from its own float64 torch
  generator seeded ``seed + i`` (seed 1000 for the autoencoder, 2000 for the SOS network);
* ``num_batches_tracked``: the int64 scalar 0 (nothing drawn);
* otherwise ``n`` = standard normal of the shape, then by kind: ``running_var``
  ``0.5 + uniform[0, 1)`` (drawn after ``n``), ``running_mean`` ``0.1 n``, ``bias`` ``0.01 n``,
  other 1-D (norm weights) ``0.5 (1 + 0.1 n)``, else He-normal ``n sqrt(2 / fan_in)``;
* four tensors are scaled or shifted so activations stay moderate (`GAIN`, `SHIFT`): the
  autoencoder's 1x1 input conv (1/255: inputs are 0..255), its output bias (+1), the SOS
  head's last conv (x2) and bias (-3.4);
* all computed in float64, then stored as float32.

`test/test_parity_fixture.py` checks, where ../shared is present, that this gives exactly the
tensors of the fixture's own recipe there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch

SEEDS = {"autoencoder": 1000, "sosnet": 2000}
GAIN = {"conv0.conv2d.weight": 1 / 255.0, "last_layer.3.weight": 2.0}
SHIFT = {"conv_out.conv2d.bias": 1.0, "last_layer.3.bias": -3.4}


def synthetic_tensor(key: str, shape: Sequence[int], seed: int) -> torch.Tensor:
    """The tensor of one schema entry, drawn from a generator seeded `seed`."""
    if key.endswith("num_batches_tracked"):
        return torch.tensor(0, dtype=torch.int64)
    generator = torch.Generator().manual_seed(seed)
    normal = torch.randn(list(shape), generator=generator, dtype=torch.float64)
    name = key.rsplit(".", 1)[-1]
    if name == "running_var":
        value = 0.5 + torch.rand(list(shape), generator=generator, dtype=torch.float64)
    elif name == "running_mean":
        value = 0.1 * normal
    elif name == "bias":
        value = 0.01 * normal
    elif len(shape) == 1:
        value = 0.5 * (1.0 + 0.1 * normal)
    else:
        value = normal * math.sqrt(2.0 / math.prod(shape[1:]))
    return (value * GAIN.get(key, 1.0) + SHIFT.get(key, 0.0)).to(torch.float32)


def synthetic_state_dict(schema: Sequence[Sequence], seed: int) -> dict[str, torch.Tensor]:
    """Every entry of `schema` ([key, shape, dtype] rows, in order), entry i seeded seed + i."""
    state = {}
    for index, (key, shape, dtype) in enumerate(schema):
        tensor = synthetic_tensor(key, shape, seed + index)
        if str(tensor.dtype).removeprefix("torch.") != dtype or list(tensor.shape) != list(shape):
            raise ValueError(
                f"{key}: made {tensor.dtype} {list(tensor.shape)}, schema says "
                f"{dtype} {list(shape)}"
            )
        state[key] = tensor
    return state


def authors_schemas() -> dict[str, list]:
    """The authors' checkpoint schemas ([key, shape, dtype] rows per network).

    The original in ../shared/spec where present, else the copy kept with the parity fixture
    (test/fixtures/parity/checkpoint_schemas.json).
    """
    here = Path(__file__).resolve().parent
    original = here.parent.parent / "shared" / "spec" / "checkpoint_schemas.json"
    copy = here / "fixtures" / "parity" / "checkpoint_schemas.json"
    path = original if original.is_file() else copy
    return json.loads(path.read_text())
