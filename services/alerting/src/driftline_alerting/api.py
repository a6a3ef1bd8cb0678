"""HTTP API of the alerting service, tenant-scoped by API key: rules, routing configuration,
silences, active alerts and the delivery log. Writes need the `write` permission (roles admin
and ml-engineer, or such an API key) and are audited; reads need `read`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from driftline_core.audit import AuditEmitter
from driftline_core.auth import Authenticator, Principal
from driftline_core.events import Resource
from driftline_core.openapi import raw_body

from .responses import (
    AlertDetail,
    AlertingConfigBody,
    AlertingConfigOut,
    AlertingConfigSaved,
    AlertOut,
    DeliveryOut,
    RuleList,
    RuleOut,
    RuleUpdate,
    SilenceListed,
    SilenceOut,
)
from .routing import SECRET, SECRET_FIELDS, AlertingConfig, Matcher, Silence, render
from .rules import Rule, default_rules
from .runtime import AlertingRuntime, nul_path

__all__ = ["router"]

REDACTED = "<redacted>"
YAML_OR_JSON = "YAML (a `yaml` content type) or JSON"


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: list[str | Matcher] = Field(min_length=1)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    comment: str = Field(min_length=1, max_length=1000)


def _redact(cfg: AlertingConfig) -> dict[str, Any]:
    """Alertmanager's syntax, secrets shown as Alertmanager shows them (`<secret>`)."""
    return render(cfg, redact=True, extensions=True)


def _file_fields(v: Any, path: str = "") -> list[str]:
    """Fields that name files on Driftline's servers: only the operator's file may."""
    out: list[str] = []
    if isinstance(v, dict):
        for k, x in v.items():
            here = f"{path}.{k}" if path else str(k)
            if str(k).endswith("_file") and x:
                out.append(here)
            out += _file_fields(x, here)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _file_fields(x, f"{path}.{i}" if path else str(i))
    return out


def keep_secrets(new: dict[str, Any], old: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A configuration read back (secrets shown as `<secret>`) and written again keeps the
    stored secrets: receivers are matched by name, integrations by their place in their
    list. Returns the configuration and the fields whose `<secret>` has nothing stored."""
    unknown: list[str] = []
    old_receivers = {r.get("name"): r for r in old.get("receivers", []) if isinstance(r, dict)}

    def walk(v: Any, o: Any, path: str) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                here = f"{path}.{k}" if path else str(k)
                prev = o.get(k) if isinstance(o, dict) else None
                if k == "receivers" and not path and isinstance(x, list):
                    out[k] = [
                        walk(
                            r,
                            old_receivers.get(r.get("name")) if isinstance(r, dict) else None,
                            f"receivers.{i}",
                        )
                        for i, r in enumerate(x)
                    ]
                elif k in SECRET_FIELDS and (x == SECRET or (isinstance(x, list) and SECRET in x)):
                    if isinstance(x, list):
                        prevs = prev if isinstance(prev, list) and len(prev) == len(x) else None
                        if prevs is None:
                            unknown.append(here)
                            out[k] = x
                        else:
                            out[k] = [
                                p if y == SECRET else y for y, p in zip(x, prevs, strict=True)
                            ]
                    elif prev is None or prev == SECRET:
                        unknown.append(here)
                        out[k] = x
                    else:
                        out[k] = prev
                else:
                    out[k] = walk(x, prev, here)
            return out
        if isinstance(v, list):
            prevs = o if isinstance(o, list) else []
            return [
                walk(x, prevs[i] if i < len(prevs) else None, f"{path}.{i}")
                for i, x in enumerate(v)
            ]
        return v

    return walk(new, old, ""), unknown


def config_errors(e: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors with Alertmanager's field paths, unknown fields named as such."""
    out = []
    for x in e.errors():
        loc = [p for p in x["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        msg = x["msg"]
        if x["type"] == "extra_forbidden":
            msg = "not supported by Driftline (or not an Alertmanager field)"
        out.append({"loc": loc, "field": ".".join(str(p) for p in loc), "msg": msg})
    return out


def _rule_out(rule: Rule) -> dict[str, Any]:
    d = rule.model_dump(mode="json")
    rem = d.get("remediation")
    if rem and rem.get("webhook_secret"):
        rem["webhook_secret"] = REDACTED
    return d


def _keep_secret(data: Any, old: Rule | None) -> Any:
    """A rule read back (secret redacted) and written again keeps its secret."""
    rem = data.get("remediation") if isinstance(data, dict) else None
    if isinstance(rem, dict) and rem.get("webhook_secret") == REDACTED:
        secret = old.remediation.webhook_secret if old and old.remediation else None
        if secret is None:
            raise HTTPException(422, "remediation.webhook_secret: give the secret itself")
        data = {**data, "remediation": {**rem, "webhook_secret": secret}}
    return data


def router(auth: Authenticator, rt: AlertingRuntime, audit: AuditEmitter) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["alerting"])
    read = Depends(auth.require("read"))
    admin = Depends(auth.require("write"))

    async def audited(who: Principal, action: str, kind: str, rid: str, **details: Any) -> None:
        await audit.record(
            tenant_id=who.tenant_id,
            actor=who.actor(),
            action=action,
            resource=Resource(type=kind, id=rid),
            details=details,
        )

    async def body(request: Request) -> Any:
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        try:
            data = yaml.safe_load(raw) if "yaml" in ctype else (await request.json())
        except (ValueError, yaml.YAMLError) as e:
            raise HTTPException(400, f"the body is not valid JSON or YAML: {e}") from e
        where = nul_path(data)
        if where is not None:  # it would poison the stored state (PostgreSQL refuses it)
            raise HTTPException(422, f"{where}: NUL characters (\\u0000) are not allowed")
        return data

    def validated(model: type[BaseModel], data: Any) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as e:
            raise HTTPException(
                422, [{"loc": x["loc"], "msg": x["msg"]} for x in e.errors()]
            ) from e

    # --- rules -----------------------------------------------------------------------------

    async def materialise_defaults(who: Principal) -> None:
        """A tenant's first own rule: the defaults it had become its own rules too, so they
        can be edited or deleted one by one (and deleting them all leaves none)."""
        if who.tenant_id in rt.rules or not rt.opts.default_rules:
            return
        for d in default_rules():
            await rt.store.put_rule(who.tenant_id, d, who.actor_id)

    @r.get("/alert-rules", response_model=RuleList, response_model_exclude_unset=True)
    async def list_rules(who: Principal = read) -> dict[str, Any]:
        custom = who.tenant_id in rt.rules
        return {
            "defaults": not custom,
            "rules": [_rule_out(x) for x in rt.rules_for(who.tenant_id)],
        }

    @r.post(
        "/alert-rules",
        status_code=201,
        response_model=RuleOut,
        response_model_exclude_unset=True,
        openapi_extra=raw_body(json=Rule, yaml=Rule, description=YAML_OR_JSON),
    )
    async def create_rule(request: Request, who: Principal = admin) -> dict[str, Any]:
        rule: Rule = validated(Rule, await body(request))
        if any(x.id == rule.id for x in rt.rules.get(who.tenant_id, [])):
            raise HTTPException(409, f"rule {rule.id!r} exists; PUT /v1/alert-rules/{rule.id}")
        await materialise_defaults(who)
        await rt.store.put_rule(who.tenant_id, rule, who.actor_id)
        rt.rules = await rt.store.rules()
        await audited(who, "alert_rule.create", "alert_rule", rule.id)
        return _rule_out(rule)

    @r.get("/alert-rules/{rule_id}", response_model=RuleOut, response_model_exclude_unset=True)
    async def get_rule(rule_id: str, who: Principal = read) -> dict[str, Any]:
        for x in rt.rules_for(who.tenant_id):
            if x.id == rule_id:
                return _rule_out(x)
        raise HTTPException(404, f"no rule {rule_id!r}")

    @r.put(
        "/alert-rules/{rule_id}",
        response_model=RuleOut,
        response_model_exclude_unset=True,
        openapi_extra=raw_body(json=RuleUpdate, yaml=RuleUpdate, description=YAML_OR_JSON),
    )
    async def put_rule(rule_id: str, request: Request, who: Principal = admin) -> dict[str, Any]:
        data = await body(request)
        if isinstance(data, dict):
            data = {**data, "id": rule_id}
        old = next((x for x in rt.rules_for(who.tenant_id) if x.id == rule_id), None)
        rule: Rule = validated(Rule, _keep_secret(data, old))
        await materialise_defaults(who)
        new = await rt.store.put_rule(who.tenant_id, rule, who.actor_id)
        rt.rules = await rt.store.rules()
        await audited(
            who, "alert_rule.create" if new else "alert_rule.update", "alert_rule", rule_id
        )
        return _rule_out(rule)

    @r.delete("/alert-rules/{rule_id}", status_code=204)
    async def delete_rule(rule_id: str, who: Principal = admin) -> None:
        await materialise_defaults(who)
        if not await rt.store.delete_rule(who.tenant_id, rule_id):
            raise HTTPException(404, f"no rule {rule_id!r}")
        rt.rules = await rt.store.rules()
        await audited(who, "alert_rule.delete", "alert_rule", rule_id)

    # --- routing configuration -------------------------------------------------------------

    @r.get("/alerting/config", response_model=AlertingConfigOut, response_model_exclude_unset=True)
    async def get_config(who: Principal = read) -> dict[str, Any]:
        return _redact(rt.config_for(who.tenant_id))

    @r.put(
        "/alerting/config",
        response_model=AlertingConfigSaved,
        response_model_exclude_unset=True,
        openapi_extra=raw_body(
            json=AlertingConfigBody, yaml=AlertingConfigBody, description=YAML_OR_JSON
        ),
    )
    async def put_config(request: Request, who: Principal = admin) -> dict[str, Any]:
        """An alertmanager.yml (YAML or JSON), or Driftline's earlier form."""
        data = await body(request)
        files = _file_fields(data)
        if files:
            raise HTTPException(
                422,
                [
                    {
                        "field": f,
                        "msg": "files on Driftline's servers can only be named in the "
                        "configuration file loaded at start; give the value itself",
                    }
                    for f in files
                ],
            )
        if isinstance(data, dict):
            current = rt.configs.get(who.tenant_id)
            old = render(current, redact=False) if current is not None else {}
            data, unknown = keep_secrets(data, old)
            if unknown:
                raise HTTPException(
                    422,
                    [
                        {
                            "field": f,
                            "msg": "<secret> stands for a stored secret, and none "
                            "is stored here: give the secret itself",
                        }
                        for f in unknown
                    ],
                )
        try:
            cfg = AlertingConfig.model_validate(data)
        except ValidationError as e:
            raise HTTPException(422, config_errors(e)) from e
        await rt.store.put_config(who.tenant_id, cfg, who.actor_id)
        rt.configs = await rt.store.configs()
        await audited(
            who,
            "alerting_config.update",
            "alerting_config",
            who.tenant_id,
            receivers=[x.name for x in cfg.receivers],
        )
        return {**_redact(cfg), "warnings": cfg.warnings()}

    # --- silences --------------------------------------------------------------------------

    @r.get("/silences", response_model=list[SilenceListed], response_model_exclude_unset=True)
    async def list_silences(who: Principal = read) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            {
                **s.model_dump(mode="json"),
                "state": "active"
                if s.active(now)
                else ("pending" if s.starts_at > now else "expired"),
            }
            for s in await rt.store.all_silences(who.tenant_id)
        ]

    @r.post(
        "/silences",
        status_code=201,
        response_model=SilenceOut,
        response_model_exclude_unset=True,
        openapi_extra=raw_body(json=SilenceIn, yaml=SilenceIn, description=YAML_OR_JSON),
    )
    async def create_silence(request: Request, who: Principal = admin) -> dict[str, Any]:
        data: SilenceIn = validated(SilenceIn, await body(request))
        try:
            s = Silence(
                id=str(uuid.uuid4()),  # Alertmanager's silence ids are UUIDs (amtool checks)
                matchers=[Matcher.parse(m) if isinstance(m, str) else m for m in data.matchers],
                starts_at=data.starts_at or datetime.now(UTC),
                ends_at=data.ends_at,
                created_by=who.actor_id,
                comment=data.comment,
            )
        except (ValueError, ValidationError) as e:
            raise HTTPException(422, str(e)) from e
        await rt.add_silence(who.tenant_id, s, who.actor())
        return s.model_dump(mode="json")

    @r.delete("/silences/{silence_id}", status_code=204)
    async def expire_silence(silence_id: str, who: Principal = admin) -> None:
        mine = {s.id: s for s in await rt.store.all_silences(who.tenant_id)}
        s = mine.get(silence_id)
        if s is None:
            raise HTTPException(404, f"no silence {silence_id!r}")
        now = datetime.now(UTC)
        if s.ends_at > now:
            s = s.model_copy(update={"ends_at": max(now, s.starts_at)})
            await rt.add_silence(who.tenant_id, s, who.actor())  # expires at the next tick

    # --- what is going on ------------------------------------------------------------------

    @r.get("/alerts", response_model=list[AlertOut], response_model_exclude_unset=True)
    async def alerts(who: Principal = read) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for g in rt.dispatcher.groups.values():
            if g.tenant != who.tenant_id:
                continue
            for a in g.alerts.values():
                seen[a.fingerprint] = {
                    "fingerprint": a.fingerprint,
                    "status": a.status,
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "starts_at": datetime.fromtimestamp(a.starts_at, UTC).isoformat(),
                    "value": a.value,
                }
        return list(seen.values())

    @r.get("/alerts/{fingerprint}", response_model=AlertDetail, response_model_exclude_unset=True)
    async def alert(fingerprint: str, who: Principal = read) -> dict[str, Any]:
        """What every notification links to: the alert, its groups and receivers."""
        found: dict[str, Any] | None = None
        for g in rt.dispatcher.groups.values():
            a = g.alerts.get(fingerprint) if g.tenant == who.tenant_id else None
            if a is None:
                continue
            if found is None:
                found = {
                    "fingerprint": a.fingerprint,
                    "status": a.status,
                    "rule_id": a.rule_id,
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "starts_at": datetime.fromtimestamp(a.starts_at, UTC).isoformat(),
                    "ends_at": datetime.fromtimestamp(a.ends_at, UTC).isoformat()
                    if a.ends_at
                    else None,
                    "value": a.value,
                    "evidence": a.evidence,
                    "model_url": rt.links.model(a),
                    "groups": [],
                }
            found["groups"].append({"key": g.key, "receiver": g.route.receiver})
        if found is None:
            raise HTTPException(404, f"no current alert {fingerprint!r}")
        return found

    @r.get("/deliveries", response_model=list[DeliveryOut], response_model_exclude_unset=True)
    async def deliveries(who: Principal = read) -> list[dict[str, Any]]:
        return await rt.store.deliveries(who.tenant_id)

    return r
