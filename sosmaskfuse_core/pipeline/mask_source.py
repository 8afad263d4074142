"""Which mask a pipeline runs: the `mask_source` setting resolved against the networks at hand.

`resolve_mask_source` is the one place where `auto` becomes a concrete source; its result is
what `PipelineConfig.mask_source` holds. What each source needs (an SOS network, the classical
thermal mask, a mask with every pair) is asked of `needs_network` / `needs_classical`.
"""

from __future__ import annotations

from sosmaskfuse_core.settings import table

__all__ = [
    "MASK_SOURCES",
    "NETWORKS",
    "needs_classical",
    "needs_network",
    "resolve_mask_source",
]

#: The sources a pipeline runs (`auto` resolved): the SOS network, the classical thermal mask,
#: their mean, or a mask given with every pair.
MASK_SOURCES = tuple(s for s in table.MASK_SOURCES if s != "auto")
#: Where the SOS network comes from: none at all, the shipped file, or weights the user gave.
NETWORKS = ("none", "shipped", "given")


def needs_network(source: str) -> bool:
    """Whether the source runs the SOS network."""
    return source in ("sosnet", "ensemble")


def needs_classical(source: str) -> bool:
    """Whether the source runs the classical thermal mask (made on the host, from the frame)."""
    return source in ("thermal", "ensemble")


def resolve_mask_source(requested: str, network: str) -> str:
    """The concrete mask source for a `mask_source` setting and the network at hand.

    `auto`: the shipped SOS network averaged with the classical mask (`ensemble`: what measured
    best on held-out ground-level scenes), SOS weights the user gave alone (`sosnet`), the
    classical mask (`thermal`) where there is no network. ValueError for an unknown source or a
    network source without a network.
    """
    if network not in NETWORKS:
        raise ValueError(f"network {network!r}: expected one of {', '.join(NETWORKS)}")
    if requested == "auto":
        return {"none": "thermal", "shipped": "ensemble", "given": "sosnet"}[network]
    if requested not in MASK_SOURCES:
        raise ValueError(
            f"mask_source {requested!r}: expected one of {', '.join(table.MASK_SOURCES)}"
        )
    if needs_network(requested) and network == "none":
        raise ValueError(f"mask_source {requested!r} needs SOS network weights")
    return requested
