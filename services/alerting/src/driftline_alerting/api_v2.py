"""Alertmanager's API v2 (prometheus/alertmanager api/v2/openapi.yaml) over Driftline's own
state, so that amtool, karma and Grafana's Alertmanager data source work unchanged:
`status`, `receivers`, `alerts` (GET, with `filter`, `active`, `silenced`, `inhibited`,
`unprocessed`, `receiver`), `alerts/groups`, `silences` (GET, POST), `silence/{id}` (GET,
DELETE).

Every call is scoped to the tenant of the caller's credentials: an API key or operator
token as a bearer token (amtool's `authorization` in `--http.config.file`), or an API key as
the password of basic auth (`basic_auth`; the user name is not used). Reads need `read`,
silences need `write`. The silences are the ones `/v1/silences` shows: both faces read and
write the same rows, and both mute Driftline's own notifications."""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request as StarletteRequest

from driftline_core.auth import Authenticator, Principal, declared_credentials
from driftline_core.openapi import raw_body

from .dispatch import GroupAlert
from .responses import (
    AlertGroup,
    AlertmanagerReceiver,
    AlertmanagerStatus,
    GettableAlert,
    GettableSilence,
    SilenceCreated,
)
from .routing import (
    AlertingConfig,
    Matcher,
    Receiver,
    Silence,
    matches,
    parse_matchers,
    render,
    route,
)
from .runtime import AlertingRuntime, nul_path

__all__ = ["router"]

STARTED = datetime.now(UTC)
VERSION = "0.1.0"


def _iso(ts: float | datetime | None) -> str:
    if ts is None:
        return "0001-01-01T00:00:00.000Z"
    d = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _error(status: int, message: str) -> JSONResponse:
    """Alertmanager answers errors with a JSON string."""
    return JSONResponse(message, status_code=status)


class _AMError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class MatcherIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    value: str
    isRegex: bool
    isEqual: bool = True

    def matcher(self) -> Matcher:
        op = ("=~" if self.isEqual else "!~") if self.isRegex else ("=" if self.isEqual else "!=")
        return Matcher(name=self.name, value=self.value, op=op)


class PostableSilence(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    matchers: list[MatcherIn] = Field(min_length=1)
    startsAt: AwareDatetime
    endsAt: AwareDatetime
    createdBy: str = Field(min_length=1, max_length=256)
    comment: str = Field(min_length=1, max_length=1000)


def matcher_json(m: Matcher) -> dict[str, Any]:
    return {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}


def silence_json(s: Silence, now: datetime) -> dict[str, Any]:
    state = "active" if s.active(now) else ("pending" if s.starts_at > now else "expired")
    return {
        "id": s.id,
        "status": {"state": state},
        "updatedAt": _iso(s.updated_at or s.starts_at),
        "matchers": [matcher_json(m) for m in s.matchers],
        "startsAt": _iso(s.starts_at),
        "endsAt": _iso(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
        "annotations": {},
    }


def _filters(values: list[str]) -> list[Matcher]:
    out: list[Matcher] = []
    for v in values:
        try:
            out += parse_matchers(v)
        except ValueError as e:
            raise _AMError(400, f"bad matcher format: {v}: {e}") from e
    return out


def _receiver_re(value: str | None) -> re.Pattern[str] | None:
    if not value:
        return None
    try:
        return re.compile(f"^(?:{value})$")
    except re.error as e:
        raise _AMError(400, f"failed to parse receiver param: {e}") from e


def shown_config(cfg: AlertingConfig) -> AlertingConfig:
    """What Alertmanager tools read: the root route names a receiver, which exists."""
    root = cfg.route.receiver or "default"
    receivers = list(cfg.receivers)
    if cfg.receiver(root) is None:
        receivers.append(Receiver(name=root))
    return cfg.model_copy(
        update={"route": cfg.route.model_copy(update={"receiver": root}), "receivers": receivers}
    )


class View:
    """A tenant's alerts as Alertmanager shows them, computed once per request."""

    def __init__(self, rt: AlertingRuntime, tenant: str, silences: list[Silence]) -> None:
        self.rt, self.tenant = rt, tenant
        self.config = rt.config_for(tenant)
        self.now = time.time()
        self.when = datetime.fromtimestamp(self.now, UTC)
        self.silences = [s for s in silences if s.active(self.when)]
        self.groups = [g for g in rt.dispatcher.groups.values() if g.tenant == tenant]
        self.firing = [
            (a.fingerprint, a.labels)
            for g in self.groups
            for a in g.alerts.values()
            if a.status == "firing"
        ]

    def alert(self, a: GroupAlert, receivers: list[str]) -> dict[str, Any]:
        silenced = [s.id for s in self.silences if matches(list(s.matchers), a.labels)]
        inhibited = sorted(set(self.config.inhibitors(a.labels, self.firing)))
        muted = sorted(
            {
                n
                for r in route(self.config.route, a.labels)
                for n in self.config.muted_by(r, self.when)
            }
        )
        suppressed = silenced or inhibited or muted
        resolve_s = self.config.global_.resolve_timeout
        return {
            "labels": a.labels,
            "annotations": {
                **a.annotations,
                "driftline_alert_url": self.rt.links.alert(a),
                "driftline_model_url": self.rt.links.model(a),
            },
            "receivers": [{"name": n} for n in receivers],
            "fingerprint": a.fingerprint,
            "startsAt": _iso(a.starts_at),
            "updatedAt": _iso(self.now),
            "endsAt": _iso(a.ends_at if a.status == "resolved" else self.now + resolve_s),
            "generatorURL": self.rt.links.alert(a),
            "status": {
                "state": "suppressed" if suppressed else "active",
                "silencedBy": silenced,
                "inhibitedBy": inhibited,
                "mutedBy": muted,
            },
        }

    def alerts(self) -> dict[str, tuple[GroupAlert, list[str]]]:
        """Firing alerts by fingerprint, with the receivers of their groups."""
        out: dict[str, tuple[GroupAlert, list[str]]] = {}
        for g in self.groups:
            for a in g.alerts.values():
                if a.status != "firing":
                    continue
                _, names = out.setdefault(a.fingerprint, (a, []))
                if g.route.receiver not in names:
                    names.append(g.route.receiver)
        return out


def keep(
    d: dict[str, Any],
    *,
    active: bool,
    silenced: bool,
    inhibited: bool,
    filters: list[Matcher],
    receiver: re.Pattern[str] | None,
) -> bool:
    st = d["status"]
    if not active and st["state"] == "active":
        return False
    if not silenced and st["silencedBy"]:
        return False
    if not inhibited and st["inhibitedBy"]:
        return False
    if receiver is not None and not any(receiver.match(r["name"]) for r in d["receivers"]):
        return False
    return matches(filters, d["labels"])


def _principal(auth: Authenticator, permission: str) -> Callable[[Request], Awaitable[Principal]]:
    """The authenticator, also reading an API key from basic auth's password."""
    inner = auth.require(permission)

    async def dependency(
        request: Request, _creds: None = Depends(declared_credentials)
    ) -> Principal:
        authz = request.headers.get("authorization", "")
        if authz[:6].lower() == "basic ":
            try:
                _user, _, secret = base64.b64decode(authz[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as e:
                raise HTTPException(401, "malformed basic auth header") from e
            headers = [(k, v) for k, v in request.scope["headers"] if k != b"authorization"]
            headers.append((b"authorization", f"Bearer {secret}".encode()))
            request = StarletteRequest({**request.scope, "headers": headers}, request.receive)
        return await inner(request)

    return dependency


def router(auth: Authenticator, rt: AlertingRuntime) -> APIRouter:
    am_error = {
        "description": "Alertmanager's error answer: a JSON string",
        "content": {"application/json": {"schema": {"type": "string"}}},
    }
    r = APIRouter(
        prefix="/api/v2",
        tags=["alertmanager-api-v2"],
        responses={400: am_error, 404: am_error},  # 401/403: problem details, as elsewhere
    )
    read = Depends(_principal(auth, "read"))
    write = Depends(_principal(auth, "write"))

    def bools(**kw: bool) -> dict[str, bool]:
        return kw

    @r.get("/status", response_model=AlertmanagerStatus)
    async def status(who: Principal = read) -> dict[str, Any]:
        cfg = shown_config(rt.config_for(who.tenant_id))
        original = yaml.safe_dump(render(cfg, redact=True, extensions=False), sort_keys=False)
        return {
            "cluster": {"name": "driftline", "status": "disabled", "peers": []},
            "versionInfo": {
                "version": VERSION,
                "revision": "driftline",
                "branch": "main",
                "buildUser": "driftline",
                "buildDate": "",
                "goVersion": "n/a (Driftline, Python)",
            },
            "config": {"original": original},
            "uptime": _iso(STARTED),
        }

    @r.get(
        "/receivers", response_model=list[AlertmanagerReceiver], response_model_exclude_unset=True
    )
    async def receivers(who: Principal = read) -> list[dict[str, Any]]:
        cfg = shown_config(rt.config_for(who.tenant_id))
        return [{"name": x.name} for x in cfg.receivers]

    async def view(who: Principal) -> View:
        return View(rt, who.tenant_id, await rt.store.all_silences(who.tenant_id))

    @r.get("/alerts", response_model=list[GettableAlert])
    async def alerts(
        who: Principal = read,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
        unprocessed: bool = True,
        filter: list[str] = Query(default=[]),  # noqa: B008 - Alertmanager's name
        receiver: str | None = None,
    ) -> Any:
        try:
            filters, rx = _filters(filter), _receiver_re(receiver)
        except _AMError as e:
            return _error(e.status, e.message)
        v = await view(who)
        out = [v.alert(a, names) for a, names in v.alerts().values()]
        flags = bools(active=active, silenced=silenced, inhibited=inhibited)
        return [d for d in out if keep(d, **flags, filters=filters, receiver=rx)]

    @r.get("/alerts/groups", response_model=list[AlertGroup])
    async def groups(
        who: Principal = read,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
        muted: bool = True,
        filter: list[str] = Query(default=[]),  # noqa: B008
        receiver: str | None = None,
    ) -> Any:
        try:
            filters, rx = _filters(filter), _receiver_re(receiver)
        except _AMError as e:
            return _error(e.status, e.message)
        v = await view(who)
        flags = bools(active=active, silenced=silenced, inhibited=inhibited)
        out = []
        for g in sorted(v.groups, key=lambda g: g.key):
            shown = [
                d
                for a in g.alerts.values()
                if a.status == "firing"
                and keep(d := v.alert(a, [g.route.receiver]), **flags, filters=filters, receiver=rx)
            ]
            if not shown:
                continue
            if not muted and all(d["status"]["state"] == "suppressed" for d in shown):
                continue
            out.append(
                {
                    "labels": g.labels,
                    "routeLabels": {},
                    "receiver": {"name": g.route.receiver},
                    "alerts": shown,
                }
            )
        return out

    @r.get("/silences", response_model=list[GettableSilence])
    async def silences(
        who: Principal = read,
        filter: list[str] = Query(default=[]),  # noqa: B008
        active: bool = True,
        expired: bool = True,
        pending: bool = True,
    ) -> Any:
        try:
            filters = _filters(filter)
        except _AMError as e:
            return _error(e.status, e.message)
        now = datetime.now(UTC)
        states = {"active": active, "expired": expired, "pending": pending}
        out = []
        for s in await rt.store.all_silences(who.tenant_id):
            d = silence_json(s, now)
            if not states[d["status"]["state"]]:
                continue
            # Alertmanager: a filter matcher keeps silences that have an equal matcher
            if all(any(m == sm for sm in s.matchers) for m in filters):
                out.append(d)
        order = {"active": 0, "pending": 1, "expired": 2}
        out.sort(key=lambda d: (order[d["status"]["state"]], d["endsAt"]))
        return out

    @r.post(
        "/silences",
        response_model=SilenceCreated,
        openapi_extra=raw_body(json=PostableSilence, description="Alertmanager's postableSilence"),
    )
    async def post_silence(request: Request, who: Principal = write) -> Any:
        try:
            raw = await request.json()
        except ValueError as e:
            return _error(400, f"the body is not valid JSON: {e}")
        where = nul_path(raw)
        if where is not None:
            return _error(400, f"{where}: NUL characters are not allowed")
        try:
            data = PostableSilence.model_validate(raw)
            matchers = [m.matcher() for m in data.matchers]
        except (ValidationError, ValueError) as e:
            return _error(400, f"invalid silence: {e}")
        now = datetime.now(UTC)
        if data.endsAt <= data.startsAt:
            return _error(400, "failed to create silence: start time must be before end time")
        if data.endsAt < now:
            return _error(400, "failed to create silence: end time can't be in the past")
        if not any(not m(dict.fromkeys([m.name], "")) for m in matchers):
            return _error(400, "failed to create silence: at least one matcher must not match "
                          "the empty string")  # fmt: skip
        sid = data.id or str(uuid.uuid4())
        if data.id:
            mine = {s.id for s in await rt.store.all_silences(who.tenant_id)}
            if data.id not in mine:
                return _error(404, f"silence {data.id} not found")
        try:
            s = Silence(
                id=sid,
                matchers=matchers,
                starts_at=max(data.startsAt, now) if not data.id else data.startsAt,
                ends_at=data.endsAt,
                created_by=data.createdBy,
                comment=data.comment,
                updated_at=now,
            )
        except ValidationError as e:
            return _error(400, f"invalid silence: {e}")
        await rt.add_silence(who.tenant_id, s, who.actor())
        return {"silenceID": sid}

    async def find(who: Principal, silence_id: str) -> Silence | None:
        return next(
            (s for s in await rt.store.all_silences(who.tenant_id) if s.id == silence_id), None
        )

    @r.get("/silence/{silence_id}", response_model=GettableSilence)
    async def get_silence(silence_id: str, who: Principal = read) -> Any:
        s = await find(who, silence_id)
        if s is None:
            return _error(404, f"silence {silence_id} not found")
        return silence_json(s, datetime.now(UTC))

    @r.delete(
        "/silence/{silence_id}",
        response_class=Response,  # Alertmanager's 200 has no body (nor a content type)
        responses={200: {"description": "Delete silence response"}},
    )
    async def delete_silence(silence_id: str, who: Principal = write) -> Any:
        s = await find(who, silence_id)
        if s is None:
            return _error(404, f"silence {silence_id} not found")
        now = datetime.now(UTC)
        if s.ends_at > now:  # expired now (a pending one too, as Alertmanager does)
            starts = min(s.starts_at, now - timedelta(microseconds=1))
            done = s.model_copy(update={"starts_at": starts, "ends_at": now, "updated_at": now})
            await rt.add_silence(who.tenant_id, done, who.actor())
        return Response(status_code=200)

    return r
