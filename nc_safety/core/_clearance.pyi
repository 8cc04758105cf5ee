"""Compiled clearance of laser points along a sampled footprint path (see _clearance.c)."""

from typing import Any

ABI_VERSION: int

def summarize(
    transform: Any,
    half_length: float,
    half_width: float,
    points: Any,
    thresholds: Any,
    hit_distance: float,
    /,
) -> tuple[int, float, int]: ...
