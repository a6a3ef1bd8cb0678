"""Ingestion's operator, key-lifecycle, single sign-on and CloudEvents answers, with real
data behind them, are what docs/openapi/ingestion.json declares: each JSON body validated
against its operation's schema for that status (JSON Schema 2020-12, the document's
components resolved). Schemathesis (tests/fuzz) cannot reach most of these 2xx answers: a
login, an enrolment, a joined CloudEvent pair need state it does not make."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyotp
from jsonschema_rs import Draft202012Validator  # schemathesis's validator (a dev dependency)

DOC = json.loads(
    (Path(__file__).resolve().parents[4] / "docs" / "openapi" / "ingestion.json").read_text()
)
PASSWORD = "correct horse battery staple"
ADMIN = {"X-Admin-Token": "driftline-dev-admin"}


def violations(body: Any, path: str, method: str, status: int) -> list[str]:
    answer = DOC["paths"][path][method]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": DOC["components"]})
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(body)]


def conforms(r: httpx.Response, path: str, method: str = "get", status: int = 200) -> Any:
    assert r.status_code == status, r.text
    assert violations(r.json(), path, method, status) == [], r.json()
    return r.json()


def bearer(client: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=client._transport,
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {token}", "User-Agent": "pytest-device"},
    )


def test_the_check_can_fail() -> None:
    grant = {"access_token": "x", "token_type": "Bearer", "expires_at": "soon", "role": "admin"}
    found = violations(grant, "/v1/auth/login", "post", 200)
    assert any("refresh_token" in f and "required" in f for f in found), found
    assert any(f.startswith("['expires_at']") for f in found), found
    waiting = {"status": "waiting for the matching response", "ce_id": "a"}  # no pair_id
    assert violations(waiting, "/v1/events/cloudevents", "post", 202), "pair_id is required"


async def test_every_answer_is_as_declared(client, tenant) -> None:
    users = "/v1/auth/users"
    name = f"u{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": PASSWORD, "role": "admin"}
    user = conforms(await tenant.admin.post(users, json=body), users, "post", 201)
    login = {"tenant": tenant.id, "username": name, "password": PASSWORD}
    grant = conforms(await client.post("/v1/auth/login", json=login), "/v1/auth/login", "post")
    async with bearer(client, grant["access_token"]) as op:
        me = conforms(await op.get("/v1/auth/me"), "/v1/auth/me")
        assert (me["kind"], me["id"], me["session_id"]) == ("user", user["id"], grant["session_id"])
        key = conforms(await tenant.admin.get("/v1/auth/me"), "/v1/auth/me")
        assert (key["kind"], key["role"], key["session_id"]) == ("api_key", None, None)

        enrol = conforms(await op.post("/v1/auth/mfa/enroll"), "/v1/auth/mfa/enroll", "post")
        code = pyotp.TOTP(enrol["secret"]).at(time.time() - 30)
        r = await op.post("/v1/auth/mfa/confirm", json={"code": code})
        assert conforms(r, "/v1/auth/mfa/confirm", "post")["mfa_enabled"] is True

        sessions = conforms(await op.get("/v1/auth/sessions"), "/v1/auth/sessions")
        assert [s["current"] for s in sessions] == [True]
    r = await client.post("/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]})
    assert conforms(r, "/v1/auth/refresh", "post")["mfa_enabled"] is True
    r = await tenant.admin.delete("/v1/auth/sessions", params={"user_id": user["id"]})
    assert conforms(r, "/v1/auth/sessions", "delete") == {"revoked": 1}

    assert conforms(await client.get("/v1/auth/oidc/config"), "/v1/auth/oidc/config") == {
        "enabled": False,
        "login_url": None,
        "issuer": None,
        "logout_url": None,
    }

    # CloudEvents: a half waits for its mate, the pair is joined into events
    ce_id = str(uuid.uuid4())
    path = "/v1/events/cloudevents"
    for kind, data, status in (
        ("request", {"instances": [[41, 52000.0, "north"]]}, "waiting for the matching response"),
        ("response", {"predictions": [1]}, "joined"),
    ):
        r = await tenant.ingest.post(
            path,
            content=orjson.dumps(data),
            headers={
                "ce-specversion": "1.0",
                "ce-id": ce_id,
                "ce-source": "http://localhost:9081/",
                "ce-type": f"org.kubeflow.serving.inference.{kind}",
                "ce-inferenceservicename": "credit",
                "content-type": "application/json",
            },
        )
        assert conforms(r, path, "post", 202)["status"] == status

    # the tenant's data keys, rotation, the platform's re-wrap, erasure
    keys = f"/v1/auth/tenants/{tenant.id}/data-keys"
    before = conforms(await tenant.admin.get(keys), "/v1/auth/tenants/{tenant_id}/data-keys")
    r = await tenant.admin.post(keys + "/rotate")
    rotated = conforms(r, "/v1/auth/tenants/{tenant_id}/data-keys/rotate", "post")
    assert rotated["version"] == max([k["version"] for k in before], default=0) + 1
    r = await client.post("/v1/auth/data-keys/rewrap", headers=ADMIN)
    assert conforms(r, "/v1/auth/data-keys/rewrap", "post")["rewrapped"] >= 0
    r = await tenant.admin.post(
        f"/v1/auth/tenants/{tenant.id}/erase", json={"confirm": tenant.id, "reason": "test"}
    )
    erased = conforms(r, "/v1/auth/tenants/{tenant_id}/erase", "post")
    assert erased["erased"] is True
    r = await client.get(keys, headers=ADMIN)
    after = conforms(r, "/v1/auth/tenants/{tenant_id}/data-keys")
    assert after
    assert all(k["destroyed"] for k in after)
