"""Every endpoint of every service with an API, against the real stack:

- without credentials, with an expired, a forged, an `alg: none` token, and with a revoked
  session: 401;
- a viewer at an endpoint that changes something: 403;
- another tenant's admin at a resource of this tenant: exactly the answer for a resource that
  does not exist (no data, no hint that it exists); lists show none of this tenant's ids.

The table below must name every `/v1` route the apps serve, so a new endpoint fails this test
until its access rules are stated here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ADMIN_TOKEN = {"X-Admin-Token": "driftline-dev-admin"}
PASSWORD = "correct horse battery staple"
SCHEMA = {
    "features": [{"name": "age", "kind": "numeric"}, {"name": "region", "kind": "categorical"}]
}
RULE = {
    "name": "AgeDrift",
    "condition": {"metric": "drift.feature.ratio", "op": ">", "value": 1.5, "feature": "age"},
    "severity": "warning",
}

Ids = dict[str, str]


@dataclass
class Case:
    service: str  # ingestion | alerting | audit | reports
    method: str
    path: str  # with {placeholders} filled from a tenant's ids
    permission: str  # read | write | ingest | admin | public | platform
    kind: str  # item (names a resource) | list | create | self (the caller's own)
    body: Callable[[Ids], dict[str, Any]] = field(default=lambda ids: {})


def j(f: Callable[[Ids], Any]) -> Callable[[Ids], dict[str, Any]]:
    return lambda ids: {"json": f(ids)}


CSV = {"content": b"age,region,prediction\n30,north,1\n", "headers": {"content-type": "text/csv"}}
LATER = (datetime.now(UTC) + timedelta(days=1)).isoformat()
REPORT = {
    "framework": "sox",
    "period_start": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
    "period_end": LATER,
    "formats": ["json"],
}
window = {
    "start": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    "end": datetime.now(UTC).isoformat(),
}
CASES = [
    # ingestion: events
    Case("ingestion", "POST", "/v1/events/predictions", "ingest", "create", j(lambda i: [])),
    Case("ingestion", "POST", "/v1/events/actuals", "ingest", "create", j(lambda i: [])),
    Case("ingestion", "POST", "/v1/events/cloudevents", "ingest", "create", j(lambda i: {})),
    # ingestion: tenants and API keys
    Case("ingestion", "POST", "/v1/auth/tenants", "platform", "create"),
    Case(
        "ingestion",
        "POST",
        "/v1/auth/keys",
        "admin",
        "create",
        j(lambda i: {"name": "k", "scopes": ["read"]}),
    ),
    Case("ingestion", "GET", "/v1/auth/keys", "admin", "list"),
    Case("ingestion", "DELETE", "/v1/auth/keys/{key_id}", "admin", "item"),
    # ingestion: operators
    Case(
        "ingestion",
        "POST",
        "/v1/auth/users",
        "admin",
        "create",
        j(
            lambda i: {
                "username": f"x{uuid.uuid4().hex[:6]}",
                "password": PASSWORD,
                "role": "viewer",
            }
        ),
    ),
    Case("ingestion", "GET", "/v1/auth/users", "admin", "list"),
    Case(
        "ingestion",
        "PATCH",
        "/v1/auth/users/{user_id}",
        "admin",
        "item",
        j(lambda i: {"role": "viewer"}),
    ),
    Case("ingestion", "POST", "/v1/auth/login", "public", "self"),
    Case("ingestion", "POST", "/v1/auth/refresh", "public", "self"),
    # single sign-on and the required-MFA enrolment: no credentials, by design (the state,
    # the IdP's code or the login's enrolment token is what they check; test_oidc_sso.py)
    Case("ingestion", "GET", "/v1/auth/oidc/config", "public", "self"),
    Case("ingestion", "GET", "/v1/auth/oidc/login", "public", "self"),
    Case("ingestion", "GET", "/v1/auth/oidc/callback", "public", "self"),
    Case("ingestion", "GET", "/v1/auth/oidc/logout", "public", "self"),
    Case("ingestion", "POST", "/v1/auth/mfa/required/enroll", "public", "self"),
    Case("ingestion", "POST", "/v1/auth/mfa/required/confirm", "public", "self"),
    Case("ingestion", "GET", "/v1/auth/me", "read", "self"),
    Case("ingestion", "POST", "/v1/auth/logout", "read", "self"),
    Case("ingestion", "POST", "/v1/auth/mfa/enroll", "read", "self"),
    Case("ingestion", "POST", "/v1/auth/mfa/confirm", "read", "self"),
    Case("ingestion", "GET", "/v1/auth/sessions", "read", "list"),
    Case("ingestion", "DELETE", "/v1/auth/sessions", "read", "self"),
    Case("ingestion", "DELETE", "/v1/auth/sessions/{session_id}", "read", "item"),
    Case("ingestion", "GET", "/v1/auth/tenants/{tenant_id}/data-keys", "admin", "item"),
    Case("ingestion", "POST", "/v1/auth/tenants/{tenant_id}/data-keys/rotate", "admin", "item"),
    Case(
        "ingestion",
        "POST",
        "/v1/auth/tenants/{tenant_id}/erase",
        "admin",
        "item",
        j(lambda i: {"confirm": i["tenant_id"], "reason": "matrix test"}),
    ),
    Case("ingestion", "POST", "/v1/auth/data-keys/rewrap", "platform", "self"),
    # ingestion: registry
    Case(
        "ingestion",
        "POST",
        "/v1/models",
        "write",
        "create",
        j(
            lambda i: {
                "id": f"m{uuid.uuid4().hex[:6]}",
                "name": "n",
                "task": "classification",
                "feature_schema": SCHEMA,
            }
        ),
    ),
    Case("ingestion", "GET", "/v1/models", "read", "list"),
    Case("ingestion", "GET", "/v1/models/{model_id}", "read", "item"),
    Case("ingestion", "PUT", "/v1/models/{model_id}/schema", "write", "item", j(lambda i: SCHEMA)),
    Case("ingestion", "PUT", "/v1/models/{model_id}/monitoring", "write", "item", j(lambda i: {})),
    Case(
        "ingestion",
        "PUT",
        "/v1/models/{model_id}/classes",
        "write",
        "item",
        j(lambda i: {"classes": ["0", "1"], "positive_class": "1"}),
    ),
    Case("ingestion", "DELETE", "/v1/models/{model_id}", "write", "item"),
    Case(
        "ingestion",
        "POST",
        "/v1/models/{model_id}/versions",
        "write",
        "item",
        j(lambda i: {"version": "9", "artifact_uri": "s3://b/m", "artifact_sha256": "0" * 64}),
    ),
    Case("ingestion", "GET", "/v1/models/{model_id}/versions", "read", "item"),
    Case(
        "ingestion",
        "POST",
        "/v1/models/{model_id}/versions/{version}/approve",
        "write",
        "item",
        j(lambda i: {"comment": "ok"}),
    ),
    Case(
        "ingestion",
        "POST",
        "/v1/models/{model_id}/versions/{version}/stage",
        "write",
        "item",
        j(lambda i: {"stage": "staging"}),
    ),
    Case("ingestion", "POST", "/v1/models/{model_id}/reference", "write", "item", lambda i: CSV),
    Case(
        "ingestion",
        "POST",
        "/v1/models/{model_id}/reference/from-events",
        "write",
        "item",
        j(lambda i: window),
    ),
    Case("ingestion", "GET", "/v1/models/{model_id}/reference", "read", "item"),
    # alerting
    Case("alerting", "GET", "/v1/alert-rules", "read", "list"),
    Case(
        "alerting",
        "POST",
        "/v1/alert-rules",
        "write",
        "create",
        j(lambda i: {**RULE, "id": f"r{uuid.uuid4().hex[:6]}"}),
    ),
    Case("alerting", "GET", "/v1/alert-rules/{rule_id}", "read", "item"),
    # an upsert: another tenant's PUT makes a rule of its own under that id (A's is untouched)
    Case("alerting", "PUT", "/v1/alert-rules/{rule_id}", "write", "upsert", j(lambda i: RULE)),
    Case("alerting", "DELETE", "/v1/alert-rules/{rule_id}", "write", "item"),
    Case("alerting", "GET", "/v1/alerting/config", "read", "list"),
    Case(
        "alerting",
        "PUT",
        "/v1/alerting/config",
        "write",
        "create",
        j(lambda i: {"route": {"receiver": "null"}, "receivers": []}),
    ),
    Case("alerting", "GET", "/v1/silences", "read", "list"),
    Case(
        "alerting",
        "POST",
        "/v1/silences",
        "write",
        "create",
        j(lambda i: {"matchers": ['model="x"'], "ends_at": LATER, "comment": "c"}),
    ),
    Case("alerting", "DELETE", "/v1/silences/{silence_id}", "write", "item"),
    Case("alerting", "GET", "/v1/alerts", "read", "list"),
    Case("alerting", "GET", "/v1/alerts/{fingerprint}", "read", "item"),
    Case("alerting", "GET", "/v1/deliveries", "read", "list"),
    # alerting: Alertmanager's API v2 (amtool, karma, Grafana), over the same state
    Case("alerting", "GET", "/api/v2/status", "read", "list"),
    Case("alerting", "GET", "/api/v2/receivers", "read", "list"),
    Case("alerting", "GET", "/api/v2/alerts", "read", "list"),
    Case("alerting", "GET", "/api/v2/alerts/groups", "read", "list"),
    Case("alerting", "GET", "/api/v2/silences", "read", "list"),
    Case(
        "alerting",
        "POST",
        "/api/v2/silences",
        "write",
        "create",
        j(
            lambda i: {
                "matchers": [{"name": "model", "value": "x", "isRegex": False}],
                "startsAt": datetime.now(UTC).isoformat(),
                "endsAt": LATER,
                "createdBy": "matrix",
                "comment": "c",
            }
        ),
    ),
    Case("alerting", "GET", "/api/v2/silence/{silence_id}", "read", "item"),
    Case("alerting", "DELETE", "/api/v2/silence/{silence_id}", "write", "item"),
    # audit (the auditor's permission)
    Case("audit", "GET", "/v1/audit/records", "audit", "list"),
    Case("audit", "GET", "/v1/audit/verify", "audit", "list"),
    Case("audit", "GET", "/v1/audit/checkpoints", "audit", "list"),
    Case("audit", "GET", "/v1/audit/export", "audit", "list"),
    Case(
        "audit",
        "PUT",
        "/v1/audit/retention",
        "admin",
        "create",
        j(lambda i: {"retention_days": 3650}),
    ),
    Case("audit", "GET", "/v1/audit/retention", "audit", "list"),
    Case("audit", "POST", "/v1/audit/holds", "admin", "create", j(lambda i: {"reason": "r"})),
    Case("audit", "GET", "/v1/audit/holds", "audit", "list"),
    Case("audit", "DELETE", "/v1/audit/holds/{hold_id}", "admin", "item"),
    Case("audit", "POST", "/v1/audit/lifecycle", "admin", "self"),
    # compliance reports (the auditor's permission)
    Case("reports", "POST", "/v1/reports", "audit", "create", j(lambda i: REPORT)),
    Case("reports", "GET", "/v1/reports", "audit", "list"),
    Case("reports", "GET", "/v1/reports/public-key", "audit", "list"),
    Case("reports", "GET", "/v1/reports/{report_id}", "audit", "item"),
    Case("reports", "GET", "/v1/reports/{report_id}/files/{name}", "audit", "item"),
    Case("reports", "GET", "/v1/reports/{report_id}/bundle", "audit", "item"),
    Case(
        "reports",
        "POST",
        "/v1/report-schedules",
        "audit",
        "create",
        j(lambda i: {"framework": "sox", "cadence": "weekly"}),
    ),
    Case("reports", "GET", "/v1/report-schedules", "audit", "list"),
    Case("reports", "DELETE", "/v1/report-schedules/{schedule_id}", "audit", "item"),
]


@dataclass
class Tenant:
    ids: Ids
    api_key: str
    admin: dict[str, Any]  # login grant of an admin user
    viewer: dict[str, Any]  # login grant of a viewer


async def _login(c: httpx.AsyncClient, tenant: str, user: str) -> dict[str, Any]:
    r = await c.post(
        "/v1/auth/login", json={"tenant": tenant, "username": user, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _tenant(apps: Any) -> Tenant:
    ing, alert = apps.ingestion, apps.alerting
    tid = f"t{uuid.uuid4().hex[:10]}"
    r = await ing.post("/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN_TOKEN)
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    h = {"Authorization": f"Bearer {key}"}
    ids: Ids = {"tenant_id": tid, "model_id": f"m{uuid.uuid4().hex[:8]}", "version": "1"}
    for name, role in (("boss", "admin"), ("watcher", "viewer")):
        r = await ing.post(
            "/v1/auth/users", json={"username": name, "password": PASSWORD, "role": role}, headers=h
        )
        assert r.status_code == 201, r.text
        ids[f"{name}_id"] = r.json()["id"]
    ids["user_id"] = ids["watcher_id"]
    r = await ing.post("/v1/auth/keys", json={"name": "p", "scopes": ["ingest"]}, headers=h)
    ids["key_id"] = r.json()["key_id"]
    r = await ing.post(
        "/v1/models",
        json={
            "id": ids["model_id"],
            "name": "n",
            "task": "classification",
            "feature_schema": SCHEMA,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await ing.post(
        f"/v1/models/{ids['model_id']}/versions",
        json={"version": "1", "artifact_uri": "s3://b/m", "artifact_sha256": "1" * 64},
        headers=h,
    )
    assert r.status_code == 201, r.text
    ids["rule_id"] = f"r{uuid.uuid4().hex[:8]}"
    r = await alert.post("/v1/alert-rules", json={**RULE, "id": ids["rule_id"]}, headers=h)
    assert r.status_code == 201, r.text
    r = await alert.post(
        "/v1/silences",
        json={"matchers": [f'model="{ids["model_id"]}"'], "ends_at": LATER, "comment": "c"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    ids["silence_id"] = r.json()["id"]
    ids["fingerprint"] = uuid.uuid4().hex[:16]  # no current alert: both tenants get a 404
    r = await apps.audit.post("/v1/audit/holds", json={"reason": "litigation"}, headers=h)
    assert r.status_code == 201, r.text
    ids["hold_id"] = r.json()["id"]
    r = await apps.reports.post("/v1/reports", json=REPORT, headers=h)
    assert r.status_code == 202, r.text
    ids["report_id"], ids["name"] = r.json()["id"], "report.json"
    r = await apps.reports.post(
        "/v1/report-schedules", json={"framework": "gdpr", "cadence": "monthly"}, headers=h
    )
    assert r.status_code == 201, r.text
    ids["schedule_id"] = r.json()["id"]
    for _ in range(300):  # generated within the verification timeout (5 s here)
        r = await apps.reports.get(f"/v1/reports/{ids['report_id']}", headers=h)
        if r.json()["status"] == "done":
            break
        await asyncio.sleep(0.1)
    assert r.json()["status"] == "done", r.text
    admin, viewer = await _login(ing, tid, "boss"), await _login(ing, tid, "watcher")
    ids["session_id"] = viewer["session_id"]
    return Tenant(ids, key, admin, viewer)


@pytest.fixture(scope="module")
async def world(apps: Any) -> dict[str, Tenant]:
    return {"a": await _tenant(apps), "b": await _tenant(apps)}


def _b64(d: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


def bad_tokens(good: str) -> dict[str, str]:
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    expired = jwt.encode(
        {**claims, "exp": int(time.time()) - 60}, Ed25519PrivateKey.generate(), algorithm="EdDSA"
    )
    none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({**claims, 'role': 'admin'})}."
    return {"forged": forged, "expired-and-forged": expired, "alg-none": none, "garbage": "x.y.z"}


async def call(apps: Any, case: Case, ids: Ids, token: str | None, **extra: Any) -> httpx.Response:
    client = getattr(apps, case.service)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kw = case.body(ids)
    headers.update(kw.pop("headers", {}))
    headers.update(extra.pop("headers", {}))
    kw.update(extra)
    return await client.request(case.method, case.path.format(**ids), headers=headers, **kw)


def _routes(app: Any) -> set[tuple[str, str]]:
    """From the OpenAPI document, which lists every route of every included router."""
    return {
        (m.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        if path.startswith(("/v1", "/api/v2"))
        for m in ops
    }


def test_the_table_names_every_endpoint(apps):
    served = (
        {("ingestion", *x) for x in _routes(apps.ingestion_app)}
        | {("alerting", *x) for x in _routes(apps.alerting_app)}
        | {("audit", *x) for x in _routes(apps.audit_app)}
        | {("reports", *x) for x in _routes(apps.reports_app)}
    )
    table = {(c.service, c.method, c.path) for c in CASES}
    assert served - table == set(), "endpoints without access rules in this test"
    assert table - served == set(), "rules for endpoints that no longer exist"


PROTECTED = [c for c in CASES if c.permission not in ("public", "platform")]


def _id(c: Case) -> str:
    return f"{c.service}:{c.method}:{c.path}"


@pytest.mark.parametrize("case", PROTECTED, ids=_id)
async def test_missing_and_bad_credentials_are_refused(apps, world, case):
    a = world["a"]
    r = await call(apps, case, a.ids, None)
    assert r.status_code == 401, r.text
    for name, token in bad_tokens(a.admin["access_token"]).items():
        r = await call(apps, case, a.ids, token)
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text}"
    r = await call(apps, case, a.ids, "dlk_000000000000_notakey")
    assert r.status_code == 401


@pytest.mark.parametrize("case", [c for c in PROTECTED if c.permission != "read"], ids=_id)
async def test_a_viewer_cannot_change_anything(apps, world, case):
    a = world["a"]
    r = await call(apps, case, a.ids, a.viewer["access_token"])
    assert r.status_code == 403, r.text


@pytest.mark.parametrize("case", [c for c in PROTECTED if c.kind == "item"], ids=_id)
async def test_another_tenants_resource_looks_exactly_like_a_missing_one(apps, world, case):
    a, b = world["a"], world["b"]
    fake = {k: f"nosuch{uuid.uuid4().hex[:6]}" for k in a.ids}
    fake["user_id"] = fake["key_id"] = fake["hold_id"] = str(uuid.uuid4())
    fake["report_id"] = fake["schedule_id"] = str(uuid.uuid4())
    fake["tenant_id"] = f"t{uuid.uuid4().hex[:10]}"
    fake["version"] = "1"
    theirs = await call(apps, case, a.ids, b.admin["access_token"])
    missing = await call(apps, case, fake, b.admin["access_token"])

    names = [f for _, f, _, _ in string.Formatter().parse(case.path) if f]

    def norm(r: httpx.Response, ids: Ids) -> tuple[int, str]:
        text = r.text
        for k in names:
            if len(ids[k]) > 2:
                text = text.replace(ids[k], f"<{k}>")
        return r.status_code, text

    assert theirs.status_code not in (200, 201, 204), theirs.text
    assert norm(theirs, a.ids) == norm(missing, fake)
    asked = case.path.format(**a.ids)  # a 404 may echo the id asked for, nothing else
    for k, v in a.ids.items():
        if len(v) > 2 and v not in asked:
            assert v not in theirs.text, k


@pytest.mark.parametrize("case", [c for c in PROTECTED if c.kind == "list"], ids=_id)
async def test_lists_show_nothing_of_another_tenant(apps, world, case):
    a, b = world["a"], world["b"]
    r = await call(apps, case, b.ids, b.admin["access_token"])
    assert r.status_code == 200, r.text
    for k in ("tenant_id", "model_id", "boss_id", "watcher_id", "key_id", "rule_id", "silence_id"):
        assert a.ids[k] not in r.text, k


async def test_the_resources_survived_the_other_tenants_attempts(apps, world):
    a = world["a"]
    h = {"Authorization": f"Bearer {a.api_key}"}
    assert (
        await apps.ingestion.get(f"/v1/models/{a.ids['model_id']}", headers=h)
    ).status_code == 200
    r = await apps.alerting.get(f"/v1/alert-rules/{a.ids['rule_id']}", headers=h)
    assert r.status_code == 200
    assert r.json()["condition"]["value"] == 1.5
    r = await apps.ingestion.get("/v1/auth/users", headers=h)
    assert {u["username"]: u["role"] for u in r.json()} == {"boss": "admin", "watcher": "viewer"}
    r = await apps.ingestion.get(f"/v1/auth/tenants/{a.ids['tenant_id']}/data-keys", headers=h)
    assert [k["version"] for k in r.json()] in ([], [1])  # never rotated by the other tenant


async def test_platform_endpoints_need_the_platform_token(apps, world):
    a = world["a"]
    for case in (c for c in CASES if c.permission == "platform"):
        for token in (None, a.admin["access_token"], a.api_key):
            r = await call(apps, case, a.ids, token, json={"id": "zz", "name": "zz"})
            assert r.status_code == 401, (case.path, r.text)


async def test_a_revoked_session_is_refused_by_every_service_within_a_second(apps, world):
    a = world["a"]
    grant = await _login(apps.ingestion, a.ids["tenant_id"], "boss")
    token = grant["access_token"]
    reads = [c for c in PROTECTED if c.permission in ("read", "audit") and c.method == "GET"]
    for case in reads:
        r = await call(apps, case, a.ids, token)
        assert r.status_code in (200, 404), (case.path, r.text)
    r = await apps.ingestion.delete(
        f"/v1/auth/sessions/{grant['session_id']}",
        headers={"Authorization": f"Bearer {a.admin['access_token']}"},
    )
    assert r.status_code == 204
    revoked_at = time.monotonic()
    r = await apps.alerting.get("/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert time.monotonic() - revoked_at < 1.0
    for case in PROTECTED:
        r = await call(apps, case, a.ids, token)
        assert r.status_code == 401, (case.path, r.text)


async def test_alertmanager_api_takes_an_api_key_as_basic_auth_password(apps, world):
    """amtool, karma and Grafana send basic auth: the password is the API key, and it scopes
    the answer to its tenant as a bearer token does."""
    a, b = world["a"], world["b"]

    def basic(user: str, password: str) -> dict[str, str]:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        }

    r = await apps.alerting.get("/api/v2/silences", headers=basic("anyone", a.api_key))
    assert r.status_code == 200, r.text
    assert a.ids["silence_id"] in r.text
    r = await apps.alerting.get("/api/v2/silences", headers=basic(a.ids["tenant_id"], b.api_key))
    assert r.status_code == 200, r.text
    assert a.ids["silence_id"] not in r.text  # b's key sees b's silences, whatever the user
    for bad in ("dlk_000000000000_notakey", ""):
        r = await apps.alerting.get("/api/v2/alerts", headers=basic("x", bad))
        assert r.status_code == 401, r.text
    r = await apps.alerting.get("/api/v2/alerts", headers={"Authorization": "Basic %%%"})
    assert r.status_code == 401


async def test_a_read_scope_api_key_sees_and_revokes_no_operator_session(apps, world):
    """Issue 18: a `read` API key listed every operator session of its tenant, with ids.
    An API key is no operator: without the admin scope every sessions route refuses it, and
    an admin's view is unchanged."""
    a = world["a"]
    admin_key = {"Authorization": f"Bearer {a.api_key}"}
    r = await apps.ingestion.post(
        "/v1/auth/keys", json={"name": "reader", "scopes": ["read"]}, headers=admin_key
    )
    assert r.status_code == 201, r.text
    reader = {"Authorization": f"Bearer {r.json()['api_key']}"}
    session = a.ids["session_id"]
    for method, path in (
        ("GET", "/v1/auth/sessions"),
        ("GET", f"/v1/auth/sessions?user_id={a.ids['watcher_id']}"),
        ("DELETE", f"/v1/auth/sessions?user_id={a.ids['watcher_id']}"),
    ):
        r = await apps.ingestion.request(method, path, headers=reader)
        assert r.status_code == 403, (method, path, r.text)
        assert session not in r.text
    r = await apps.ingestion.delete(f"/v1/auth/sessions/{session}", headers=reader)
    assert r.status_code == 404, r.text
    r = await apps.ingestion.get("/v1/auth/sessions", headers=admin_key)
    assert r.status_code == 200, r.text
    assert session in {s["session_id"] for s in r.json()}  # still there, admin sees it


AUTH = [c for c in CASES if c.path.startswith("/v1/auth/") and c.permission != "public"]


@pytest.mark.parametrize("scope", ["read", "ingest"])
async def test_every_auth_route_gives_a_non_admin_api_key_nothing_of_the_operators(
    apps, world, scope
):
    """Every /v1/auth/* route against an API key with only `read` or `ingest`: the admin and
    platform routes refuse it, and none answers with an operator's session or user id or
    changes anything of them (an API key is no operator: `me` and `logout` are its own)."""
    a = world["a"]
    r = await apps.ingestion.post(
        "/v1/auth/keys",
        json={"name": f"only-{scope}", "scopes": [scope]},
        headers={"Authorization": f"Bearer {a.api_key}"},
    )
    assert r.status_code == 201, r.text
    token = r.json()["api_key"]
    secret_ids = (a.ids["session_id"], a.ids["boss_id"], a.ids["watcher_id"])
    answered: dict[str, int] = {}
    for case in AUTH:
        body: dict[str, Any] = {}
        if case.permission == "platform":
            body = {"json": {"id": "zz", "name": "zz"}}
        elif case.path.endswith("/mfa/confirm"):
            body = {"json": {"code": "000000"}}
        r = await call(apps, case, a.ids, token, **body)
        answered[f"{case.method} {case.path}"] = r.status_code
        assert r.status_code < 500, (case.path, r.text)
        if case.permission in ("admin", "platform") or (
            scope == "ingest" and case.permission == "read"
        ):
            assert r.status_code in (401, 403), (case.path, r.text)
        else:
            assert r.status_code in (200, 204, 403, 404, 409), (case.path, r.text)
        asked = case.path.format(**a.ids)  # a 404 may name the id the caller sent
        assert not [i for i in secret_ids if i in r.text and i not in asked], (case.path, r.text)
    # the operator's session still works: nothing above revoked it
    r = await apps.ingestion.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {a.viewer['access_token']}"}
    )
    assert r.status_code == 200, (r.text, answered)
