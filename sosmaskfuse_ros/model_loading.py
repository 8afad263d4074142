"""The node's models with fallbacks: a bad device, precision or weights file never stops it.

Only what failed is replaced by its default, the user's other choices are kept:

* an unusable device (`cuda` without a GPU, `cuda:3` with one) -> the CPU;
* an unusable precision (`fp16` on the CPU) -> fp32;
* an autoencoder file that cannot be used (missing, malformed, numerically broken: the
  pipeline's probe frame decodes to NaN) -> the device's shipped autoencoder (`auto`);
* an SOS network file that cannot be used -> no network, the mask from the best source left;
* and, if even that fails on the chosen device, the shipped CPU model on the CPU in fp32.

Each reason is logged, and the fallback's account (what runs, and why) is returned for the
diagnostics. With `allow_fallback` false nothing is replaced: the first thing that cannot run
as configured is a RuntimeError with its reason (configure fails, the node stays
unconfigured), for a vehicle where a missing GPU must be an error, not a slow CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sosmaskfuse_core.models.shipped import AUTO
from sosmaskfuse_core.pipeline import builder
from sosmaskfuse_core.pipeline.backends import choose_backend
from sosmaskfuse_core.pipeline.devices import check_precision, resolve_device, resolve_precision
from sosmaskfuse_core.pipeline.pair_stage import PairStage
from sosmaskfuse_core.settings import table


@dataclass
class LoadedModels:
    """What `load_models` built, and why it differs from the configuration (if it does)."""

    stage: PairStage
    sources: builder.ModelSources
    fallback: str = ""  # empty when the configuration runs as given


def _attempts(values: Mapping[str, Any], device: str, precision: str) -> list[dict]:
    """The model choices to try, in order: as configured, then replacing what may have failed."""
    ae, sos, mask = values["autoencoder_weights"], values["sosnet_weights"], values["mask_source"]
    fallback_mask = "topic" if mask == "topic" else "auto"
    shipped = ae in AUTO  # the device's shipped model already
    tries = [(ae, sos, mask)]
    if not shipped:
        tries.append(("auto", sos, mask))
    if sos or mask == "sosnet":
        tries.append((ae, "", fallback_mask))
        if not shipped:
            tries.append(("auto", "", fallback_mask))
    runs = [dict(zip(("autoencoder_weights", "sosnet_weights", "mask_source"), t)) for t in tries]
    for run in runs:
        run.update(device=device, precision=precision)
    last_resort = {
        "autoencoder_weights": "auto",
        "sosnet_weights": "",
        "mask_source": fallback_mask,
        "device": "cpu",
        "precision": "fp32",
    }
    if last_resort not in runs:
        runs.append(last_resort)
    return runs


def load_models(values: Mapping[str, Any], log_error: Callable[[str], None]) -> LoadedModels:
    """The configured stage, or the nearest one that can run (see the module docstring).

    RuntimeError when not even the shipped defaults on the CPU can be built, or (with
    `allow_fallback` false) when the configuration cannot run as it is.
    """
    strict = not values.get("allow_fallback", True)
    errors: list[str] = []
    device, precision = values["device"], values["precision"]
    try:
        resolved = resolve_device(device)
    except ValueError as exc:
        errors.append(str(exc))
        device, resolved = "cpu", resolve_device("cpu")
    try:
        check_precision(resolve_precision(precision, resolved), resolved)
    except ValueError as exc:
        errors.append(str(exc))
        precision = "fp32"
    backend = values.get("backend", table.default("backend"))
    try:
        choose_backend(backend, resolved, resolve_precision(precision, resolved, backend))
    except ValueError as exc:
        errors.append(str(exc))
        backend = "torch"
    if strict and errors:
        raise RuntimeError(_refusal(errors))
    for error in errors:
        log_error(f"cannot use the configured device/precision/backend: {error}")
    attempts = _attempts(values, device, precision)
    for overrides in attempts[:1] if strict else attempts:
        overrides["backend"] = backend
        try:
            stage, sources = builder.build_stage(values, **overrides)
        except (ValueError, OSError, RuntimeError) as exc:
            if strict:
                raise RuntimeError(_refusal([str(exc)])) from None
            errors.append(str(exc))
            log_error(f"cannot use the configured models: {exc}")
            continue
        fallback = ""
        if errors:
            # the reason first: the diagnostics message keeps only its first 300 characters
            fallback = (
                "running fallback because: "
                + "; ".join(errors)
                + f" (now: {sources}; on {stage.pipeline.device} "
                f"{stage.pipeline.config.precision})"
            )
            log_error(fallback)
        return LoadedModels(stage, sources, fallback)
    raise RuntimeError("no usable models: " + "; ".join(errors))


def _refusal(errors: list[str]) -> str:
    return "cannot run as configured (allow_fallback is false): " + "; ".join(errors)
