"""`/v1/reports` and `/v1/report-schedules`: the `audit` permission (auditors and admins) of
the caller's tenant, or the platform admin (X-Admin-Token, with `tenant_id`), who can still
fetch an erased tenant's erasure certificate. Every generation and download is audited and
announced on `driftline.reports.v1`."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from driftline_core.auditchain import public_key_pem
from driftline_core.auth import Authenticator, Principal, declared_admin_token, declared_credentials
from driftline_core.auth.permissions import PERMISSIONS
from driftline_core.errors import NotFoundError
from driftline_core.reportsign import bundle, key_fingerprint

from .model import Report
from .responses import ReportOut, ReportPage, Schedule, SigningKey
from .store import ReportStore

__all__ = ["ReportIn", "ScheduleIn", "router"]

Format = Literal["json", "html", "pdf"]
ALL_FORMATS: tuple[Format, ...] = ("json", "html", "pdf")
FrameworkName = Literal["gdpr", "sox", "fda", "model_card"]
Announce = Callable[[Principal, dict[str, Any], str], Awaitable[None]]


class ReportIn(BaseModel):
    framework: FrameworkName
    period_start: AwareDatetime
    period_end: AwareDatetime
    model_id: str | None = Field(default=None, max_length=128)
    formats: list[Format] = Field(default_factory=lambda: list(ALL_FORMATS), min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ReportIn:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        if self.framework == "model_card" and not self.model_id:
            raise ValueError("a model_card report needs model_id")
        self.formats = sorted(set(self.formats))
        return self


class ScheduleIn(BaseModel):
    framework: FrameworkName
    cadence: Literal["daily", "weekly", "monthly"]
    model_id: str | None = Field(default=None, max_length=128)
    formats: list[Format] = Field(default_factory=lambda: list(ALL_FORMATS), min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ScheduleIn:
        if self.framework == "model_card" and not self.model_id:
            raise ValueError("a model_card schedule needs model_id")
        self.formats = sorted(set(self.formats))
        return self


def _404(e: NotFoundError) -> HTTPException:
    return HTTPException(404, str(e))


def router(
    auth: Authenticator,
    store: ReportStore,
    announce: Announce,
    *,
    admin_token: str,
    public_key: Any,
    key_id: str,
    max_period_days: int,
    max_page: int,
) -> APIRouter:
    r = APIRouter(tags=["reports"])
    member = auth.require("audit")

    async def caller(
        request: Request,
        _k: None = Depends(declared_credentials),
        _a: None = Depends(declared_admin_token),
    ) -> Principal:
        token = request.headers.get("x-admin-token")
        if token is None:
            return await member(request)
        if not hmac.compare_digest(token.encode(), admin_token.encode()):
            raise HTTPException(401, "the platform admin token is not valid")
        tenant = request.query_params.get("tenant_id")
        if not tenant:
            raise HTTPException(422, "as the platform admin, name the tenant: ?tenant_id=...")
        return Principal(
            tenant_id=tenant,
            key_id="platform-admin",
            name="platform-admin",
            scopes=frozenset(PERMISSIONS),
        )

    who_dep = Depends(caller)

    @r.post(
        "/v1/reports", status_code=202, response_model=ReportOut, response_model_exclude_unset=True
    )
    async def create(body: ReportIn, response: Response, who: Principal = who_dep) -> Any:
        if body.period_end - body.period_start > timedelta(days=max_period_days):
            raise HTTPException(422, f"a report covers at most {max_period_days} days")
        if body.period_start > datetime.now(UTC):
            raise HTTPException(422, "the period starts in the future")
        job = await store.create(
            tenant_id=who.tenant_id,
            framework=body.framework,
            start=body.period_start,
            end=body.period_end,
            model_id=body.model_id,
            formats=list(body.formats),
            requested_by=who.actor_id,
        )
        assert job is not None
        await announce(who, job, "requested")
        response.headers["Location"] = f"/v1/reports/{job['id']}"
        return job

    @r.get("/v1/reports", response_model=ReportPage, response_model_exclude_unset=True)
    async def list_reports(
        limit: int = Query(default=50, ge=1),
        before: datetime | None = None,
        who: Principal = who_dep,
    ) -> dict[str, Any]:
        items = await store.recent(who.tenant_id, min(limit, max_page), before)
        nxt = items[-1]["created_at"].isoformat() if len(items) == min(limit, max_page) else None
        return {"items": items, "next_before": nxt}

    @r.get("/v1/reports/public-key", response_model=SigningKey)
    async def signing_key(who: Principal = who_dep) -> dict[str, Any]:
        return {
            "key_id": key_id,
            "public_key": public_key_pem(public_key),
            "fingerprint": key_fingerprint(public_key),
        }

    @r.get("/v1/reports/{report_id}", response_model=ReportOut, response_model_exclude_unset=True)
    async def get(report_id: str, who: Principal = who_dep) -> dict[str, Any]:
        try:
            out = await store.get(who.tenant_id, report_id)
        except NotFoundError as e:
            raise _404(e) from e
        base = f"/v1/reports/{out['id']}"
        out["downloads"] = {f["name"]: f"{base}/files/{f['name']}" for f in out["files"]}
        if out["status"] == "done":
            out["downloads"]["bundle"] = f"{base}/bundle"
        return out

    @r.get(
        "/v1/reports/{report_id}/files/{name}",
        response_class=Response,
        responses={
            200: {
                "model": Report,  # report.json: the report document (its published schema)
                "description": "the file as generated: JSON, HTML or PDF",
                "content": {
                    t: {"schema": {"type": "string", "format": "binary"}}
                    for t in ("text/html", "application/pdf")
                },
            }
        },
    )
    async def download(report_id: str, name: str, who: Principal = who_dep) -> Response:
        try:
            media, data = await store.file(who.tenant_id, report_id, name)
            job = await store.get(who.tenant_id, report_id)
        except NotFoundError as e:
            raise _404(e) from e
        await announce(who, job, "downloaded")
        return Response(
            data,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{report_id}-{name}"'},
        )

    @r.get(
        "/v1/reports/{report_id}/bundle",
        response_class=Response,
        responses={
            200: {
                "description": "every file and the signed manifest, zipped",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def download_bundle(report_id: str, who: Principal = who_dep) -> Response:
        try:
            job = await store.get(who.tenant_id, report_id)
            if job["status"] != "done":
                raise HTTPException(409, f"report {report_id} is {job['status']} ({job['stage']})")
            files = {
                f["name"]: (await store.file(who.tenant_id, report_id, f["name"]))[1]
                for f in job["files"]
            }
        except NotFoundError as e:
            raise _404(e) from e
        await announce(who, job, "downloaded")
        return Response(
            bundle(job["manifest"], files),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="report-{report_id}.zip"'},
        )

    @r.post("/v1/report-schedules", status_code=201, response_model=Schedule)
    async def add_schedule(body: ScheduleIn, who: Principal = who_dep) -> dict[str, Any]:
        out = await store.add_schedule(
            tenant_id=who.tenant_id,
            framework=body.framework,
            cadence=body.cadence,
            formats=list(body.formats),
            model_id=body.model_id,
            created_by=who.actor_id,
        )
        await announce(who, {"schedule": out}, "schedule.create")
        return out

    @r.get("/v1/report-schedules", response_model=list[Schedule])
    async def list_schedules(who: Principal = who_dep) -> list[dict[str, Any]]:
        return await store.schedules(who.tenant_id)

    @r.delete("/v1/report-schedules/{schedule_id}", status_code=204)
    async def delete_schedule(schedule_id: str, who: Principal = who_dep) -> Response:
        try:
            await store.delete_schedule(who.tenant_id, schedule_id)
        except NotFoundError as e:
            raise _404(e) from e
        await announce(who, {"schedule": {"id": schedule_id}}, "schedule.delete")
        return Response(status_code=204)

    return r
