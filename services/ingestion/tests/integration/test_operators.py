"""Operators against the real PostgreSQL and Redis: users, login with TOTP (once per code),
backup codes (once each), lockout, single-use refresh tokens, sessions revoked one by one or
all at once, role checks."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import httpx
import pyotp
import pytest

PASSWORD = "correct horse battery staple"


def as_client(client: httpx.AsyncClient, token: str, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client._transport.app, client=(ip, 40000)),  # type: ignore[attr-defined]
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {token}", "User-Agent": "pytest-device"},
    )


async def make_user(tenant, role: str = "viewer", name: str | None = None) -> dict:
    name = name or f"u{uuid.uuid4().hex[:8]}"
    r = await tenant.admin.post(
        "/v1/auth/users", json={"username": name, "password": PASSWORD, "role": role}
    )
    assert r.status_code == 201, r.text
    return {**r.json(), "password": PASSWORD}


async def login(client, tenant, user, **extra) -> httpx.Response:
    return await client.post(
        "/v1/auth/login",
        json={
            "tenant": tenant.id,
            "username": user["username"],
            "password": user["password"],
            **extra,
        },
        headers={"User-Agent": "pytest-device"},
    )


async def enrolled(client, tenant, role="viewer") -> tuple[dict, str, list[str]]:
    """A user with TOTP enabled: (user, secret, backup codes)."""
    user = await make_user(tenant, role)
    r = await login(client, tenant, user)
    op = as_client(client, r.json()["access_token"])
    r = await op.post("/v1/auth/mfa/enroll")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Driftline:")
    assert base64.b64decode(body["qr_png_base64"])[:4] == b"\x89PNG"
    secret = body["secret"]
    # confirm with the previous step's code, so the test's own login code is still fresh
    r = await op.post(
        "/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).at(time.time() - 30)}
    )
    assert r.status_code == 200, r.text
    codes = r.json()["backup_codes"]
    assert len(codes) == 10
    return user, secret, codes


async def test_passwords_are_stored_as_argon2id_and_policy_is_enforced(client, tenant, stack):
    import asyncpg

    user = await make_user(tenant)
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        digest = await conn.fetchval(
            "SELECT password_hash FROM ingestion.users WHERE id = $1", uuid.UUID(user["id"])
        )
    finally:
        await conn.close()
    assert digest.startswith("$argon2id$")
    assert PASSWORD not in digest
    r = await tenant.admin.post(
        "/v1/auth/users", json={"username": "shorty", "password": "short", "role": "viewer"}
    )
    assert r.status_code == 422
    assert "at least 12" in r.text
    r = await tenant.admin.post(
        "/v1/auth/users",
        json={"username": user["username"], "password": PASSWORD, "role": "viewer"},
    )
    assert r.status_code == 409


async def test_login_gives_an_eddsa_token_that_works_and_a_wrong_password_does_not(client, tenant):
    user = await make_user(tenant, "ml-engineer")
    r = await login(client, tenant, user)
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["role"] == "ml-engineer"
    assert grant["expires_in"] <= 600
    me = await as_client(client, grant["access_token"]).get("/v1/auth/me")
    assert me.json()["permissions"] == ["read", "write"]
    assert me.json()["session_id"] == grant["session_id"]
    r = await login(client, tenant, {**user, "password": "not the password!"})
    assert r.status_code == 401
    assert r.json()["detail"] == "invalid credentials"
    r = await login(client, tenant, {"username": "nobody-here", "password": PASSWORD})
    assert r.status_code == 401
    assert r.json()["detail"] == "invalid credentials"  # no hint that the user does not exist


async def test_totp_code_is_accepted_once_and_out_of_window_codes_are_refused(client, tenant):
    user, secret, _ = await enrolled(client, tenant)
    r = await login(client, tenant, user)
    assert r.status_code == 401
    assert "TOTP" in r.json()["detail"]
    totp = pyotp.TOTP(secret)
    r = await login(client, tenant, user, totp=totp.at(time.time() - 120))
    assert r.status_code == 401, "a code four steps old must be refused"
    code = totp.now()
    r = await login(client, tenant, user, totp=code)
    assert r.status_code == 200, r.text
    assert r.json()["mfa_enabled"] is True
    r = await login(client, tenant, user, totp=code)
    assert r.status_code == 401, "a replayed code must be refused"


async def test_each_backup_code_works_once(client, tenant):
    user, _, codes = await enrolled(client, tenant)
    r = await login(client, tenant, user, backup_code=codes[0])
    assert r.status_code == 200, r.text
    r = await login(client, tenant, user, backup_code=codes[0])
    assert r.status_code == 401
    r = await login(client, tenant, user, backup_code=codes[1].upper())
    assert r.status_code == 200
    users = (await tenant.admin.get("/v1/auth/users")).json()
    assert next(u for u in users if u["id"] == user["id"])["backup_codes_left"] == 8


async def test_repeated_failures_lock_the_name_even_with_the_right_password(client, tenant):
    user = await make_user(tenant)
    attacker = as_client(client, "none", ip=f"10.9.{uuid.uuid4().int % 250}.7")
    for _ in range(5):
        r = await attacker.post(
            "/v1/auth/login",
            json={
                "tenant": tenant.id,
                "username": user["username"],
                "password": "guess-guess-guess",
            },
        )
        assert r.status_code == 401
    r = await attacker.post(
        "/v1/auth/login",
        json={"tenant": tenant.id, "username": user["username"], "password": PASSWORD},
    )
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    # an unknown name is locked the same way (no way to tell which names exist)
    for _ in range(6):
        r = await attacker.post(
            "/v1/auth/login",
            json={"tenant": tenant.id, "username": "ghost", "password": "guess-guess-guess"},
        )
    assert r.status_code == 429


async def test_refresh_tokens_are_single_use_and_a_replay_ends_the_session(client, tenant):
    user = await make_user(tenant)
    grant = (await login(client, tenant, user)).json()
    r = await client.post("/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["session_id"] == grant["session_id"]
    assert second["refresh_token"] != grant["refresh_token"]
    r = await client.post("/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]})
    assert r.status_code == 401
    # the replay revoked the session: the new tokens no longer work either
    me = await as_client(client, second["access_token"]).get("/v1/auth/me")
    assert me.status_code == 401
    r = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401


async def test_sessions_are_listed_with_their_device_and_revoked_one_or_all(client, tenant):
    user = await make_user(tenant)
    a = as_client(client, (await login(client, tenant, user)).json()["access_token"])
    grant_b = (await login(client, tenant, user)).json()
    b = as_client(client, grant_b["access_token"])
    listed = (await a.get("/v1/auth/sessions")).json()
    assert len(listed) == 2
    assert {s["user_agent"] for s in listed} == {"pytest-device"}
    assert sum(s["current"] for s in listed) == 1
    t0 = time.monotonic()
    r = await a.delete(f"/v1/auth/sessions/{grant_b['session_id']}")
    assert r.status_code == 204
    assert (await b.get("/v1/auth/me")).status_code == 401
    assert time.monotonic() - t0 < 1.0
    assert (await a.get("/v1/auth/me")).status_code == 200
    c = as_client(client, (await login(client, tenant, user)).json()["access_token"])
    r = await a.delete("/v1/auth/sessions")
    assert r.json() == {"revoked": 2}
    assert (await a.get("/v1/auth/me")).status_code == 401
    assert (await c.get("/v1/auth/me")).status_code == 401


async def test_viewer_cannot_write_and_a_role_change_ends_sessions(client, tenant):
    user = await make_user(tenant, "viewer")
    op = as_client(client, (await login(client, tenant, user)).json()["access_token"])
    assert (await op.get("/v1/models")).status_code == 200
    r = await op.put("/v1/models/credit/monitoring", json={})
    assert r.status_code == 403
    assert "write" in r.json()["detail"]
    assert (await op.post("/v1/auth/users", json={})).status_code == 403
    r = await tenant.admin.patch(f"/v1/auth/users/{user['id']}", json={"role": "ml-engineer"})
    assert r.status_code == 200
    assert (await op.get("/v1/models")).status_code == 401
    op = as_client(client, (await login(client, tenant, user)).json()["access_token"])
    r = await op.put("/v1/models/credit/monitoring", json={})
    assert r.status_code == 200, r.text


async def test_a_disabled_user_cannot_log_in(client, tenant):
    user = await make_user(tenant)
    r = await tenant.admin.patch(f"/v1/auth/users/{user['id']}", json={"disabled": True})
    assert r.json()["disabled"] is True
    assert (await login(client, tenant, user)).status_code == 401


@pytest.mark.parametrize("role", ["viewer", "auditor"])
async def test_only_admins_rotate_keys_and_others_cannot(client, tenant, role):
    user = await make_user(tenant, role)
    op = as_client(client, (await login(client, tenant, user)).json()["access_token"])
    r = await op.post(f"/v1/auth/tenants/{tenant.id}/data-keys/rotate")
    assert r.status_code == 403
    await asyncio.sleep(0)
