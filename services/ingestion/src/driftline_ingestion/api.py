"""HTTP API of the ingestion service: `/v1/events/*`, `/v1/models/*`, `/v1/auth/*`."""

from __future__ import annotations

import hmac
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, ValidationError, model_validator

from driftline_core.audit import AuditEmitter
from driftline_core.auth import ApiKeys, Authenticator, Principal
from driftline_core.events import Actor, Resource
from driftline_core.events.features import FeatureSchema, MonitoringConfig
from driftline_core.events.registry import ClassContract, ValidationEvidence
from driftline_core.openapi import PROBLEM_TOO, raw_body
from driftline_core.settings import KafkaSettings

from .http import parse_items, read_body
from .intake import Intake
from .profiles import detect_format, learn_classes, profile_file, profile_served_events, spool
from .ratelimit import RateLimiter, enforce
from .registry import Registry, check_model, learnt_contract, with_positive_from_monitoring
from .responses import (
    ApiKeyCreated,
    ApiKeyInfo,
    IntakeOut,
    ModelOut,
    ProfileOut,
    ProfileSaved,
    TenantCreated,
    VersionOut,
)
from .settings import IngestionOptions
from .strings import may_hold_control, refuse_unstorable_request
from .validation import ActualIn, PredictionIn

__all__ = ["auth_router", "events_router", "models_router"]


def events_router(
    auth: Authenticator, intake: Intake, limiter: RateLimiter, opts: IngestionOptions
) -> APIRouter:
    r = APIRouter(
        prefix="/v1/events", tags=["events"], dependencies=[Depends(refuse_unstorable_request)]
    )
    ingest = Depends(auth.require("ingest"))

    async def take(request: Request, who: Principal) -> tuple[list[Any], bool]:
        """The events of the body, and whether it may hold a control character to check for."""
        body = await read_body(request, opts.max_body_bytes)
        items = parse_items(
            body,
            request.headers.get("content-type", ""),
            opts.max_events_per_request,
            opts.size_limits(),
        )
        await enforce(limiter, who.key_id, len(items))
        return items, may_hold_control(body)

    intake_answers: dict[int | str, dict[str, Any]] = {
        code: {"model": IntakeOut, "description": why, "content": PROBLEM_TOO}
        for code, why in [
            (202, "accepted (some events may be rejected, each with its reason)"),
            (409, "every event was a duplicate event id"),
            (413, "every event was too large"),
            (422, "every event was rejected, each with its reason"),
        ]
    }

    @r.post(
        "/predictions",
        status_code=202,
        responses=intake_answers,
        openapi_extra=raw_body(json=PredictionIn, json_array=True, ndjson=PredictionIn),
    )
    async def predictions(request: Request, who: Principal = ingest) -> JSONResponse:
        items, scan = await take(request, who)
        result = await intake.predictions(who, items, scan=scan)
        return JSONResponse(result.body(), result.status_code)

    @r.post(
        "/actuals",
        status_code=202,
        responses=intake_answers,
        openapi_extra=raw_body(json=ActualIn, json_array=True, ndjson=ActualIn),
    )
    async def actuals(request: Request, who: Principal = ingest) -> JSONResponse:
        items, scan = await take(request, who)
        result = await intake.actuals(who, items, scan=scan)
        return JSONResponse(result.body(), result.status_code)

    return r


class TenantIn(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    admin_key_name: str = Field(default="admin", min_length=1, max_length=100)


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Literal["ingest", "read", "write", "audit", "admin"]] = Field(min_length=1)


def auth_router(
    auth: Authenticator, keys: ApiKeys, audit: AuditEmitter, opts: IngestionOptions
) -> APIRouter:
    r = APIRouter(
        prefix="/v1/auth",
        tags=["auth"],
        dependencies=[Depends(refuse_unstorable_request)],
    )
    admin = Depends(auth.require("admin"))

    @r.post("/tenants", status_code=201, response_model=TenantCreated)
    async def create_tenant(
        body: TenantIn, request: Request, x_admin_token: str = Header(default="")
    ) -> dict[str, Any]:
        expected = opts.admin_token.get_secret_value()
        if not hmac.compare_digest(x_admin_token.encode(), expected.encode()):
            raise HTTPException(401, "the platform admin token (X-Admin-Token) is required")
        if not await keys.create_tenant(body.id, body.name):
            raise HTTPException(409, f"tenant {body.id!r} already exists")
        key_id, key = await keys.create(body.id, body.admin_key_name, {"admin"}, "platform")
        await audit.record(
            tenant_id=body.id,
            actor=Actor(type="system", id="platform-admin"),
            action="tenant.create",
            resource=Resource(type="tenant", id=body.id),
            details={"admin_key_id": key_id},
        )
        return {"tenant_id": body.id, "key_id": key_id, "api_key": key}

    @r.post("/keys", status_code=201, response_model=ApiKeyCreated)
    async def create_key(body: KeyIn, who: Principal = admin) -> dict[str, Any]:
        key_id, key = await keys.create(who.tenant_id, body.name, set(body.scopes), who.actor_id)
        await audit.record(
            tenant_id=who.tenant_id,
            actor=who.actor(),
            action="api_key.create",
            resource=Resource(type="api_key", id=key_id),
            details={"name": body.name, "scopes": sorted(body.scopes)},
        )
        return {"key_id": key_id, "api_key": key, "name": body.name, "scopes": body.scopes}

    @r.get("/keys", response_model=list[ApiKeyInfo])
    async def list_keys(who: Principal = admin) -> list[dict[str, Any]]:
        return await keys.list(who.tenant_id)

    @r.delete("/keys/{key_id}", status_code=204)
    async def revoke_key(key_id: str, who: Principal = admin) -> Response:
        if not await keys.revoke(who.tenant_id, key_id):
            raise HTTPException(404, f"no active API key {key_id!r}")
        await audit.record(
            tenant_id=who.tenant_id,
            actor=who.actor(),
            action="api_key.revoke",
            resource=Resource(type="api_key", id=key_id),
        )
        return Response(status_code=204)

    return r


class ModelIn(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    name: str = Field(min_length=1, max_length=200)
    task: Literal["classification", "regression"]
    description: str = ""
    feature_schema: FeatureSchema
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    classes: ClassContract | None = Field(
        default=None,
        description="a classifier's classes, positive class (binary) and spelling map; "
        "else learnt from the reference's label column",
    )

    @model_validator(mode="before")
    @classmethod
    def _positive_from_monitoring(cls, data: Any) -> Any:
        return with_positive_from_monitoring(data)

    @model_validator(mode="after")
    def _runnable(self) -> ModelIn:
        problems = check_model(self.task, self.feature_schema, self.monitoring, self.classes)
        if problems:
            raise ValueError("; ".join(f"{field}: {msg}" for field, msg in problems))
        return self


class VersionIn(BaseModel):
    version: str = Field(min_length=1, max_length=64)
    artifact_uri: str = Field(min_length=1, max_length=2000)
    artifact_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="free-form; `validation` (dataset, metrics, gates) is checked and quoted "
        "by compliance reports",
    )

    @model_validator(mode="after")
    def _validation(self) -> VersionIn:
        if "validation" in self.metadata:
            try:
                ValidationEvidence.model_validate(self.metadata["validation"])
            except ValidationError as e:
                raise ValueError(f"metadata.validation: {e.errors()[0]['msg']}") from e
        return self


class ApprovalIn(BaseModel):
    comment: str = Field(default="", max_length=2000)


class StageIn(BaseModel):
    stage: Literal["staging", "production", "archived"]


class ServedRangeIn(BaseModel):
    start: AwareDatetime
    end: AwareDatetime
    limit: int = Field(default=1_000_000, ge=1, le=50_000_000)


def models_router(
    auth: Authenticator, registry: Registry, kafka: KafkaSettings, max_reference_bytes: int
) -> APIRouter:
    r = APIRouter(
        prefix="/v1/models",
        tags=["models"],
        dependencies=[Depends(refuse_unstorable_request)],
    )
    read, admin = Depends(auth.require("read")), Depends(auth.require("write"))

    @r.post("", status_code=201, response_model=ModelOut)
    async def create(body: ModelIn, who: Principal = admin) -> dict[str, Any]:
        return await registry.create_model(
            who,
            body.id,
            body.name,
            body.task,
            body.description,
            body.feature_schema,
            body.monitoring,
            body.classes,
        )

    @r.get("", response_model=list[ModelOut])
    async def list_models(who: Principal = read) -> list[dict[str, Any]]:
        return await registry.list_models(who.tenant_id)

    @r.get("/{model_id}", response_model=ModelOut)
    async def get(model_id: str, who: Principal = read) -> dict[str, Any]:
        return await registry.get_model(who.tenant_id, model_id)

    @r.put("/{model_id}/schema", response_model=ModelOut)
    async def put_schema(
        model_id: str, body: FeatureSchema, who: Principal = admin
    ) -> dict[str, Any]:
        return await registry.update_model(who, model_id, schema=body)

    @r.put("/{model_id}/monitoring", response_model=ModelOut)
    async def put_monitoring(
        model_id: str, body: MonitoringConfig, who: Principal = admin
    ) -> dict[str, Any]:
        return await registry.update_model(who, model_id, monitoring=body)

    @r.put("/{model_id}/classes", response_model=ModelOut)
    async def put_classes(
        model_id: str, body: ClassContract, who: Principal = admin
    ) -> dict[str, Any]:
        return await registry.update_model(who, model_id, classes=body)

    @r.delete("/{model_id}", status_code=204)
    async def delete(model_id: str, who: Principal = admin) -> Response:
        await registry.delete_model(who, model_id)
        return Response(status_code=204)

    @r.post("/{model_id}/versions", status_code=201, response_model=VersionOut)
    async def add_version(model_id: str, body: VersionIn, who: Principal = admin) -> dict[str, Any]:
        return await registry.add_version(
            who, model_id, body.version, body.artifact_uri, body.artifact_sha256, body.metadata
        )

    @r.get("/{model_id}/versions", response_model=list[VersionOut])
    async def versions(model_id: str, who: Principal = read) -> list[dict[str, Any]]:
        return await registry.list_versions(who.tenant_id, model_id)

    @r.post("/{model_id}/versions/{version}/approve", response_model=VersionOut)
    async def approve(
        model_id: str, version: str, body: ApprovalIn, who: Principal = admin
    ) -> dict[str, Any]:
        return await registry.approve_version(who, model_id, version, body.comment)

    @r.post("/{model_id}/versions/{version}/stage", response_model=VersionOut)
    async def stage(
        model_id: str, version: str, body: StageIn, who: Principal = admin
    ) -> dict[str, Any]:
        return await registry.set_stage(who, model_id, version, body.stage)

    @r.post(
        "/{model_id}/reference",
        status_code=201,
        response_model=ProfileSaved,
        response_model_exclude_unset=True,  # classes_learnt only when classes were learnt
        openapi_extra=raw_body(
            content={
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in ("text/csv", "application/x-ndjson", "application/vnd.apache.parquet")
            },
            description="the reference rows as a file (CSV, NDJSON or Parquet; `filename` or "
            "the content type tells which), streamed",
        ),
    )
    async def upload_reference(
        model_id: str,
        request: Request,
        filename: str | None = Query(default=None),
        prediction_column: str = Query(default="prediction", min_length=1, max_length=128),
        label_column: str = Query(default="label", min_length=1, max_length=128),
        positive_class: str | None = Query(default=None, min_length=1, max_length=200),
        who: Principal = admin,
    ) -> dict[str, Any]:
        model = await registry.get_model(who.tenant_id, model_id)
        fmt = detect_format(request.headers.get("content-type", ""), filename)
        path = await spool(request.stream(), max_reference_bytes)
        try:
            schema = FeatureSchema.model_validate(model["feature_schema"])
            profile = profile_file(path, fmt, schema, model["task"], prediction_column)
            learnt = learnt_contract(
                learn_classes(path, fmt, label_column) if not model["classes"] else None,
                positive_class,
                model,
            )
        finally:
            path.unlink(missing_ok=True)
        return await registry.save_profile(
            who,
            model_id,
            profile,
            {"kind": "upload", "format": fmt, "filename": filename},
            learnt,
        )

    @r.post(
        "/{model_id}/reference/from-events",
        status_code=201,
        response_model=ProfileSaved,
        response_model_exclude_unset=True,
    )
    async def reference_from_events(
        model_id: str, body: ServedRangeIn, who: Principal = admin
    ) -> dict[str, Any]:
        if body.end <= body.start:
            raise HTTPException(422, "end must be after start")
        model = await registry.get_model(who.tenant_id, model_id)
        profile = await profile_served_events(
            kafka,
            who.tenant_id,
            model_id,
            body.start,
            body.end,
            FeatureSchema.model_validate(model["feature_schema"]),
            body.limit,
            model["task"],
        )
        return await registry.save_profile(
            who,
            model_id,
            profile,
            {"kind": "served_events", "start": body.start.isoformat(), "end": body.end.isoformat()},
        )

    @r.get("/{model_id}/reference", response_model=ProfileOut)
    async def get_reference(
        model_id: str, version: int | None = None, who: Principal = read
    ) -> dict[str, Any]:
        return await registry.latest_profile(who.tenant_id, model_id, version)

    return r
