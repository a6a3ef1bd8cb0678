"""Drift-detection settings: `DRIFTLINE_DRIFT__*` on top of the shared ones."""

from __future__ import annotations

from pydantic import BaseModel, Field

from driftline_core.settings import DriftlineSettings

__all__ = ["DriftOptions", "DriftSettings"]


class DriftOptions(BaseModel):
    group_id: str = "drift-detection"
    checkpoint_interval_s: float = Field(default=1.0, gt=0)
    checkpoint_max_bytes_per_s: float = Field(
        default=8_000_000,
        gt=0,
        description="checkpoint writes at most this many bytes per second on average: after "
        "a checkpoint of B bytes the next waits at least B / this many seconds (and at least "
        "checkpoint_interval_s)",
    )
    max_poll_records: int = Field(default=5000, ge=1)
    family_alpha: float = Field(default=0.01, gt=0, lt=1)
    idle_close_s: float = Field(
        default=30.0,
        gt=0,
        description="close a model's windows after this long without "
        "events (wall clock), so quiet models report",
    )
    hold_max_s: float = Field(
        default=120.0,
        gt=0,
        description="how long a record of a model not known yet (its registry event is "
        "behind), or a label whose prediction is not stashed yet, is held before it goes "
        "to the DLQ",
    )
    reference_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="a model registered without a reference: how long after its registry "
        "state arrives its predictions wait (held) for the reference before they are "
        "windowed without one (its reference usually follows within a second)",
    )
    hold_max_records: int = Field(default=200_000, ge=1, description="held at most, per processor")


class DriftSettings(DriftlineSettings):
    service_name: str = "drift-detection"
    drift: DriftOptions = Field(default_factory=DriftOptions)
