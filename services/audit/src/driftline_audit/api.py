"""`/v1/audit/*` for auditors (the `audit` permission): query with cursor pagination, verify
a range, export as JSON lines with the checkpoints and the public key. Every access is itself
recorded on `driftline.audit.v1`."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from driftline_core.audit import AuditEmitter
from driftline_core.auditchain import public_key_pem
from driftline_core.auth import Authenticator, Principal
from driftline_core.events import Resource

from .trail import Trail

if TYPE_CHECKING:
    from .lifecycle import Lifecycle

__all__ = ["router"]

EXPORT_FORMAT = "driftline-audit-export/1"
INT64_MAX = 2**63 - 1  # sequence numbers are PostgreSQL bigints: larger ones are a 422


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "seq":
            raise ValueError(kind)
        seq = int(value)
        if not 0 <= seq <= INT64_MAX:
            raise ValueError(value)
        return seq
    except ValueError as e:
        raise HTTPException(400, "the cursor is not valid (use next_cursor as given)") from e


# --- what the routes answer (extra members allowed: nothing is dropped by the model; the
# routes answer with response_model_exclude_unset, so a member left out is not added) ------

# text as stored and hashed (ISO 8601 UTC), kept as is
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class AuditRecord(_Out):
    """One entry of the trail: the hashed fields and the hash; `record` is the source
    record (decrypted), or why it cannot be read, unless `decrypt=false`."""

    tenant_id: str
    seq: int
    source_id: str
    source_topic: str
    service: str
    occurred_at: Timestamp
    actor: str
    action: str
    resource_type: str
    resource_id: str
    outcome: str
    key_version: int | None
    prev_hash: str
    hash: str
    record: dict[str, Any] | str | None = None


class AuditRecordPage(_Out):
    items: list[AuditRecord]
    next_cursor: str | None = Field(description="the next page's cursor (null: the last page)")


class ChainBreak(_Out):
    tenant_id: str
    seq: int
    reason: str


class ChainHead(_Out):
    seq: int
    hash: str


class VerifiedRange(_Out):
    from_seq: int
    to_seq: int | None


class Verification(_Out):
    """The verdict over the range: `first_break` names the first broken record and why
    (when the record before the range is absent, only ok, records, first_break, range)."""

    ok: bool
    records: int
    checkpoints: int | None = None
    first_break: ChainBreak | None
    heads: dict[str, ChainHead] | None = None
    signed_through: dict[str, int] | None = None
    range: VerifiedRange


class Checkpoint(_Out):
    tenant_id: str
    seq: int
    hash: str
    created_at: Timestamp
    key_id: str
    signature: str = Field(description="Ed25519 over the checkpoint, base64")


class RetentionSet(_Out):
    tenant_id: str
    retention_days: int


class Archive(_Out):
    tenant_id: str
    first_seq: int
    last_seq: int
    last_hash: str
    records: int
    file: str
    sha256: str
    created_by: str
    created_at: datetime


class Retention(_Out):
    retention_days: int | None = Field(description="null: no retention period is set")
    archived_through_seq: int
    archives: list[Archive]


class HoldPlaced(_Out):
    id: str
    reason: str
    created_by: str


class Hold(HoldPlaced):
    tenant_id: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None
    active: bool


class LifecycleRun(_Out):
    """What retention allows now (`action`), and with `dry_run=false` what was done."""

    action: Literal["none", "archive_and_delete"]
    dry_run: bool
    reason: str | None = Field(default=None, description="why nothing is to be done")
    retention_days: int | None = None
    cutoff: Timestamp | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    records: int | None = None
    file: str | None = Field(default=None, description="the archive written")
    sha256: str | None = None
    deleted: int | None = None


class RetentionIn(BaseModel):
    retention_days: int = Field(ge=1, le=36_500)


class HoldIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


def router(
    auth: Authenticator, trail: Trail, lifecycle: Lifecycle, audit: AuditEmitter, max_page: int
) -> APIRouter:
    r = APIRouter(prefix="/v1/audit", tags=["audit"])
    auditor = Depends(auth.require("audit"))
    admin = Depends(auth.require("admin"))

    async def accessed(who: Principal, what: str, **details: Any) -> None:
        await audit.record(
            tenant_id=who.tenant_id,
            actor=who.actor(),
            action=what,
            resource=Resource(type="audit_trail", id=who.tenant_id),
            details={k: v for k, v in details.items() if v is not None},
        )

    @r.get("/records", response_model=AuditRecordPage, response_model_exclude_unset=True)
    async def records(
        start: datetime | None = None,
        end: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        limit: int = Query(default=100, ge=1),
        cursor: str | None = None,
        decrypt: bool = True,
        who: Principal = auditor,
    ) -> dict[str, Any]:
        limit = min(limit, max_page)
        after = _after(cursor)
        rows = await trail.query(
            who.tenant_id,
            after=after,
            start=start,
            end=end,
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        items = []
        for e in rows:
            item = {k: v for k, v in e.items() if k != "payload"}
            if decrypt:
                item["record"] = await trail.decrypt(e)
            items.append(item)
        await accessed(
            who,
            "audit.query",
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            returned=len(items),
        )
        return {"items": items, "next_cursor": _cursor(rows[-1]["seq"]) if more else None}

    @r.get("/verify", response_model=Verification, response_model_exclude_unset=True)
    async def verify_range(
        from_seq: int = Query(default=1, ge=1, le=INT64_MAX),
        to_seq: int | None = Query(default=None, ge=1, le=INT64_MAX),
        authenticate: bool = Query(
            default=True, description="also check each payload decrypts (needs the keys)"
        ),
        who: Principal = auditor,
    ) -> dict[str, Any]:
        out = await trail.verify_range(who.tenant_id, from_seq, to_seq, authenticate)
        await accessed(
            who,
            "audit.verify",
            from_seq=out["range"]["from_seq"],
            to_seq=to_seq,
            ok=out["ok"],
            first_break=out["first_break"],
        )
        return out

    @r.get("/checkpoints", response_model=list[Checkpoint], response_model_exclude_unset=True)
    async def checkpoints(who: Principal = auditor) -> list[dict[str, Any]]:
        await accessed(who, "audit.checkpoints")
        return await trail.checkpoints(who.tenant_id)

    @r.get(
        "/export",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "the trail as JSON lines: a header, the records, the checkpoints "
                "(`driftline audit verify FILE` checks it offline)",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            }
        },
    )
    async def export(
        request: Request,
        from_seq: int = Query(default=1, ge=1, le=INT64_MAX),
        to_seq: int | None = Query(default=None, ge=1, le=INT64_MAX),
        who: Principal = auditor,
    ) -> StreamingResponse:
        tenant = who.tenant_id
        from_seq = max(from_seq, await trail.archived_through(tenant) + 1)
        prev = await trail.hash_at(tenant, from_seq - 1)
        header = {
            "type": "header",
            "format": EXPORT_FORMAT,
            "tenant_id": tenant,
            "from_seq": from_seq,
            "to_seq": to_seq,
            "start": {"seq": from_seq - 1, "hash": prev},
            "checkpoint_key": {"id": trail.key_id, "public_key": public_key_pem(trail.public_key)},
            "verify": "driftline audit verify FILE",
        }
        await accessed(who, "audit.export", from_seq=from_seq, to_seq=to_seq)

        async def lines() -> AsyncIterator[bytes]:
            yield orjson.dumps(header) + b"\n"
            seq = from_seq
            while True:
                page = await trail.entries(tenant, seq, to_seq, limit=5000)
                for e in page:
                    yield orjson.dumps({"type": "record", **e}) + b"\n"
                if len(page) < 5000:
                    break
                seq = page[-1]["seq"] + 1
            for c in await trail.checkpoints(tenant, from_seq, to_seq):
                yield orjson.dumps({"type": "checkpoint", **c}) + b"\n"

        name = f"audit-{tenant}-{from_seq}-{to_seq or 'head'}.jsonl"
        return StreamingResponse(
            lines(),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # --- retention, legal holds, archival ---------------------------------------------

    @r.put("/retention", response_model=RetentionSet, response_model_exclude_unset=True)
    async def set_retention(body: RetentionIn, who: Principal = admin) -> dict[str, Any]:
        out = await lifecycle.set_policy(who.tenant_id, body.retention_days, who.actor_id)
        await accessed(who, "audit.retention_set", retention_days=body.retention_days)
        return out

    @r.get("/retention", response_model=Retention, response_model_exclude_unset=True)
    async def get_retention(who: Principal = auditor) -> dict[str, Any]:
        return {
            "retention_days": await lifecycle.policy(who.tenant_id),
            "archived_through_seq": await trail.archived_through(who.tenant_id),
            "archives": await lifecycle.archives(who.tenant_id),
        }

    @r.post("/holds", status_code=201, response_model=HoldPlaced, response_model_exclude_unset=True)
    async def add_hold(body: HoldIn, who: Principal = admin) -> dict[str, Any]:
        out = await lifecycle.hold(who.tenant_id, body.reason, who.actor_id)
        await accessed(who, "audit.hold_placed", hold_id=out["id"], reason=body.reason)
        return out

    @r.get("/holds", response_model=list[Hold], response_model_exclude_unset=True)
    async def list_holds(who: Principal = auditor) -> list[dict[str, Any]]:
        return await lifecycle.holds(who.tenant_id)

    @r.delete("/holds/{hold_id}", status_code=204)
    async def release_hold(hold_id: str, who: Principal = admin) -> Response:
        if not await lifecycle.release(who.tenant_id, hold_id, who.actor_id):
            raise HTTPException(404, f"no active hold {hold_id!r}")
        await accessed(who, "audit.hold_released", hold_id=hold_id)
        return Response(status_code=204)

    @r.post("/lifecycle", response_model=LifecycleRun, response_model_exclude_unset=True)
    async def run_lifecycle(dry_run: bool = True, who: Principal = admin) -> dict[str, Any]:
        """Archive and delete what retention allows; `dry_run=true` (the default) only says
        what would happen."""
        out = await lifecycle.run(who.tenant_id, who.actor_id, dry_run)
        await accessed(who, "audit.lifecycle", **{k: v for k, v in out.items() if k != "file"})
        return out

    return r
