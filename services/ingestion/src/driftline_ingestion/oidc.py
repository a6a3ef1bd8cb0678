"""Operator single sign-on with OpenID Connect: the authorization code flow with PKCE (S256).

- `GET /v1/auth/oidc/login` keeps a fresh state, nonce and PKCE verifier in Redis (single use,
  `state_ttl_s`), sets the state as an HttpOnly cookie, and redirects to the IdP's
  authorization endpoint (from its `.well-known/openid-configuration`).
- `GET /v1/auth/oidc/callback` takes the state back (unknown, used, expired or another
  browser's: 400), exchanges the code with the verifier at the token endpoint, and
  validates the ID token: signature against the IdP's JWKS (joserfc; read again once for an
  unknown key id), issuer, audience, authorized party, expiry, nonce (a mismatch: 400),
  at_hash (Authlib's `CodeIDToken`).
- The operator's groups (`groups_claim`) are mapped to a tenant and role by `group_map`; no
  mapped group is a 403. The operator's user is provisioned just in time, keyed by (tenant,
  issuer, subject); its role follows the IdP at every login (a change ends its sessions).
- The MFA policy (`MfaPolicy`): for a role that requires MFA, the IdP's amr/acr must assert
  it, or SSO is refused for the role.
- The session is the one password login makes (`Sessions.create`, the same access and
  refresh tokens, revocation and `auth.login` audit records).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import httpx
import redis.asyncio as aioredis
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from prometheus_client import CollectorRegistry, Counter

from driftline_core.audit import AuditEmitter
from driftline_core.events import Actor, Resource

from .identity import PASSWORDS, Identity
from .responses import OidcConfig, SsoGrant
from .sso_settings import MfaPolicy, OidcSettings

__all__ = ["IdTokenError", "OidcClient", "SsoLogin", "oidc_router"]

log = logging.getLogger(__name__)

STATE_COOKIE = "dl_oidc_state"
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"


class IdTokenError(Exception):
    """The ID token is not valid; `status` 400 for a nonce mismatch, else 401."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: list[str]
    # RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0); None: the IdP has none
    end_session_endpoint: str | None = None


class OidcClient:
    """The IdP as Driftline's client sees it: discovery, JWKS, authorization URL, code
    exchange and ID token validation."""

    def __init__(self, settings: OidcSettings, http: httpx.AsyncClient | None = None) -> None:
        self.s = settings
        self._http = http or httpx.AsyncClient(timeout=settings.http_timeout_s)
        self._meta: tuple[float, ProviderMetadata] | None = None
        self._jwks: tuple[float, KeySet] | None = None

    async def start(self) -> None:
        """Nothing: the IdP is read at the first login, so ingestion starts without it."""

    async def stop(self) -> None:
        await self._http.aclose()

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            r = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as e:
            raise HTTPException(502, f"the identity provider is unreachable ({what}): {e}") from e
        if r.status_code != 200:
            raise HTTPException(502, f"the identity provider's {what} answered {r.status_code}")
        try:
            body = r.json()
        except ValueError as e:
            raise HTTPException(502, f"the identity provider's {what} is not JSON") from e
        if not isinstance(body, dict):
            raise HTTPException(502, f"the identity provider's {what} is not a JSON object")
        return body

    async def metadata(self) -> ProviderMetadata:
        now = time.monotonic()
        if self._meta is not None and now - self._meta[0] < self.s.metadata_ttl_s:
            return self._meta[1]
        url = self.s.issuer.rstrip("/") + "/.well-known/openid-configuration"
        d = await self._get_json(url, "discovery document")
        if d.get("issuer") != self.s.issuer:
            raise HTTPException(
                502,
                f"the discovery document names issuer {d.get('issuer')!r}, "
                f"not the configured {self.s.issuer!r}",
            )
        missing = [
            k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if k not in d
        ]
        if missing:
            raise HTTPException(502, f"the discovery document lacks {', '.join(missing)}")
        offered = d.get("id_token_signing_alg_values_supported") or ["RS256"]
        algs = [a for a in self.s.algorithms if a in offered]
        if not algs:
            raise HTTPException(
                502,
                f"no accepted ID token algorithm among the IdP's {offered} ({self.s.algorithms})",
            )
        meta = ProviderMetadata(
            issuer=d["issuer"],
            authorization_endpoint=d["authorization_endpoint"],
            token_endpoint=d["token_endpoint"],
            jwks_uri=d["jwks_uri"],
            algorithms=algs,
            end_session_endpoint=d.get("end_session_endpoint") or None,
        )
        self._meta = (now, meta)
        return meta

    async def keys(self, *, fresh: bool = False) -> KeySet:
        now = time.monotonic()
        if not fresh and self._jwks is not None and now - self._jwks[0] < self.s.metadata_ttl_s:
            return self._jwks[1]
        meta = await self.metadata()
        raw = await self._get_json(meta.jwks_uri, "JWKS")
        try:
            keyset = KeySet.import_key_set(raw)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as e:
            raise HTTPException(502, f"the identity provider's JWKS is not valid: {e}") from e
        self._jwks = (now, keyset)
        return keyset

    async def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        meta = await self.metadata()
        extra = {"acr_values": self.s.acr_values} if self.s.acr_values else {}
        url = prepare_grant_uri(
            meta.authorization_endpoint,
            client_id=self.s.client_id,
            response_type="code",
            redirect_uri=self.s.redirect_uri,
            scope=self.s.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            **extra,
        )
        return str(url)

    async def logout_url(self, post_logout_redirect_uri: str | None) -> str:
        """The IdP's end-session URL (RP-initiated logout) for this client; 501 when the IdP
        has none. No id_token_hint (Driftline keeps no ID token): the IdP asks the user to
        confirm, then returns to `post_logout_redirect_uri` (registered at the IdP) if given."""
        meta = await self.metadata()
        if meta.end_session_endpoint is None:
            raise HTTPException(
                501,
                "the identity provider offers no RP-initiated logout (no end_session_endpoint "
                "in its discovery document): sign out there",
            )
        params = {"client_id": self.s.client_id}
        if post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = post_logout_redirect_uri
        sep = "&" if "?" in meta.end_session_endpoint else "?"
        return f"{meta.end_session_endpoint}{sep}{urlencode(params)}"

    async def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """The token response for an authorization code (with the PKCE verifier)."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.s.redirect_uri,
            "code_verifier": verifier,
        }
        extra: dict[str, Any] = {}
        secret = self.s.client_secret.get_secret_value()
        if self.s.token_endpoint_auth_method == "client_secret_basic":
            # RFC 6749 2.3.1: each part form-urlencoded before Basic
            extra["auth"] = httpx.BasicAuth(
                quote(self.s.client_id, safe=""), quote(secret, safe="")
            )
        else:
            form["client_id"] = self.s.client_id
            if self.s.token_endpoint_auth_method == "client_secret_post":
                form["client_secret"] = secret
        try:
            r = await self._http.post(
                meta.token_endpoint, data=form, headers={"Accept": "application/json"}, **extra
            )
        except httpx.HTTPError as e:
            raise HTTPException(502, f"the identity provider is unreachable: {e}") from e
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise HTTPException(502, f"the token endpoint answered {r.status_code}, not JSON")
        if r.status_code != 200 or "error" in body:
            error, desc = body.get("error", r.status_code), body.get("error_description")
            status = 400 if r.status_code in (400, 401) else 502
            raise HTTPException(
                status,
                f"the identity provider refused the authorization code: {error}"
                + (f" ({desc})" if desc else ""),
            )
        return body

    async def verify_id_token(
        self, raw: str, nonce: str, access_token: str | None = None, now: int | None = None
    ) -> dict[str, Any]:
        """The ID token's claims, once its signature (the IdP's JWKS), issuer, audience,
        authorized party, expiry, issue time, nonce and at_hash are checked."""
        meta = await self.metadata()
        try:
            token = self._decode(raw, await self.keys(), meta.algorithms)
        except _UnknownKey:
            try:  # the IdP may have rotated its keys: read the JWKS once more
                token = self._decode(raw, await self.keys(fresh=True), meta.algorithms)
            except _UnknownKey as e:
                raise IdTokenError(
                    "the ID token is signed with a key the IdP does not publish"
                ) from e
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={
                "iss": {"essential": True, "value": self.s.issuer},
                "aud": {"essential": True, "value": self.s.client_id},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "sub": {"essential": True},
            },
            params={"nonce": nonce, "client_id": self.s.client_id, "access_token": access_token},
        )
        if "nonce" not in claims or not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise IdTokenError("the ID token's nonce is not this login's", status=400)
        try:
            claims.validate(now=now, leeway=self.s.leeway_s)
        except JoseError as e:
            raise IdTokenError(f"the ID token is not valid: {_why(e)}") from e
        return dict(claims)

    @staticmethod
    def _decode(raw: str, keyset: KeySet, algorithms: list[str]) -> jwt.Token:
        try:
            return jwt.decode(raw, keyset, algorithms=algorithms)
        except InvalidKeyIdError as e:
            raise _UnknownKey(str(e)) from e
        except (JoseError, ValueError, KeyError, TypeError) as e:
            raise IdTokenError(f"the ID token is not valid: {_why(e)}") from e


def _why(e: Exception) -> str:
    if isinstance(e, JoseError):
        return f"{e.error}: {e.description}" if e.description else e.error or str(e)
    return str(e) or type(e).__name__


class _UnknownKey(Exception):
    pass


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _groups(claims: dict[str, Any], path: str) -> list[str]:
    value = _claim(claims, path)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(g) for g in value]
    return []


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class SsoLogin:
    """Login state, group mapping, just-in-time users and sessions for SSO logins."""

    STATE_PREFIX = "dl:oidc:state:"

    def __init__(
        self,
        client: OidcClient,
        identity: Identity,
        db: Any,
        redis: aioredis.Redis,
        audit: AuditEmitter,
        mfa: MfaPolicy,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.client = client
        self.s = client.s
        self._identity = identity
        self._db = db
        self._r = redis
        self._audit = audit
        self._mfa = mfa
        self.logins = Counter(
            "driftline_oidc_logins_total",
            "Operator single sign-on logins by outcome (success, denied) and reason",
            ["outcome", "reason"],
            registry=registry,
        )

    # --- login ----------------------------------------------------------------------------

    def check_return_to(self, return_to: str | None) -> None:
        if return_to and not any(return_to.startswith(p) for p in self.s.return_urls):
            raise HTTPException(
                400, "return_to is not an allowed address (DRIFTLINE_OIDC__RETURN_URLS)"
            )

    async def start(self, tenant: str | None, return_to: str | None) -> tuple[str, str]:
        """(the IdP's authorization URL, the state)."""
        self.check_return_to(return_to)
        state, nonce, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            generate_token(64),
        )
        url = await self.client.authorization_url(state, nonce, verifier)
        pending = {"nonce": nonce, "verifier": verifier, "tenant": tenant, "return_to": return_to}
        await self._r.set(
            self.STATE_PREFIX + _digest(state), json.dumps(pending), ex=self.s.state_ttl_s
        )
        return url, state

    async def take_state(self, state: str) -> dict[str, Any]:
        raw = await self._r.getdel(self.STATE_PREFIX + _digest(state))
        if raw is None:
            raise HTTPException(
                400,
                "unknown, used or expired login state: start again at /v1/auth/oidc/login",
            )
        pending: dict[str, Any] = json.loads(raw)
        return pending

    async def finish(
        self, code: str, pending: dict[str, Any], ip: str, user_agent: str
    ) -> dict[str, Any]:
        """The grant (as password login gives it) for a returned authorization code."""
        token = await self.client.exchange(code, pending["verifier"])
        raw = token.get("id_token")
        if not isinstance(raw, str):
            self.logins.labels("denied", "no_id_token").inc()
            raise HTTPException(502, "the identity provider returned no ID token")
        try:
            claims = await self.client.verify_id_token(
                raw, pending["nonce"], access_token=token.get("access_token")
            )
        except IdTokenError as e:
            self.logins.labels("denied", "id_token").inc()
            log.warning("SSO login refused: %s", e, extra={"issuer": self.s.issuer})
            raise HTTPException(e.status, str(e)) from e
        subject = str(claims["sub"])
        groups = _groups(claims, self.s.groups_claim)
        tenant, role = self._map(groups, pending.get("tenant"), subject)
        username = self._username(claims)
        who = Actor(type="user", id=f"user:{username}", ip=ip)
        mfa = self._mfa.sso_mfa(claims.get("amr"), claims.get("acr"))
        if self._mfa.requires(role):
            why = None
            if self._mfa.sso == "refuse":
                why = f"role {role!r} requires MFA and may not log in with single sign-on here"
            elif not mfa:
                why = (
                    f"role {role!r} requires multi-factor authentication and the identity "
                    f"provider did not assert it (amr {claims.get('amr')!r}, "
                    f"acr {claims.get('acr')!r})"
                )
            if why:
                await self._denied(tenant, who, username, "mfa_required", why)
                raise HTTPException(403, why)
        row = await self._provision(tenant, role, subject, username, who)
        who = Actor(type="user", id=f"user:{row['username']}", ip=ip)
        session, refresh = await self._identity.sessions.create(
            tenant_id=tenant,
            user_id=str(row["id"]),
            username=row["username"],
            role=role,
            ip=ip,
            user_agent=user_agent,
        )
        await self._audit.record(
            tenant_id=tenant,
            actor=who,
            action="auth.login",
            resource=Resource(type="user", id=row["username"]),
            details={
                "reason": "single sign-on" + (" with a second factor" if mfa else ""),
                "method": "oidc",
                "issuer": self.s.issuer,
                "subject": subject,
                "amr": claims.get("amr"),
                "acr": claims.get("acr"),
                "session_id": session.session_id,
                "user_agent": user_agent[:300],
            },
        )
        self.logins.labels("success", "").inc()
        grant = self._identity._grant(tenant, session, refresh, mfa)
        return {**grant, "tenant_id": tenant, "username": row["username"], "sso": True}

    def _map(self, groups: list[str], wanted: str | None, subject: str) -> tuple[str, str]:
        mine = set(groups)
        matches = [r for r in self.s.group_map if r.group in mine]
        tenants = list(dict.fromkeys(r.tenant for r in matches))
        if not matches:
            self.logins.labels("denied", "no_mapped_group").inc()
            log.warning(
                "SSO login refused: no mapped group",
                extra={"issuer": self.s.issuer, "subject": subject, "groups": groups[:50]},
            )
            raise HTTPException(
                403,
                "none of your identity provider groups is mapped to a Driftline tenant and "
                "role; ask an administrator to map one (DRIFTLINE_OIDC__GROUP_MAP)",
            )
        if wanted is not None and wanted not in tenants:
            self.logins.labels("denied", "tenant_not_mapped").inc()
            raise HTTPException(403, f"your groups give no role in tenant {wanted!r}")
        if wanted is None and len(tenants) > 1:
            self.logins.labels("denied", "tenant_ambiguous").inc()
            raise HTTPException(
                400,
                f"your groups give roles in several tenants ({', '.join(tenants)}): "
                "choose one with /v1/auth/oidc/login?tenant=...",
            )
        tenant = wanted or tenants[0]
        first = next(r for r in matches if r.tenant == tenant)
        return tenant, first.role

    def _username(self, claims: dict[str, Any]) -> str:
        for name in self.s.username_claims:
            value = claims.get(name)
            if isinstance(value, str) and re.fullmatch(USERNAME, value):
                return value
        raise HTTPException(
            403,
            f"the ID token has no usable user name (claims {self.s.username_claims}: "
            "letters, digits and ._@+- , at most 128)",
        )

    async def _provision(
        self, tenant: str, role: str, subject: str, username: str, who: Actor
    ) -> asyncpg.Record:
        """The operator's user in `tenant`, created on its first login; its role set to the
        IdP's. A role change ends the user's other sessions (their tokens carry the old one)."""
        pool = self._db.pool
        live = await pool.fetchrow("SELECT erased_at FROM tenants WHERE id = $1", tenant)
        if live is None or live["erased_at"] is not None:
            self.logins.labels("denied", "tenant_unavailable").inc()
            raise HTTPException(403, f"the mapped tenant {tenant!r} does not exist or was erased")
        row = await pool.fetchrow(
            "SELECT * FROM users WHERE tenant_id = $1 AND idp_issuer = $2 AND idp_subject = $3",
            tenant,
            self.s.issuer,
            subject,
        )
        if row is None:
            # an unusable password: SSO users never log in with one (identity.py refuses them)
            digest = await asyncio.to_thread(PASSWORDS.hash, secrets.token_urlsafe(32))
            try:
                row = await pool.fetchrow(
                    "INSERT INTO users (id, tenant_id, username, role, password_hash, "
                    "created_by, idp_issuer, idp_subject) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
                    uuid.uuid4(),
                    tenant,
                    username,
                    role,
                    digest,
                    f"oidc:{self.s.issuer}",
                    self.s.issuer,
                    subject,
                )
            except asyncpg.UniqueViolationError as e:
                await self._denied(tenant, who, username, "username_taken", "name taken")
                raise HTTPException(
                    409,
                    f"tenant {tenant!r} already has a user named {username!r} that is not "
                    "this identity provider's account",
                ) from e
            assert row is not None
            await self._user_audit(
                tenant, who, "user.create", row, role=role, source="oidc", subject=subject
            )
            return row
        if row["disabled_at"] is not None:
            await self._denied(tenant, who, username, "disabled", "the user is disabled")
            raise HTTPException(403, "your Driftline user in this tenant is disabled")
        if row["role"] != role or row["username"] != username:
            try:
                updated = await pool.fetchrow(
                    "UPDATE users SET role = $2, username = $3, updated_at = now() "
                    "WHERE id = $1 RETURNING *",
                    row["id"],
                    role,
                    username,
                )
            except asyncpg.UniqueViolationError:
                # the IdP's new name is another user's in this tenant: keep the old name
                log.warning(
                    "SSO user keeps its name: the IdP's new one is taken",
                    extra={"tenant_id": tenant, "user_id": str(row["id"]), "wanted": username},
                )
                updated = await pool.fetchrow(
                    "UPDATE users SET role = $2, updated_at = now() WHERE id = $1 RETURNING *",
                    row["id"],
                    role,
                )
            assert updated is not None
            revoked = 0
            if row["role"] != role:
                revoked = await self._identity.sessions.revoke_user(tenant, str(row["id"]))
            await self._user_audit(
                tenant, who, "user.update", updated, role=role, source="oidc", sessions=revoked
            )
            return updated
        return row

    async def _user_audit(
        self, tenant: str, who: Actor, action: str, row: asyncpg.Record, **details: Any
    ) -> None:
        await self._audit.record(
            tenant_id=tenant,
            actor=who,
            action=action,
            resource=Resource(type="user", id=str(row["id"])),
            details={"username": row["username"], **details},
        )

    async def _denied(self, tenant: str, who: Actor, username: str, code: str, why: str) -> None:
        self.logins.labels("denied", code).inc()
        await self._audit.record(
            tenant_id=tenant,
            actor=who,
            action="auth.login",
            resource=Resource(type="user", id=username),
            outcome="denied",
            details={"reason": why, "method": "oidc", "issuer": self.s.issuer},
        )


def _fragment(url: str, values: dict[str, Any]) -> str:
    return f"{url.split('#', 1)[0]}#{urlencode({k: str(v) for k, v in values.items()})}"


def oidc_router(sso: SsoLogin | None) -> APIRouter:
    r = APIRouter(prefix="/v1/auth/oidc", tags=["operators"])

    def configured() -> SsoLogin:
        if sso is None:
            raise HTTPException(404, "single sign-on is not configured (DRIFTLINE_OIDC__ISSUER)")
        return sso

    @r.get("/config", response_model=OidcConfig)
    async def config() -> dict[str, Any]:
        """Whether single sign-on is on, and where a browser starts it."""
        return {
            "enabled": sso is not None,
            "login_url": "/v1/auth/oidc/login" if sso is not None else None,
            "issuer": sso.s.issuer if sso is not None else None,
            "logout_url": "/v1/auth/oidc/logout" if sso is not None else None,
        }

    @r.get("/login", status_code=302, response_class=RedirectResponse)
    async def login(
        tenant: str | None = Query(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$"),
        return_to: str | None = Query(default=None, max_length=2048),
    ) -> Response:
        """Redirects the browser to the identity provider (state, nonce, PKCE S256)."""
        s = configured()
        url, state = await s.start(tenant, return_to)
        resp = RedirectResponse(url, status_code=302)
        resp.headers["Cache-Control"] = "no-store"
        if s.s.bind_state_cookie:
            resp.set_cookie(
                STATE_COOKIE,
                state,
                max_age=s.s.state_ttl_s,
                httponly=True,
                samesite="lax",
                secure=s.s.redirect_uri.startswith("https://"),
            )
        return resp

    @r.get(
        "/logout",
        status_code=302,
        response_class=RedirectResponse,
        responses={302: {"headers": {"Location": {"schema": {"type": "string"}}}}},
    )
    async def logout(return_to: str | None = Query(default=None, max_length=2048)) -> Response:
        """Redirects the browser to the identity provider's end-session endpoint (RP-initiated
        logout), which asks to confirm and then returns to `return_to` (one of
        DRIFTLINE_OIDC__RETURN_URLS, registered at the IdP as a post-logout redirect URI).
        It ends the IdP's session only: end Driftline's with POST /v1/auth/logout first."""
        s = configured()
        s.check_return_to(return_to)
        resp = RedirectResponse(await s.client.logout_url(return_to), status_code=302)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @r.get(
        "/callback",
        response_model=None,
        responses={
            200: {"model": SsoGrant, "description": "the session (no return_to at login)"},
            303: {
                "description": "to the login's return_to, with the grant (access_token, "
                "refresh_token, session_id, expires_at, role, tenant_id) or the error "
                "(error, error_description) in the URL's fragment",
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
        },
    )
    async def callback(
        request: Request,
        state: str | None = Query(default=None, max_length=512),
        code: str | None = Query(default=None, max_length=4096),
        error: str | None = Query(default=None, max_length=256),
        error_description: str | None = Query(default=None, max_length=2048),
        iss: str | None = Query(default=None, max_length=2048),
    ) -> Response | dict[str, Any]:
        """The identity provider's redirect: the session, as POST /v1/auth/login gives it
        (JSON, or a 303 to the login's return_to with the grant in the fragment)."""
        s = configured()
        if not state:
            raise HTTPException(400, "the callback has no state")
        pending = await s.take_state(state)
        return_to = pending.get("return_to")
        try:
            cookie = request.cookies.get(STATE_COOKIE)
            if s.s.bind_state_cookie and not (cookie and secrets.compare_digest(cookie, state)):
                raise HTTPException(400, "the login state does not belong to this browser")
            if iss is not None and iss != s.s.issuer:
                raise HTTPException(400, f"the response comes from issuer {iss!r}, not ours")
            if error:
                raise HTTPException(
                    401,
                    f"the identity provider refused the login: {error}"
                    + (f" ({error_description})" if error_description else ""),
                )
            if not code:
                raise HTTPException(400, "the callback has no authorization code")
            grant = await s.finish(
                code, pending, _ip(request), request.headers.get("user-agent", "")
            )
        except HTTPException as e:
            if not return_to:
                raise
            resp: Response = RedirectResponse(
                _fragment(return_to, {"error": e.status_code, "error_description": e.detail}),
                status_code=303,
            )
        else:
            if not return_to:
                resp = JSONResponse(grant, headers={"Cache-Control": "no-store"})
            else:
                keys = ("access_token", "refresh_token", "session_id", "expires_at", "role")
                resp = RedirectResponse(
                    _fragment(
                        return_to, {k: grant[k] for k in keys} | {"tenant_id": grant["tenant_id"]}
                    ),
                    status_code=303,
                )
                resp.headers["Cache-Control"] = "no-store"
        resp.delete_cookie(STATE_COOKIE)
        return resp

    return r
