"""The envelope every Driftline event carries, and JSON (orjson) encoding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar
from uuid import UUID, uuid4

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["Envelope", "TenantId", "decode", "encode", "utcnow"]

TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
ModelId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Fields common to every event. `event_id` is chosen by the producer and is the key
    of idempotence: a consumer that has seen it already must have no further effect."""

    model_config = ConfigDict(extra="ignore", frozen=True, ser_json_timedelta="float")

    SCHEMA_VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = ""

    event_id: UUID = Field(default_factory=uuid4)
    schema_version: int = 1
    tenant_id: TenantId
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    produced_at: AwareDatetime = Field(default_factory=utcnow)

    def key(self) -> bytes:
        """Partition key; events of one tenant stay ordered unless a subclass narrows it."""
        return self.tenant_id.encode()


E = TypeVar("E", bound=BaseModel)


def encode(event: BaseModel) -> bytes:
    return orjson.dumps(event.model_dump(mode="python"), option=orjson.OPT_UTC_Z)


def decode(model: type[E], raw: bytes | str) -> E:
    """Parse JSON and validate it. Raises orjson.JSONDecodeError or pydantic.ValidationError."""
    data: Any = orjson.loads(raw)
    return model.model_validate(data)
