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
    "CloudEventOut",
    "DataKeyRotated",
    "DataKeyVersion",
    "Grant",
    "IntakeOut",
    "KeysRewrapped",
    "MfaEnabled",
    "MfaEnrollment",
    "ModelOut",
    "OidcConfig",
    "PrincipalOut",
    "ProfileOut",
    "ProfileSaved",
    "Rejection",
    "SessionOut",
    "SessionsRevoked",
    "SsoGrant",
    "TenantCreated",
    "TenantErased",
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


# --- operators: login, sessions, MFA (operators.py, mfa_policy.py, oidc.py) -----------------


class Grant(_Out):
    """A session: what a password login, a refresh and a single sign-on login give."""

    access_token: str = Field(description="EdDSA JWT for `Authorization: Bearer`")
    token_type: str = Field(description="Bearer")
    expires_at: int = Field(description="when the access token expires (Unix seconds)")
    expires_in: int = Field(description="seconds until then")
    refresh_token: str = Field(description="single-use: a refresh answers a new one")
    session_id: str
    role: str
    mfa_enabled: bool


class SsoGrant(Grant):
    """The grant of a single sign-on login (GET /v1/auth/oidc/callback without return_to)."""

    tenant_id: str
    username: str
    sso: bool = Field(description="true: the session comes from the identity provider")


class PrincipalOut(_Out):
    """Who the credentials are: an operator (user) with a session, or an API key."""

    tenant_id: str
    kind: str = Field(description="user or api_key")
    id: str = Field(description="the user's or the key's id")
    name: str
    role: str | None = Field(description="an operator's role; null for an API key")
    permissions: list[str]
    session_id: str | None = Field(description="an operator's session; null for an API key")


class SessionOut(_Out):
    """An operator's login session and the device it was made on."""

    session_id: str
    user_id: str
    username: str
    role: str
    created_at: float = Field(description="Unix seconds")
    last_used_at: float = Field(description="Unix seconds (the last refresh)")
    ip: str
    user_agent: str
    current: bool = Field(description="true: the session of the request's credentials")


class SessionsRevoked(_Out):
    revoked: int = Field(description="how many sessions were revoked")


class MfaEnrollment(_Out):
    """A pending TOTP enrolment: the secret for the authenticator app (confirm with a code)."""

    otpauth_uri: str
    secret: str = Field(description="base32")
    qr_png_base64: str = Field(description="the otpauth URI as a QR code, PNG in base64")


class MfaEnabled(_Out):
    mfa_enabled: bool
    backup_codes: list[str] = Field(description="single-use codes, shown once")


class OidcConfig(_Out):
    """Whether single sign-on is on, and where a browser starts it."""

    enabled: bool
    login_url: str | None
    issuer: str | None
    logout_url: str | None = Field(
        description="where a browser signs out at the IdP too (RP-initiated logout)"
    )


# --- tenant data keys and erasure (operators.py) ---------------------------------------------


class DataKeyVersion(_Out):
    """A version of the tenant's data key (never key material)."""

    version: int
    kek_id: str = Field(description="the key-encryption key it is wrapped under")
    created_at: datetime
    destroyed: bool
    rewrapped_at: datetime | None = None
    destroyed_at: datetime | None = None


class DataKeyRotated(_Out):
    tenant_id: str
    version: int = Field(description="the new current version")


class TenantErased(_Out):
    """Crypto-shredding done: the tenant's data keys destroyed, its keys and users stopped."""

    tenant_id: str
    erased: bool
    reason: str
    data_keys_destroyed: int
    sessions_revoked: int
    users_disabled: int


class KeysRewrapped(_Out):
    rewrapped: int = Field(description="how many data keys were re-wrapped under the current KEK")


# --- CloudEvents (cloudevents.py) ------------------------------------------------------------


class CloudEventOut(_Out):
    """A CloudEvent taken: 202 `waiting for the matching request` (or `response`) until its
    mate arrives; then `joined`, with the batch answer of the events it made (accepted,
    rejected, event_ids; 409, 413 or 422 when every one was refused, as /v1/events/predictions)."""

    status: str = Field(description="waiting for the matching request/response, or joined")
    ce_id: str
    pair_id: str = Field(description="pairs a request and its response (ce-requestid or ce-id)")
    accepted: int | None = None
    rejected: list[Rejection] | None = None
    event_ids: list[str] | None = None
