"""Reports, their files and their schedules in PostgreSQL. A report is a job: queued, then
running (claimed by one worker, with a heartbeat, re-claimed when the heartbeat is stale),
then done or failed. Files are encrypted under the tenant's data key; an erased tenant's
erasure certificate, which can no longer be encrypted, is kept in clear."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from driftline_core.crypto import FieldCipher, KeyDestroyedError
from driftline_core.db.pool import HasPool
from driftline_core.errors import NotFoundError

from .render import MEDIA_TYPES

__all__ = ["ReportStore", "next_period"]

_CLEAR = "clear:"


def _media(name: str) -> str:
    return MEDIA_TYPES[name.rsplit(".", 1)[-1]]


def next_period(cadence: str, after: datetime) -> tuple[datetime, datetime]:
    """The calendar period (UTC) that starts at or after `after`: a day, an ISO week from
    Monday, or a month."""
    t = after.astimezone(UTC)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if cadence == "daily":
        start = day if day >= t else day + timedelta(days=1)
        return start, start + timedelta(days=1)
    if cadence == "weekly":
        monday = day - timedelta(days=day.weekday())
        start = monday if monday >= t else monday + timedelta(days=7)
        return start, start + timedelta(days=7)
    first = day.replace(day=1)
    start = first if first >= t else _add_month(first)
    return start, _add_month(start)


def _add_month(d: datetime) -> datetime:
    return d.replace(year=d.year + d.month // 12, month=d.month % 12 + 1)


def _report(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["id"] = str(d["id"])
    if d.get("schedule_id") is not None:
        d["schedule_id"] = str(d["schedule_id"])
    if isinstance(d.get("manifest"), str):
        d["manifest"] = orjson.loads(d["manifest"])
    d.pop("heartbeat_at", None)
    return d


class ReportStore:
    def __init__(self, db: HasPool, cipher: FieldCipher) -> None:
        self._db = db
        self._cipher = cipher

    # --- reports --------------------------------------------------------------------------

    async def create(
        self,
        *,
        tenant_id: str,
        framework: str,
        start: datetime,
        end: datetime,
        model_id: str | None,
        formats: list[str],
        requested_by: str,
        schedule_id: uuid.UUID | None = None,
    ) -> dict[str, Any] | None:
        """A queued report; None when the schedule already made this period's."""
        row = await self._db.pool.fetchrow(
            "INSERT INTO reports (id, tenant_id, framework, period_start, period_end, model_id,"
            " formats, requested_by, schedule_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
            "ON CONFLICT (schedule_id, period_start) DO NOTHING RETURNING *",
            uuid.uuid4(),
            tenant_id,
            framework,
            start,
            end,
            model_id,
            formats,
            requested_by,
            schedule_id,
        )
        return _report(row) if row else None

    async def get(self, tenant_id: str, report_id: str) -> dict[str, Any]:
        try:
            rid = uuid.UUID(report_id)
        except ValueError as e:
            raise NotFoundError(f"report {report_id!r} not found") from e
        row = await self._db.pool.fetchrow(
            "SELECT * FROM reports WHERE tenant_id = $1 AND id = $2", tenant_id, rid
        )
        if row is None:
            raise NotFoundError(f"report {report_id!r} not found")
        out = _report(row)
        files = await self._db.pool.fetch(
            "SELECT name, media_type, bytes, sha256 FROM report_files WHERE report_id = $1 "
            "ORDER BY name",
            rid,
        )
        out["files"] = [dict(f) for f in files]
        return out

    async def recent(
        self, tenant_id: str, limit: int, before: datetime | None = None
    ) -> list[dict[str, Any]]:
        rows = await self._db.pool.fetch(
            "SELECT * FROM reports WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR "
            "created_at < $2) ORDER BY created_at DESC LIMIT $3",
            tenant_id,
            before,
            limit,
        )
        return [_report(r) for r in rows]

    async def claim(self, stale_after_s: float) -> dict[str, Any] | None:
        """Take the oldest queued report, or one whose worker stopped beating."""
        row = await self._db.pool.fetchrow(
            "UPDATE reports SET status = 'running', attempts = attempts + 1, heartbeat_at = "
            "now(), stage = 'started' WHERE id = (SELECT id FROM reports WHERE status = 'queued'"
            " OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => $1)) "
            "ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *",
            stale_after_s,
        )
        return _report(row) if row else None

    async def requeue_running(self) -> list[str]:
        """Queue again every report marked running: called by a replica that has just become
        the generator's leader (decision 45), when no other replica can be generating, so a
        report whose leader was killed or lost its session mid-way is taken over at once
        instead of when its heartbeat is `stale_after_s` old. Its attempts stay counted."""
        rows = await self._db.pool.fetch(
            "UPDATE reports SET status = 'queued', stage = 'queued again: its generator stopped'"
            " WHERE status = 'running' RETURNING id"
        )
        return [str(r["id"]) for r in rows]

    async def progress(self, report_id: str, stage: str, progress: float) -> None:
        await self._db.pool.execute(
            "UPDATE reports SET stage = $2, progress = $3, heartbeat_at = now() WHERE id = $1",
            uuid.UUID(report_id),
            stage,
            progress,
        )

    async def finish(
        self, report: Mapping[str, Any], manifest: dict[str, Any], files: Mapping[str, bytes]
    ) -> None:
        rid = uuid.UUID(report["id"])
        rows = []
        for name, data in files.items():
            digest = next(f["sha256"] for f in manifest["files"] if f["name"] == name)
            rows.append(
                (rid, name, _media(name), len(data), digest, await self._seal(report, name, data))
            )
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM report_files WHERE report_id = $1", rid)
            await conn.executemany(
                "INSERT INTO report_files (report_id, name, media_type, bytes, sha256, content)"
                " VALUES ($1,$2,$3,$4,$5,$6)",
                rows,
            )
            await conn.execute(
                "UPDATE reports SET status = 'done', stage = 'done', progress = 1, error = NULL,"
                " manifest = $2, finished_at = now() WHERE id = $1",
                rid,
                orjson.dumps(manifest).decode(),
            )

    async def fail(self, report_id: str, error: str) -> None:
        await self._db.pool.execute(
            "UPDATE reports SET status = 'failed', stage = 'failed', error = $2, "
            "finished_at = now() WHERE id = $1",
            uuid.UUID(report_id),
            error[:2000],
        )

    async def _seal(self, report: Mapping[str, Any], name: str, data: bytes) -> str:
        try:
            return await self._cipher.encrypt(
                report["tenant_id"], "report", f"{report['id']}/{name}", data
            )
        except KeyDestroyedError:
            return _CLEAR + base64.b64encode(data).decode()

    async def file(self, tenant_id: str, report_id: str, name: str) -> tuple[str, bytes]:
        report = await self.get(tenant_id, report_id)
        row = await self._db.pool.fetchrow(
            "SELECT media_type, content FROM report_files WHERE report_id = $1 AND name = $2",
            uuid.UUID(report["id"]),
            name,
        )
        if row is None:
            names = ", ".join(f["name"] for f in report["files"]) or "none yet"
            raise NotFoundError(f"report {report_id} has no file {name!r} (it has: {names})")
        content: str = row["content"]
        if content.startswith(_CLEAR):
            return row["media_type"], base64.b64decode(content[len(_CLEAR) :])
        data = await self._cipher.decrypt(tenant_id, "report", f"{report['id']}/{name}", content)
        return row["media_type"], data

    # --- schedules ------------------------------------------------------------------------

    async def add_schedule(
        self,
        *,
        tenant_id: str,
        framework: str,
        cadence: str,
        formats: list[str],
        model_id: str | None,
        created_by: str,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        first, _ = next_period(cadence, now or datetime.now(UTC))
        row = await self._db.pool.fetchrow(
            "INSERT INTO schedules (id, tenant_id, framework, cadence, formats, model_id, "
            "next_run_at, created_by) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING *",
            uuid.uuid4(),
            tenant_id,
            framework,
            cadence,
            formats,
            model_id,
            first,
            created_by,
        )
        return _schedule(row)

    async def schedules(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self._db.pool.fetch(
            "SELECT * FROM schedules WHERE tenant_id = $1 AND deleted_at IS NULL "
            "ORDER BY created_at",
            tenant_id,
        )
        return [_schedule(r) for r in rows]

    async def delete_schedule(self, tenant_id: str, schedule_id: str) -> None:
        try:
            sid = uuid.UUID(schedule_id)
        except ValueError as e:
            raise NotFoundError(f"schedule {schedule_id!r} not found") from e
        done = await self._db.pool.execute(
            "UPDATE schedules SET deleted_at = now() WHERE tenant_id = $1 AND id = $2 AND "
            "deleted_at IS NULL",
            tenant_id,
            sid,
        )
        if done.endswith(" 0"):
            raise NotFoundError(f"schedule {schedule_id!r} not found")

    async def due(self, now: datetime) -> list[dict[str, Any]]:
        """Schedules whose period ended; each is moved to its next period as it is taken."""
        out = []
        async with self._db.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT * FROM schedules WHERE deleted_at IS NULL AND next_run_at <= $1 "
                "FOR UPDATE SKIP LOCKED",
                now,
            )
            for r in rows:
                # next_run_at is the start of the period to report on once it has ended
                start, end = next_period(r["cadence"], r["next_run_at"])
                if end > now:
                    continue
                await conn.execute(
                    "UPDATE schedules SET next_run_at = $2 WHERE id = $1", r["id"], end
                )
                out.append({**_schedule(r), "period_start": start, "period_end": end})
        return out


def _schedule(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["id"] = str(d["id"])
    d.pop("deleted_at", None)
    return d
