"""What ingestion's routes answer, as the models their OpenAPI operations declare.

Every model allows extra members: the contract is the fields named here, and a field added
later reaches clients before the model names it (nothing is dropped by the response model).
Configuration blobs stored as JSON (a model's feature schema, monitoring configuration,
classes, a reference profile) are objects here; their shapes are the request models of the
routes that set them (FeatureSchema, MonitoringConfig, ClassContract)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiKeyCreated",
    "ApiKeyInfo",
    "IntakeOut",
    "ModelOut",
    "ProfileOut",
    "ProfileSaved",
    "Rejection",
    "TenantCreated",
    "UserOut",
    "VersionOut",
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Rejection(_Out):
    index: int = Field(description="the event's place in the request (0-based)")
    reason: str


class IntakeOut(_Out):
    """Events taken in: 202 when any was accepted (or none was refused); 409 when every
    refusal is a duplicate event id, 413 when every one is too large, else 422."""

    accepted: int
    rejected: list[Rejection]
    event_ids: list[str] = Field(description="the ids of the accepted events")


class TenantCreated(_Out):
    tenant_id: str
    key_id: str
    api_key: str = Field(description="the tenant's first admin key, shown once")


class ApiKeyCreated(_Out):
    key_id: str
    api_key: str = Field(description="shown once")
    name: str
    scopes: list[str]


class ApiKeyInfo(_Out):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class ModelOut(_Out):
    id: str
    name: str
    task: str
    description: str
    feature_schema: dict[str, Any]
    monitoring: dict[str, Any]
    classes: dict[str, Any] | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class VersionOut(_Out):
    model_id: str
    version: str
    artifact_uri: str
    artifact_sha256: str
    metadata: dict[str, Any]
    stage: str
    submitted_by: str
    submitted_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    approval_comment: str | None


class ProfileSaved(_Out):
    version: int = Field(description="the reference profile's version")
    rows: int
    source: dict[str, Any]
    classes_learnt: dict[str, Any] | None = None


class ProfileOut(_Out):
    version: int
    rows: int
    source: dict[str, Any]
    profile: dict[str, Any]
    created_by: str
    created_at: datetime


class UserOut(_Out):
    """An operator, without secrets."""

    id: str
    username: str
    role: str
    mfa_enabled: bool
    backup_codes_left: int
    created_by: str
    created_at: datetime
    disabled: bool
    identity_provider: str | None = Field(
        default=None, description="the IdP's issuer of a single sign-on user; null: local"
    )
