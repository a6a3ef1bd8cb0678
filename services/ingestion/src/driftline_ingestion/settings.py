"""Ingestion settings: `DRIFTLINE_INGESTION__*` on top of the shared ones."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, model_validator

from driftline_core.settings import DriftlineSettings

from .limits import SizeLimits
from .sso_settings import MfaPolicy, OidcSettings

__all__ = ["IngestionOptions", "IngestionSettings"]

DEV_ADMIN_TOKEN = "driftline-dev-admin"


class IngestionOptions(BaseModel):
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_reference_bytes: int = Field(default=2 * 1024**3, ge=1024)
    max_events_per_request: int = Field(default=10_000, ge=1)
    # one event as JSON, and one string value or key in it (limits.py); an event must still
    # fit the producer's batch once ingestion added its fields and encrypted sensitive ones
    max_event_bytes: int = Field(default=128 * 1024, ge=1024)
    max_field_bytes: int = Field(default=32 * 1024, ge=64)
    rate_per_s: float = Field(default=50_000, gt=0, description="events/s per API key")
    burst: int = Field(default=100_000, ge=1)
    # how long an accepted event id is remembered to refuse replays (client retries); each
    # id costs ~90 bytes of Redis memory: rate x TTL x 90 B (14k events/s x 600 s ~ 760 MB)
    dedup_ttl_s: int = Field(default=600, ge=60)

    cloudevent_join_ttl_s: int = Field(default=300, ge=5)
    schema_cache_ttl_s: float = Field(default=2.0, ge=0)
    kafka_timeout_s: float = Field(default=10.0, gt=0, description="wait for the broker's ack")
    # how long an event id stays claimed as pending without renewal: the ids of a process
    # that died with a send in flight are free for a retry after this (intake.py)
    pending_ttl_s: float = Field(default=30.0, gt=0)
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    # HTTP batches of predictions as columnar batch records (docs/schemas/prediction-batch.md)
    # instead of one JSON record per event
    batch_records: bool = False

    @model_validator(mode="after")
    def _claims_outlive_requests(self) -> IngestionOptions:
        if self.pending_ttl_s <= self.kafka_timeout_s:
            raise ValueError(
                f"DRIFTLINE_INGESTION__PENDING_TTL_S ({self.pending_ttl_s:g}) must exceed "
                f"DRIFTLINE_INGESTION__KAFKA_TIMEOUT_S ({self.kafka_timeout_s:g})"
            )
        return self

    def size_limits(self) -> SizeLimits:
        return SizeLimits(self.max_event_bytes, self.max_field_bytes)


class IngestionSettings(DriftlineSettings):
    service_name: str = "ingestion"
    ingestion: IngestionOptions = Field(default_factory=IngestionOptions)
    # operators' single sign-on and the MFA policy per role (sso_settings.py)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    mfa: MfaPolicy = Field(default_factory=MfaPolicy)

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> IngestionSettings:
        if (
            self.environment in ("staging", "prod")
            and self.ingestion.admin_token.get_secret_value() == DEV_ADMIN_TOKEN
        ):
            raise ValueError("set DRIFTLINE_INGESTION__ADMIN_TOKEN outside dev")
        room = (self.kafka.max_batch_size - 512 - 4096) / 1.4  # envelope, base64 of ciphertext
        if self.ingestion.max_event_bytes > room:
            raise ValueError(
                f"DRIFTLINE_INGESTION__MAX_EVENT_BYTES ({self.ingestion.max_event_bytes}) must "
                f"be at most {int(room)} with DRIFTLINE_KAFKA__MAX_BATCH_SIZE "
                f"{self.kafka.max_batch_size} (an event grows when encrypted)"
            )
        if self.ingestion.max_field_bytes > self.ingestion.max_event_bytes:
            raise ValueError("DRIFTLINE_INGESTION__MAX_FIELD_BYTES exceeds MAX_EVENT_BYTES")
        return self
