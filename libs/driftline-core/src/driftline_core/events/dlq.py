"""`driftline.dlq.v1`: records no consumer could process, with the reason and their origin."""

from __future__ import annotations

import base64
from typing import ClassVar, Literal

from pydantic import Field

from .envelope import Envelope

__all__ = ["TOPIC", "DeadLetter"]

TOPIC = "driftline.dlq.v1"


class DeadLetter(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    tenant_id: str = "unknown"  # the record may be too broken to tell
    reason: str
    error_type: str
    source: str = Field(description="the service or consumer group that gave up")
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    source_key: str | None = None
    payload: str
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    attempts: int = 1

    @staticmethod
    def wrap_payload(raw: bytes | None) -> tuple[str, Literal["utf-8", "base64"]]:
        if raw is None:
            return "", "utf-8"
        try:
            return raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii"), "base64"

    def raw_payload(self) -> bytes:
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")
