"""Operator single sign-on against a real OpenID Connect provider (node's oidc-provider,
tests/oidc/provider.mjs) on loopback: the whole authorization code + PKCE flow driven with
httpx through the provider's own login form, and ingestion in-process against the real
PostgreSQL, Redis and Kafka.

Checked: a mapped group gives a session with its tenant and role (password login's tokens,
sessions and audit records); an unmapped operator is a 403; a wrong, replayed or another
browser's state and a wrong nonce are 400s; ID tokens that are expired, for another audience
or issuer, signed by another key or not signed are refused; the MFA policy per role (the IdP's
amr for SSO, TOTP enrolment for local accounts); SSO sessions are revoked like any other;
roles follow the IdP at each login.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pyotp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import RSAKey

from driftline_ingestion.app import build, create_app
from driftline_ingestion.oidc import IdTokenError, OidcClient
from driftline_ingestion.settings import IngestionSettings
from driftline_ingestion.sso_settings import GroupRule, MfaPolicy, OidcSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
OIDC_DIR = ROOT / "tests" / "oidc"
CALLBACK = "http://ingestion/v1/auth/oidc/callback"
CLIENT_ID = "driftline-ingestion"
CLIENT_SECRET = "test-client-secret-for-loopback-only"
ADMIN = {"X-Admin-Token": "driftline-dev-admin"}
PASSWORD = "correct horse battery staple"
OTP = "246810"


def _node_modules() -> None:
    """tests/oidc/node_modules as package-lock.json pins it (bootstrap.sh does this for
    `make test`; here too, so the file runs alone on a fresh checkout)."""
    stamp = OIDC_DIR / "node_modules" / ".driftline-lock"
    lock = (OIDC_DIR / "package-lock.json").read_bytes()
    if stamp.exists() and stamp.read_bytes() == lock:
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed for the OIDC provider (deploy/local/bootstrap.sh installs it)"
    cache = ROOT / ".stack" / "cache" / "npm"
    subprocess.run(
        [npm, "ci", "--cache", str(cache), "--prefer-offline", "--no-audit", "--no-fund"],
        cwd=OIDC_DIR,
        check=True,
        capture_output=True,
        timeout=300,
    )
    stamp.write_bytes(lock)


@dataclass
class Idp:
    issuer: str
    config_path: Path
    config: dict[str, Any]
    key: RSAKey
    console_port: int  # a console service's port, whose callback the client also has

    def set_groups(self, user: str, groups: list[str]) -> None:
        self.config["users"][user]["groups"] = groups
        self.save()

    def set_username(self, user: str, name: str | None) -> None:
        """The preferred_username the IdP gives (None: the login itself)."""
        self.config["users"][user].pop("username", None)
        if name is not None:
            self.config["users"][user]["username"] = name
        self.save()

    def save(self) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.config))
        tmp.replace(self.config_path)

    def add_user(self, groups: list[str], otp: str | None = None) -> str:
        login = f"op{uuid.uuid4().hex[:8]}"
        self.config["users"][login] = {
            "password": PASSWORD,
            "otp": otp or OTP,
            "groups": groups,
            "email": f"{login}@example.test",
        }
        self.set_groups(login, groups)
        return login


@pytest.fixture(scope="module")
async def idp(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Idp]:
    await asyncio.to_thread(_node_modules)
    key = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "use": "sig"}, private=True)
    console_port = free_port()
    config: dict[str, Any] = {
        "jwks": {"keys": [{**key.as_dict(private=True), "alg": "RS256"}]},
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [CALLBACK, console_callback(console_port)],
                "post_logout_redirect_uris": ["http://console.test/"],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }
        ],
        "users": {},
    }
    folder = tmp_path_factory.mktemp("oidc")
    path = folder / "provider.json"
    path.write_text(json.dumps(config))
    with (folder / "provider.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(OIDC_DIR / "provider.mjs"),
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, f"the provider did not start: {(folder / 'provider.log').read_text()}"
        issuer = json.loads(line)["issuer"]
        yield Idp(issuer, path, config, key, console_port)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def console_callback(port: int) -> str:
    return f"http://127.0.0.1:{port}/api/ingestion/v1/auth/oidc/callback"


@dataclass
class Deployment:
    """An ingestion app in-process with single sign-on on, and its tenants."""

    app: httpx.AsyncClient
    idp: Idp
    tenants: dict[str, str]  # name in the test -> tenant id
    groups: dict[str, str]  # name in the test -> IdP group
    keys: dict[str, str]  # name in the test -> the tenant's admin API key

    def browser(self) -> httpx.AsyncClient:
        """A fresh browser (its own cookies) on the same app."""
        return httpx.AsyncClient(
            transport=self.app._transport,
            base_url=str(self.app.base_url),
            headers={"User-Agent": "pytest-sso-browser"},
            timeout=30,
        )


def sso_settings(idp: Idp, group_map: list[GroupRule], **mfa: Any) -> IngestionSettings:
    s = IngestionSettings(environment="test")
    return s.model_copy(
        update={
            "oidc": OidcSettings(
                issuer=idp.issuer,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                redirect_uri=CALLBACK,
                scopes=["openid", "profile", "email", "groups"],
                group_map=group_map,
                return_urls=["http://console.test/"],
            ),
            "mfa": MfaPolicy(**mfa),
        }
    )


@asynccontextmanager
async def deployment(idp: Idp, **mfa: Any) -> AsyncIterator[Deployment]:
    suffix = uuid.uuid4().hex[:8]
    tenants = {"acme": f"acme{suffix}", "beta": f"beta{suffix}"}
    groups = {
        "engineers": f"acme-engineers-{suffix}",
        "admins": f"acme-admins-{suffix}",
        "viewers": f"acme-viewers-{suffix}",
        "beta": f"beta-engineers-{suffix}",
    }
    group_map = [
        GroupRule(group=groups["admins"], tenant=tenants["acme"], role="admin"),
        GroupRule(group=groups["engineers"], tenant=tenants["acme"], role="ml-engineer"),
        GroupRule(group=groups["viewers"], tenant=tenants["acme"], role="viewer"),
        GroupRule(group=groups["beta"], tenant=tenants["beta"], role="ml-engineer"),
    ]
    s = sso_settings(idp, group_map, **mfa)
    app = create_app(s, build(s))
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://ingestion", timeout=30
        ) as c,
    ):
        keys = {}
        for name, tid in tenants.items():
            r = await c.post("/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN)
            assert r.status_code == 201, r.text
            keys[name] = r.json()["api_key"]
        yield Deployment(c, idp, tenants, groups, keys)


@pytest.fixture(scope="module")
async def dep(stack, idp: Idp) -> AsyncIterator[Deployment]:
    async with deployment(idp, required_roles=["admin"]) as d:
        yield d


async def authorize(
    idp: Idp,
    browser: httpx.AsyncClient,
    login: str,
    *,
    password: str = PASSWORD,
    otp: str = "",
    params: dict[str, str] | None = None,
    tamper: Callable[[str], str] | None = None,
    start: str = "/v1/auth/oidc/login",
    callback: str = CALLBACK,
) -> str:
    """Starts the login at ingestion and signs in at the IdP's form, as a browser does;
    returns the callback URL the IdP redirects to (not yet requested)."""
    r = await browser.get(start, params=params or {})
    assert r.status_code == 302, r.text
    url = r.headers["location"]
    q = parse_qs(urlparse(url).query)
    assert url.startswith(idp.issuer + "/auth?")
    assert q["code_challenge_method"] == ["S256"]
    assert len(q["code_challenge"][0]) == 43
    assert q["response_type"] == ["code"]
    assert q["client_id"] == [CLIENT_ID]
    assert len(q["state"][0]) >= 32
    assert len(q["nonce"][0]) >= 32
    if tamper is not None:
        url = tamper(url)
    async with httpx.AsyncClient(timeout=30) as user_agent:  # the IdP's side of the browser
        r = await user_agent.get(url)
        for _ in range(10):
            if r.status_code not in (302, 303):
                break
            nxt = urljoin(str(r.url), r.headers["location"])
            if nxt.startswith(callback):
                return nxt
            r = await user_agent.get(nxt)
        assert r.status_code == 200, r.text
        form = re.search(r'<form method="post" action="([^"]+)"', r.text)
        assert form, r.text
        r = await user_agent.post(
            urljoin(str(r.url), form.group(1)),
            data={"login": login, "password": password, "otp": otp},
        )
        for _ in range(10):
            assert r.status_code in (302, 303), r.text
            nxt = urljoin(str(r.url), r.headers["location"])
            if nxt.startswith(callback):
                return nxt
            r = await user_agent.get(nxt)
    raise AssertionError("the IdP never redirected back to ingestion")


async def sso_login(
    d: Deployment, login: str, browser: httpx.AsyncClient | None = None, **kw: Any
) -> httpx.Response:
    own = browser is None
    b = browser or d.browser()
    try:
        callback = await authorize(d.idp, b, login, **kw)
        return await b.get(callback.removeprefix("http://ingestion"))
    finally:
        if own:
            await b.aclose()


def bearer(d: Deployment, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=d.app._transport,
        base_url=str(d.app.base_url),
        headers={"Authorization": f"Bearer {token}"},
    )


async def audit_records(stack, since: dict[TopicPartition, int], tenant: str) -> list[dict]:
    """The audit records of `tenant` published after `since` (end offsets read before)."""
    c = AIOKafkaConsumer(bootstrap_servers=stack.kafka.bootstrap_servers, enable_auto_commit=False)
    await c.start()
    try:
        parts = list(since)
        c.assign(parts)
        for tp, off in since.items():
            c.seek(tp, off)
        ends = await c.end_offsets(parts)
        out: list[dict] = []
        deadline = time.monotonic() + 30
        while [tp for tp in parts if await c.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "could not read the audit topic to its end"
            for batch in (await c.getmany(timeout_ms=500)).values():
                for m in batch:
                    rec = json.loads(m.value)
                    if rec.get("tenant_id") == tenant:
                        out.append(rec)
        return out
    finally:
        await c.stop()


async def audit_ends(stack) -> dict[TopicPartition, int]:
    from driftline_core.events.audit import TOPIC

    c = AIOKafkaConsumer(bootstrap_servers=stack.kafka.bootstrap_servers)
    await c.start()
    try:
        parts = [TopicPartition(TOPIC, p) for p in c.partitions_for_topic(TOPIC) or ()]
        if not parts:
            meta = await c._client.fetch_all_metadata()
            parts = [TopicPartition(TOPIC, p) for p in meta.partitions_for_topic(TOPIC) or ()]
        assert parts, f"no partitions for {TOPIC}"
        return dict(await c.end_offsets(parts))
    finally:
        await c.stop()


# --- the flow ------------------------------------------------------------------------------


async def test_a_mapped_group_gets_a_session_with_its_tenant_and_role(dep, stack) -> None:
    login = dep.idp.add_user([dep.groups["engineers"], "some-unmapped-group"])
    before = await audit_ends(stack)
    r = await sso_login(dep, login)
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["tenant_id"] == dep.tenants["acme"]
    assert grant["role"] == "ml-engineer"
    assert grant["token_type"] == "Bearer"
    assert grant["refresh_token"].startswith("dlr_")
    assert grant["sso"] is True
    assert grant["mfa_enabled"] is False
    async with bearer(dep, grant["access_token"]) as op:
        me = (await op.get("/v1/auth/me")).json()
        assert me["tenant_id"] == dep.tenants["acme"]
        assert me["role"] == "ml-engineer"
        assert me["kind"] == "user"
        assert me["name"] == login
        assert me["session_id"] == grant["session_id"]
        assert set(me["permissions"]) == {"read", "write"}
        sessions = (await op.get("/v1/auth/sessions")).json()
        assert [s["session_id"] for s in sessions] == [grant["session_id"]]
        assert sessions[0]["user_agent"] == "pytest-sso-browser"
        # the role's limits hold: an ml-engineer is no admin
        assert (await op.get("/v1/auth/users")).status_code == 403
    # the refresh token works as password login's does
    r = await dep.app.post("/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]})
    assert r.status_code == 200
    assert r.json()["role"] == "ml-engineer"
    # provisioned just in time, and it cannot log in with a password
    async with bearer(dep, dep.keys["acme"]) as a:
        users = {u["username"]: u for u in (await a.get("/v1/auth/users")).json()}
    assert users[login]["role"] == "ml-engineer"
    assert users[login]["created_by"] == f"oidc:{dep.idp.issuer}"
    assert users[login]["identity_provider"] == dep.idp.issuer
    # (from an address of its own: a failed login counts against the client's address)
    elsewhere = httpx.ASGITransport(
        app=dep.app._transport.app,  # type: ignore[attr-defined]
        client=(f"10.9.{uuid.uuid4().int % 250}.8", 40000),
    )
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://ingestion") as other:
        r = await other.post(
            "/v1/auth/login",
            json={"tenant": dep.tenants["acme"], "username": login, "password": PASSWORD},
        )
    assert r.status_code == 401
    records = await audit_records(stack, before, dep.tenants["acme"])
    logins = [x for x in records if x["action"] == "auth.login" and x["outcome"] == "success"]
    assert [x["details"]["session_id"] for x in logins] == [grant["session_id"]]
    assert logins[0]["details"]["method"] == "oidc"
    assert logins[0]["details"]["amr"] == ["pwd"]
    assert logins[0]["actor"]["id"] == f"user:{login}"
    created = [x for x in records if x["action"] == "user.create"]
    assert created
    assert created[0]["details"]["username"] == login


async def test_an_operator_with_no_mapped_group_is_refused_and_not_provisioned(dep) -> None:
    login = dep.idp.add_user(["marketing", "everyone"])
    r = await sso_login(dep, login)
    assert r.status_code == 403, r.text
    assert "none of your identity provider groups is mapped" in r.json()["detail"]
    async with bearer(dep, dep.keys["acme"]) as a:
        names = {u["username"] for u in (await a.get("/v1/auth/users")).json()}
    assert login not in names


async def test_groups_in_several_tenants_choose_one_with_the_tenant_parameter(dep) -> None:
    login = dep.idp.add_user([dep.groups["viewers"], dep.groups["beta"]])
    r = await sso_login(dep, login)
    assert r.status_code == 400, r.text
    assert "several tenants" in r.json()["detail"], r.text
    r = await sso_login(dep, login, params={"tenant": dep.tenants["beta"]})
    assert r.status_code == 200, r.text
    assert (r.json()["tenant_id"], r.json()["role"]) == (dep.tenants["beta"], "ml-engineer")
    r = await sso_login(dep, login, params={"tenant": dep.tenants["acme"]})
    assert (r.json()["tenant_id"], r.json()["role"]) == (dep.tenants["acme"], "viewer")
    r = await sso_login(dep, login, params={"tenant": "nosuchtenant"})
    assert r.status_code == 403
    assert "no role in tenant" in r.json()["detail"]


async def test_a_wrong_replayed_or_foreign_state_is_a_400(dep) -> None:
    login = dep.idp.add_user([dep.groups["engineers"]])
    async with dep.browser() as b:
        callback = await authorize(dep.idp, b, login)
        q = parse_qs(urlparse(callback).query)
        path = urlparse(callback).path
        r = await b.get(path, params={"code": q["code"][0], "state": "not-the-state"})
        assert r.status_code == 400, r.text
        assert "login state" in r.json()["detail"], r.text
        r = await b.get(path, params={"code": q["code"][0]})
        assert r.status_code == 400
        assert "no state" in r.json()["detail"]
        r = await b.get(callback.removeprefix("http://ingestion"))
        assert r.status_code == 200, r.text
        # the same callback again: the state was used
        r = await b.get(callback.removeprefix("http://ingestion"))
        assert r.status_code == 400
        assert "unknown, used or expired" in r.json()["detail"]
    # another browser brings a valid state and code it did not start (login CSRF)
    async with dep.browser() as victim, dep.browser() as attacker:
        callback = await authorize(dep.idp, attacker, login)
        r = await victim.get(callback.removeprefix("http://ingestion"))
        assert r.status_code == 400
        assert "does not belong to this browser" in r.json()["detail"]


async def test_a_nonce_the_login_did_not_send_is_a_400(dep) -> None:
    login = dep.idp.add_user([dep.groups["engineers"]])

    def other_nonce(url: str) -> str:
        return re.sub(r"nonce=[^&]+", "nonce=" + "x" * 43, url)

    r = await sso_login(dep, login, tamper=other_nonce)
    assert r.status_code == 400, r.text
    assert "nonce" in r.json()["detail"]


async def test_a_code_for_another_pkce_verifier_is_refused(dep) -> None:
    login = dep.idp.add_user([dep.groups["engineers"]])

    def other_challenge(url: str) -> str:
        return re.sub(r"code_challenge=[^&]+", "code_challenge=" + "A" * 43, url)

    r = await sso_login(dep, login, tamper=other_challenge)
    assert r.status_code == 400, r.text
    assert "refused the authorization code: invalid_grant" in r.json()["detail"]


async def test_an_idp_error_on_the_callback_is_a_401_with_the_reason(dep) -> None:
    async with dep.browser() as b:
        r = await b.get("/v1/auth/oidc/login")
        state = parse_qs(urlparse(r.headers["location"]).query)["state"][0]
        r = await b.get(
            "/v1/auth/oidc/callback",
            params={"state": state, "error": "access_denied", "error_description": "no"},
        )
    assert r.status_code == 401
    assert "access_denied (no)" in r.json()["detail"]


async def test_return_to_gets_the_session_in_the_fragment_and_only_allowed_addresses(dep) -> None:
    login = dep.idp.add_user([dep.groups["engineers"]])
    async with dep.browser() as b:
        r = await b.get("/v1/auth/oidc/login", params={"return_to": "http://evil.test/x"})
        assert r.status_code == 400
        assert "return_to" in r.json()["detail"]
        callback = await authorize(
            dep.idp, b, login, params={"return_to": "http://console.test/sso"}
        )
        r = await b.get(callback.removeprefix("http://ingestion"))
    assert r.status_code == 303, r.text
    target = urlparse(r.headers["location"])
    assert (target.netloc, target.path, target.query) == ("console.test", "/sso", "")
    frag = parse_qs(target.fragment)
    assert frag["tenant_id"] == [dep.tenants["acme"]]
    assert frag["role"] == ["ml-engineer"]
    async with bearer(dep, frag["access_token"][0]) as op:
        assert (await op.get("/v1/auth/me")).json()["session_id"] == frag["session_id"][0]
    # an error goes back to the console too, as a fragment
    async with dep.browser() as b:
        unmapped = dep.idp.add_user(["nobody"])
        callback = await authorize(
            dep.idp, b, unmapped, params={"return_to": "http://console.test/"}
        )
        r = await b.get(callback.removeprefix("http://ingestion"))
    assert r.status_code == 303
    frag = parse_qs(urlparse(r.headers["location"]).fragment)
    assert frag["error"] == ["403"]
    assert "mapped" in frag["error_description"][0]


# --- sessions and roles ------------------------------------------------------------------


async def test_sso_sessions_are_revoked_like_password_sessions(dep) -> None:
    login = dep.idp.add_user([dep.groups["engineers"]])
    first = (await sso_login(dep, login)).json()
    second = (await sso_login(dep, login)).json()
    async with bearer(dep, first["access_token"]) as op:
        assert (await op.post("/v1/auth/logout")).status_code == 204
        assert (await op.get("/v1/auth/me")).status_code == 401
    r = await dep.app.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401
    async with bearer(dep, second["access_token"]) as op:
        assert (await op.get("/v1/auth/me")).status_code == 200
        user_id = (await op.get("/v1/auth/me")).json()["id"]
    # an admin ends every session of the user
    async with bearer(dep, dep.keys["acme"]) as a:
        r = await a.delete("/v1/auth/sessions", params={"user_id": user_id})
        assert r.status_code == 200, r.text
        assert r.json()["revoked"] == 1, r.text
    async with bearer(dep, second["access_token"]) as op:
        assert (await op.get("/v1/auth/me")).status_code == 401
    # and a user disabled in Driftline cannot come back through the IdP
    async with bearer(dep, dep.keys["acme"]) as a:
        r = await a.patch(f"/v1/auth/users/{user_id}", json={"disabled": True})
        assert r.status_code == 200, r.text
    r = await sso_login(dep, login)
    assert r.status_code == 403
    assert "disabled" in r.json()["detail"]


async def test_the_role_follows_the_idp_at_each_login(dep) -> None:
    login = dep.idp.add_user([dep.groups["viewers"]])
    viewer = (await sso_login(dep, login)).json()
    assert viewer["role"] == "viewer"
    dep.idp.set_groups(login, [dep.groups["engineers"]])
    engineer = (await sso_login(dep, login)).json()
    assert engineer["role"] == "ml-engineer"
    assert engineer["session_id"] != viewer["session_id"]
    # the viewer session carried the old role: it was ended
    async with bearer(dep, viewer["access_token"]) as op:
        assert (await op.get("/v1/auth/me")).status_code == 401
    async with bearer(dep, engineer["access_token"]) as op:
        me = (await op.get("/v1/auth/me")).json()
    assert me["role"] == "ml-engineer"
    async with bearer(dep, dep.keys["acme"]) as a:
        users = [u for u in (await a.get("/v1/auth/users")).json() if u["username"] == login]
    assert [u["role"] for u in users] == ["ml-engineer"]  # one user, updated
    # out of every mapped group: refused at the next login
    dep.idp.set_groups(login, [])
    assert (await sso_login(dep, login)).status_code == 403


async def test_a_name_another_user_has_is_never_taken(dep) -> None:
    first = dep.idp.add_user([dep.groups["engineers"]])
    assert (await sso_login(dep, first)).status_code == 200
    second = dep.idp.add_user([dep.groups["engineers"]])
    dep.idp.set_username(second, first)
    r = await sso_login(dep, second)
    assert r.status_code == 409, r.text
    assert f"already has a user named {first!r}" in r.json()["detail"]
    dep.idp.set_username(second, None)
    r = await sso_login(dep, second)
    assert r.json()["username"] == second
    # renamed at the IdP onto the other's name later: it keeps its own, and its role follows
    dep.idp.set_username(second, first)
    dep.idp.set_groups(second, [dep.groups["viewers"]])
    r = await sso_login(dep, second)
    assert r.status_code == 200, r.text
    assert r.json()["username"] == second
    assert r.json()["role"] == "viewer"
    async with bearer(dep, dep.keys["acme"]) as a:
        users = {u["username"]: u for u in (await a.get("/v1/auth/users")).json()}
    assert users[first]["role"] == "ml-engineer"
    assert users[second]["role"] == "viewer"


# --- MFA policy ----------------------------------------------------------------------------


async def test_a_role_that_requires_mfa_needs_the_idp_to_assert_it(dep) -> None:
    login = dep.idp.add_user([dep.groups["admins"]])
    r = await sso_login(dep, login)
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert "role 'admin' requires multi-factor authentication" in detail
    assert "'pwd'" in detail
    r = await sso_login(dep, login, otp=OTP)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "admin"
    assert r.json()["mfa_enabled"] is True
    async with bearer(dep, r.json()["access_token"]) as op:
        assert (await op.get("/v1/auth/users")).status_code == 200


async def test_a_policy_can_refuse_sso_for_a_role_and_accept_an_acr(stack, idp) -> None:
    async with deployment(idp, required_roles=["admin", "ml-engineer"], sso="refuse") as d:
        login = d.idp.add_user([d.groups["admins"]])
        r = await sso_login(d, login, otp=OTP)
        assert r.status_code == 403
        assert "may not log in with single sign-on" in r.json()["detail"]
        viewer = d.idp.add_user([d.groups["viewers"]])
        assert (await sso_login(d, viewer)).status_code == 200  # viewers need no MFA
    async with deployment(
        idp, required_roles=["admin"], sso_amr=[], sso_acr=["urn:driftline:test:mfa"]
    ) as d:
        login = d.idp.add_user([d.groups["admins"]])
        assert (await sso_login(d, login)).status_code == 403
        r = await sso_login(d, login, otp=OTP)
        assert r.status_code == 200, r.text
        assert r.json()["mfa_enabled"] is True, r.text


async def test_a_local_admin_without_totp_must_enrol_before_getting_a_session(dep) -> None:
    tenant = dep.tenants["acme"]
    name = f"local{uuid.uuid4().hex[:8]}"
    async with bearer(dep, dep.keys["acme"]) as a:
        for user, role in ((name, "admin"), (name + "v", "viewer")):
            r = await a.post(
                "/v1/auth/users", json={"username": user, "password": PASSWORD, "role": role}
            )
            assert r.status_code == 201, r.text
    creds = {"tenant": tenant, "username": name, "password": PASSWORD}
    # a viewer's role does not require MFA
    r = await dep.app.post("/v1/auth/login", json={**creds, "username": name + "v"})
    assert r.status_code == 200, r.text
    r = await dep.app.post("/v1/auth/login", json=creds)
    assert r.status_code == 403, r.text
    assert "requires multi-factor authentication" in r.json()["detail"]
    assert "access_token" not in r.json()
    token = r.headers["x-mfa-enrollment-token"]
    # the token is no access token
    async with bearer(dep, token) as op:
        assert (await op.get("/v1/auth/me")).status_code == 401
    r = await dep.app.post("/v1/auth/mfa/required/enroll", json={"enrollment_token": token})
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await dep.app.post(
        "/v1/auth/mfa/required/confirm",
        json={"enrollment_token": token, "code": pyotp.TOTP(secret).at(time.time() - 30)},
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["backup_codes"]) == 10, r.text
    r = await dep.app.post("/v1/auth/mfa/required/enroll", json={"enrollment_token": token})
    assert r.status_code == 401  # spent
    # still no session without a code; with one, the admin is in
    r = await dep.app.post("/v1/auth/login", json=creds)
    assert r.status_code == 401
    assert "TOTP code" in r.json()["detail"]
    r = await dep.app.post("/v1/auth/login", json={**creds, "totp": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "admin", r.text
    assert r.json()["mfa_enabled"] is True


async def test_sso_is_off_without_an_issuer(client) -> None:
    r = await client.get("/v1/auth/oidc/config")
    assert r.json() == {"enabled": False, "login_url": None, "issuer": None, "logout_url": None}
    for route in ("login", "logout"):
        r = await client.get(f"/v1/auth/oidc/{route}")
        assert r.status_code == 404
        assert "not configured" in r.json()["detail"]


async def test_the_config_route_tells_the_console_where_to_start(dep) -> None:
    r = await dep.app.get("/v1/auth/oidc/config")
    assert r.json() == {
        "enabled": True,
        "login_url": "/v1/auth/oidc/login",
        "issuer": dep.idp.issuer,
        "logout_url": "/v1/auth/oidc/logout",
    }


async def test_rp_initiated_logout_ends_the_idp_session(dep) -> None:
    """GET /v1/auth/oidc/logout sends the browser to the IdP's end_session_endpoint (from its
    discovery document); once the user confirms there, the IdP's session is over (the next
    login asks for the password again) and the browser is back at return_to."""
    login = dep.idp.add_user([dep.groups["engineers"]])
    browser = dep.browser()
    async with browser, httpx.AsyncClient(timeout=30) as at_idp:  # one browser, both sides

        async def to_idp(path: str, **params: str) -> httpx.Response:
            r = await browser.get(path, params=params)
            assert r.status_code == 302, r.text
            return await at_idp.get(r.headers["location"])

        async def to_callback(r: httpx.Response) -> httpx.Response:
            for _ in range(10):
                assert r.status_code in (302, 303), r.text
                nxt = urljoin(str(r.url), r.headers["location"])
                if nxt.startswith(CALLBACK):
                    return await browser.get(nxt.removeprefix("http://ingestion"))
                r = await at_idp.get(nxt)
            raise AssertionError("the IdP never redirected back to ingestion")

        def sign_in_form(r: httpx.Response) -> str | None:
            form = re.search(r'<form method="post" action="([^"]+)"', r.text)
            return urljoin(str(r.url), form.group(1)) if r.status_code == 200 and form else None

        async def follow(r: httpx.Response) -> httpx.Response:
            while r.status_code in (302, 303) and not sign_in_form(r):
                nxt = urljoin(str(r.url), r.headers["location"])
                if nxt.startswith(CALLBACK):
                    break
                r = await at_idp.get(nxt)
            return r

        # the first login signs in at the IdP's form
        r = await follow(await to_idp("/v1/auth/oidc/login"))
        action = sign_in_form(r)
        assert action, r.text
        r = await at_idp.post(action, data={"login": login, "password": PASSWORD, "otp": ""})
        assert (await to_callback(r)).status_code == 200
        # the IdP's session is open: the next login comes straight back, without the form
        r = await follow(await to_idp("/v1/auth/oidc/login"))
        assert sign_in_form(r) is None, "the IdP asked again before any logout"
        assert (await to_callback(r)).status_code == 200

        # RP-initiated logout: to the IdP's end-session endpoint, for this client
        r = await browser.get("/v1/auth/oidc/logout", params={"return_to": "http://console.test/"})
        assert r.status_code == 302, r.text
        url = r.headers["location"]
        meta = (await at_idp.get(dep.idp.issuer + "/.well-known/openid-configuration")).json()
        assert url.startswith(meta["end_session_endpoint"] + "?")
        q = parse_qs(urlparse(url).query)
        assert q == {"client_id": [CLIENT_ID], "post_logout_redirect_uri": ["http://console.test/"]}
        r = await at_idp.get(url)  # the IdP asks to confirm
        assert r.status_code == 200, r.text
        form = re.search(r'<form id="op.logoutForm" method="post" action="([^"]+)">', r.text)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', r.text)
        assert form, r.text
        assert xsrf, r.text
        r = await at_idp.post(
            urljoin(str(r.url), form.group(1)), data={"xsrf": xsrf.group(1), "logout": "yes"}
        )
        assert r.status_code in (302, 303), r.text
        assert r.headers["location"] == "http://console.test/"

        # the IdP's session is over: the next login shows the form again
        r = await follow(await to_idp("/v1/auth/oidc/login"))
        assert sign_in_form(r), f"the IdP still had a session after the logout: {r.status_code}"

        # return_to must be an allowed address, as at login
        r = await browser.get("/v1/auth/oidc/logout", params={"return_to": "http://evil.test/"})
        assert r.status_code == 400


# --- ID token validation against the provider's keys ---------------------------------------


@pytest.fixture(scope="module")
async def oidc_client(idp) -> AsyncIterator[OidcClient]:
    c = OidcClient(
        OidcSettings(
            issuer=idp.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uri=CALLBACK,
            leeway_s=5,
        )
    )
    yield c
    await c.stop()


def id_token(idp: Idp, key: RSAKey | None = None, header: dict | None = None, **claims) -> str:
    now = int(time.time())
    body = {
        "iss": idp.issuer,
        "aud": CLIENT_ID,
        "sub": "someone",
        "iat": now,
        "exp": now + 300,
        "nonce": "n" * 43,
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(header or {"alg": "RS256", "kid": "idp-1"}, body, key or idp.key)


@pytest.mark.parametrize(
    ("case", "change", "message"),
    [
        ("expired", {"exp": -60}, "expired"),
        ("issued in the future", {"iat": 3600, "exp": 7200}, "issued in the future"),
        ("another audience", {"aud": "someone-else"}, "aud"),
        ("another issuer", {"iss": "http://127.0.0.1:1"}, "iss"),
        ("no expiry", {"exp": None}, "exp"),
        ("no subject", {"sub": None}, "sub"),
        ("another party", {"azp": "someone-else"}, "azp"),
    ],
)
async def test_id_tokens_with_bad_claims_are_refused(
    oidc_client, idp, case: str, change: dict, message: str
) -> None:
    now = int(time.time())
    # times are offsets from now; None leaves the claim out
    claims = {k: now + v if k in ("exp", "iat") and v is not None else v for k, v in change.items()}
    token = id_token(idp, **claims)
    with pytest.raises(IdTokenError) as e:
        await oidc_client.verify_id_token(token, "n" * 43)
    assert e.value.status == 401, (case, str(e.value))
    assert message in str(e.value), (case, str(e.value))


async def test_a_valid_id_token_signed_by_the_idp_is_accepted(oidc_client, idp) -> None:
    claims = await oidc_client.verify_id_token(id_token(idp, groups=["g"]), "n" * 43)
    assert claims["sub"] == "someone"
    assert claims["groups"] == ["g"]
    with pytest.raises(IdTokenError) as e:
        await oidc_client.verify_id_token(id_token(idp), "m" * 43)
    assert e.value.status == 400
    assert "nonce" in str(e.value)


async def test_forged_id_tokens_are_refused(oidc_client, idp) -> None:
    forger = RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)
    with pytest.raises(IdTokenError, match="bad_signature"):
        await oidc_client.verify_id_token(id_token(idp, key=forger), "n" * 43)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "not-published"}, private=True)
    with pytest.raises(IdTokenError, match="key the IdP does not publish"):
        await oidc_client.verify_id_token(
            id_token(idp, key=stranger, header={"alg": "RS256", "kid": "not-published"}),
            "n" * 43,
        )
    # an HMAC token keyed with the client secret (algorithm confusion) and an unsigned one
    from joserfc.jwk import OctKey

    hs = OctKey.import_key(CLIENT_SECRET.encode())
    with pytest.raises(IdTokenError):
        await oidc_client.verify_id_token(
            id_token(idp, key=hs, header={"alg": "HS256", "kid": "idp-1"}), "n" * 43
        )
    good = id_token(idp)
    head, body, _ = good.split(".")
    import base64

    none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    for token in (f"{none}.{body}.", f"{head}.{body}.", "not-a-jwt"):
        with pytest.raises(IdTokenError):
            await oidc_client.verify_id_token(token, "n" * 43)
    # a tampered payload under the IdP's real signature
    claims = json.loads(base64.urlsafe_b64decode(body + "==="))
    claims["sub"] = "admin"
    evil = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(IdTokenError, match="bad_signature"):
        await oidc_client.verify_id_token(f"{head}.{evil}.{good.split('.')[2]}", "n" * 43)


# --- through the console service, as the web console's browser does -----------------------


@asynccontextmanager
async def served(app: Any, port: int) -> AsyncIterator[None]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 90
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            assert time.monotonic() < deadline, f"no server on port {port}"
            await asyncio.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def test_sso_and_the_mfa_enrolment_through_the_console_proxy(stack, idp) -> None:
    """ingestion and the console service on loopback ports: the login's redirect, the state
    cookie, the callback and the grant in the console URL's fragment all pass the proxy."""
    from driftline_console.app import build as build_console
    from driftline_console.app import create_app as console_app
    from driftline_console.settings import ConsoleOptions, ConsoleSettings, Upstreams

    console = f"http://127.0.0.1:{idp.console_port}"
    ingestion_port = free_port()
    tid, group = f"cons{uuid.uuid4().hex[:8]}", f"console-admins-{uuid.uuid4().hex[:6]}"
    si = sso_settings(
        idp, [GroupRule(group=group, tenant=tid, role="admin")], required_roles=["admin"]
    )
    si = si.model_copy(
        update={
            "oidc": si.oidc.model_copy(
                update={
                    "redirect_uri": console_callback(idp.console_port),
                    "return_urls": [console + "/"],
                }
            )
        }
    )
    sc = ConsoleSettings(
        environment="test",
        console=ConsoleOptions(upstreams=Upstreams(ingestion=f"http://127.0.0.1:{ingestion_port}")),
    )
    async with (
        served(create_app(si, build(si)), ingestion_port),
        served(console_app(sc, build_console(sc)), idp.console_port),
        httpx.AsyncClient(base_url=console, timeout=30) as browser,
    ):
        r = await browser.post(
            "/api/ingestion/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
        r = await browser.get("/api/ingestion/v1/auth/oidc/config")
        assert r.json()["enabled"] is True
        login = idp.add_user([group])
        callback = await authorize(
            idp,
            browser,
            login,
            otp=OTP,
            params={"return_to": console + "/#/fleet"},
            start="/api/ingestion/v1/auth/oidc/login",
            callback=console_callback(idp.console_port),
        )
        assert browser.cookies.get("dl_oidc_state"), "the state cookie came through the proxy"
        r = await browser.get(callback.removeprefix(console))
        assert r.status_code == 303, r.text
        target = urlparse(r.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == console + "/"
        frag = parse_qs(target.fragment)
        assert frag["role"] == ["admin"]
        assert frag["tenant_id"] == [tid]
        r = await browser.get(
            "/api/ingestion/v1/auth/me",
            headers={"Authorization": f"Bearer {frag['access_token'][0]}"},
        )
        assert r.json()["name"] == login
        assert r.json()["role"] == "admin"
        # the required-MFA answer of a local admin keeps its enrolment header through the proxy
        name = f"local{uuid.uuid4().hex[:8]}"
        r = await browser.post(
            "/api/ingestion/v1/auth/users",
            json={"username": name, "password": PASSWORD, "role": "admin"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 201, r.text
        r = await browser.post(
            "/api/ingestion/v1/auth/login",
            json={"tenant": tid, "username": name, "password": PASSWORD},
        )
        assert r.status_code == 403, r.text
        token = r.headers["x-mfa-enrollment-token"]
        r = await browser.post(
            "/api/ingestion/v1/auth/mfa/required/enroll", json={"enrollment_token": token}
        )
        assert r.status_code == 200, r.text
        assert r.json()["otpauth_uri"].startswith("otpauth://totp/")
