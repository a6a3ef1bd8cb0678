"""`driftline.revocations.v1`: a credential stopped being valid. Ingestion publishes one
after the change committed; every service that caches credentials consumes the topic and
drops what it cached at once, instead of waiting for its cache's TTL (decision 37).

Each process reads it with a consumer group of its own (every replica must see every
record), from the end: a process that starts has nothing cached yet."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .envelope import Envelope

__all__ = ["TOPIC", "Revocation", "RevocationKind"]

TOPIC = "driftline.revocations.v1"

# api_key: one key revoked; session: one operator session ended; user: every session of a
# user ended (disabled, role changed, password or MFA reset); tenant: the tenant was erased
# (its keys revoked, its users disabled, its data keys destroyed)
RevocationKind = Literal["api_key", "session", "user", "tenant"]


class Revocation(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    kind: RevocationKind
    subject: str = Field(min_length=1, max_length=200, description="the key, session or user id")
    actor: str | None = Field(default=None, max_length=300)
    service: str = Field(default="ingestion", max_length=100)
