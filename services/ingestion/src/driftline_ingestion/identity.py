"""Operators of a tenant: users, passwords, TOTP, login, sessions, tenant keys and erasure.

- Passwords: argon2id (argon2-cffi's RFC 9106 defaults), re-hashed when the parameters change;
  hashing runs off the event loop, and an unknown user costs the same as a wrong password.
- TOTP (RFC 6238, pyotp): the secret is encrypted under the tenant's data key; a code is
  accepted once (the last accepted time step is kept and must grow); backup codes are stored
  as argon2id hashes and removed when used.
- Guessing: failures are counted in Redis per user name and per client address; past the
  limit the name (or address) is locked for `login_lockout_s`, whether the user exists or not.
- Login gives a short-lived EdDSA access token and a single-use refresh token bound to a
  Redis session that records the device (address, user agent).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import io
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pyotp
import qrcode
import qrcode.image.pure
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException

from driftline_core.audit import AuditEmitter
from driftline_core.auth import ApiKeys, Principal, Sessions, TokenService
from driftline_core.crypto import DataKeyring, FieldCipher
from driftline_core.db.pool import HasPool
from driftline_core.events import Actor, Resource
from driftline_core.settings import AuthSettings

__all__ = ["Identity", "LoginRequest", "totp_step"]

PASSWORDS = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
# backup codes carry 50 bits; OWASP's minimum argon2id profile keeps checking ten of them fast
CODES = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY = PASSWORDS.hash(secrets.token_hex(16))
BACKUP_CODES = 10
ISSUER = "Driftline"


def totp_step(secret: str, code: str, window: int, now: float | None = None) -> int | None:
    """The time step whose code `code` is, within `window` steps of now; None if none."""
    totp = pyotp.TOTP(secret)
    t = time.time() if now is None else now
    code = code.strip().replace(" ", "")
    for off in sorted(range(-window, window + 1), key=abs):
        at = t + off * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return int(at // totp.interval)
    return None


def _backup_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(7)).decode()[:10].lower()
    return f"{raw[:5]}-{raw[5:]}"


def _qr_png(uri: str) -> bytes:
    img = qrcode.make(uri, image_factory=qrcode.image.pure.PyPNGImage, box_size=6, border=2)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


@dataclass(frozen=True)
class LoginRequest:
    tenant_id: str
    username: str
    password: str
    totp: str | None
    backup_code: str | None
    ip: str
    user_agent: str


def _public(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "username": r["username"],
        "role": r["role"],
        "mfa_enabled": r["totp_enabled_at"] is not None,
        "backup_codes_left": len(r["backup_codes"]),
        "created_by": r["created_by"],
        "created_at": r["created_at"],
        "disabled": r["disabled_at"] is not None,
        # the IdP of a user provisioned by single sign-on (oidc.py); None: a local account
        "identity_provider": r["idp_issuer"],
    }


class Identity:
    def __init__(
        self,
        db: HasPool,
        redis: aioredis.Redis,
        cipher: FieldCipher,
        keyring: DataKeyring,
        sessions: Sessions,
        tokens: TokenService,
        audit: AuditEmitter,
        settings: AuthSettings,
        *,
        keys: ApiKeys,
    ) -> None:
        self._db = db
        self._keys = keys
        self._r = redis
        self._cipher = cipher
        self._keyring = keyring
        self.sessions = sessions
        self._tokens = tokens
        self._audit = audit
        self._s = settings
        # the MFA policy's check of a password login without TOTP (mfa_policy.py); it may
        # refuse the login
        self.mfa_gate: Callable[[LoginRequest, asyncpg.Record], Awaitable[None]] | None = None

    # --- users ----------------------------------------------------------------------------

    async def create_user(
        self, who: Principal, username: str, password: str, role: str
    ) -> dict[str, Any]:
        self._check_password(password, username)
        digest = await asyncio.to_thread(PASSWORDS.hash, password)
        try:
            row = await self._db.pool.fetchrow(
                "INSERT INTO users (id, tenant_id, username, role, password_hash, created_by) "
                "VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
                uuid.uuid4(),
                who.tenant_id,
                username,
                role,
                digest,
                who.actor_id,
            )
        except asyncpg.UniqueViolationError as e:
            raise HTTPException(409, f"user {username!r} already exists") from e
        assert row is not None
        await self._record(who, "user.create", str(row["id"]), username=username, role=role)
        return _public(row)

    async def list_users(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self._db.pool.fetch(
            "SELECT * FROM users WHERE tenant_id = $1 ORDER BY created_at", tenant_id
        )
        return [_public(r) for r in rows]

    async def get_user(self, tenant_id: str, user_id: str) -> asyncpg.Record:
        try:
            uid = uuid.UUID(user_id)
        except ValueError:
            uid = None
        row = (
            await self._db.pool.fetchrow(
                "SELECT * FROM users WHERE id = $1 AND tenant_id = $2", uid, tenant_id
            )
            if uid
            else None
        )
        if row is None:
            raise HTTPException(404, f"no user {user_id!r}")
        return row

    async def update_user(
        self,
        who: Principal,
        user_id: str,
        *,
        role: str | None,
        disabled: bool | None,
        reset_mfa: bool,
        password: str | None,
    ) -> dict[str, Any]:
        row = await self.get_user(who.tenant_id, user_id)
        changes: dict[str, Any] = {}
        sets, args = ["updated_at = now()"], [row["id"]]
        if role is not None and role != row["role"]:
            args.append(role)
            sets.append(f"role = ${len(args)}")
            changes["role"] = role
        if disabled is not None and disabled != (row["disabled_at"] is not None):
            sets.append("disabled_at = now()" if disabled else "disabled_at = NULL")
            changes["disabled"] = disabled
        if reset_mfa:
            sets += ["totp_secret = NULL", "totp_pending = NULL", "totp_enabled_at = NULL"]
            sets.append("backup_codes = '{}'")
            changes["mfa_reset"] = True
        if password is not None:
            self._check_password(password, row["username"])
            args.append(await asyncio.to_thread(PASSWORDS.hash, password))
            sets.append(f"password_hash = ${len(args)}")
            changes["password_reset"] = True
        updated = await self._db.pool.fetchrow(
            f"UPDATE users SET {', '.join(sets)} WHERE id = $1 RETURNING *", *args
        )
        assert updated is not None
        if changes:
            # tokens carry the role: end every session so the change applies at once
            revoked = await self.sessions.revoke_user(who.tenant_id, str(row["id"]))
            await self._record(who, "user.update", str(row["id"]), **changes, sessions=revoked)
        return _public(updated)

    def _check_password(self, password: str, username: str) -> None:
        if len(password) < self._s.min_password_length:
            raise HTTPException(
                422, f"the password must have at least {self._s.min_password_length} characters"
            )
        if username.lower() in password.lower():
            raise HTTPException(422, "the password must not contain the user name")

    # --- login ----------------------------------------------------------------------------

    def _lock_keys(self, req: LoginRequest) -> tuple[str, str]:
        return f"dl:login:u:{req.tenant_id}:{req.username.lower()}", f"dl:login:ip:{req.ip}"

    async def _locked(self, req: LoginRequest) -> int:
        """Seconds until the name or address may try again (0: not locked)."""
        ukey, ikey = self._lock_keys(req)
        async with self._r.pipeline(transaction=False) as p:
            p.get(ukey)
            p.ttl(ukey)
            p.get(ikey)
            p.ttl(ikey)
            un, ut, ipn, ipt = await p.execute()
        wait = 0
        if un is not None and int(un) >= self._s.login_max_failures:
            wait = max(wait, int(ut))
        if ipn is not None and int(ipn) >= self._s.login_ip_max_failures:
            wait = max(wait, int(ipt))
        return wait

    async def _failed(self, req: LoginRequest, why: str) -> HTTPException:
        ukey, ikey = self._lock_keys(req)
        async with self._r.pipeline(transaction=True) as p:
            p.incr(ukey)
            p.expire(ukey, self._s.login_lockout_s, nx=True)
            p.incr(ikey)
            p.expire(ikey, self._s.login_lockout_s, nx=True)
            n, _, _, _ = await p.execute()
        await self._login_audit(req, "denied", why, failures=int(n))
        return HTTPException(401, "invalid credentials")

    async def login(self, req: LoginRequest) -> dict[str, Any]:
        wait = await self._locked(req)
        if wait > 0:
            await self._login_audit(req, "denied", "locked after repeated failures")
            raise HTTPException(
                429,
                "too many failed logins; try again later",
                headers={"Retry-After": str(max(wait, 1))},
            )
        row = await self._db.pool.fetchrow(
            "SELECT u.* FROM users u JOIN tenants t ON t.id = u.tenant_id "
            "WHERE u.tenant_id = $1 AND u.username = $2 "
            "AND u.disabled_at IS NULL AND t.erased_at IS NULL "
            "AND u.idp_subject IS NULL",  # single sign-on users have no password (oidc.py)
            req.tenant_id,
            req.username,
        )
        ok = await asyncio.to_thread(_verify, row["password_hash"] if row else _DUMMY, req.password)
        if row is None or not ok:
            raise await self._failed(req, "wrong user name or password")
        if row["totp_enabled_at"] is not None:
            if req.totp:
                if not await self._accept_totp(row, req.totp):
                    raise await self._failed(req, "wrong or reused TOTP code")
            elif req.backup_code:
                if not await self._use_backup_code(row, req.backup_code):
                    raise await self._failed(req, "wrong or used backup code")
            else:
                raise HTTPException(
                    401, "a TOTP code (totp) or a backup code (backup_code) is required"
                )
        elif self.mfa_gate is not None:
            await self.mfa_gate(req, row)
        if PASSWORDS.check_needs_rehash(row["password_hash"]):
            new = await asyncio.to_thread(PASSWORDS.hash, req.password)
            await self._db.pool.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1", row["id"], new
            )
        await self._r.delete(self._lock_keys(req)[0])
        session, refresh = await self.sessions.create(
            tenant_id=req.tenant_id,
            user_id=str(row["id"]),
            username=row["username"],
            role=row["role"],
            ip=req.ip,
            user_agent=req.user_agent,
        )
        await self._login_audit(
            req,
            "success",
            "password" + (" and second factor" if row["totp_enabled_at"] else ""),
            session_id=session.session_id,
            user_agent=req.user_agent[:300],
        )
        return self._grant(session.tenant_id, session, refresh, row["totp_enabled_at"] is not None)

    def _grant(self, tenant_id: str, session: Any, refresh: str, mfa: bool) -> dict[str, Any]:
        token, exp = self._tokens.issue(
            tenant_id=tenant_id,
            user_id=session.user_id,
            username=session.username,
            role=session.role,
            session_id=session.session_id,
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_at": exp,
            "expires_in": exp - int(time.time()),
            "refresh_token": refresh,
            "session_id": session.session_id,
            "role": session.role,
            "mfa_enabled": mfa,
        }

    async def refresh(self, token: str) -> dict[str, Any]:
        got = await self.sessions.refresh(token)
        if got is None:
            raise HTTPException(401, "the refresh token is not valid (used, revoked or expired)")
        session, new = got
        row = await self._db.pool.fetchrow(
            "SELECT u.role, u.totp_enabled_at FROM users u JOIN tenants t ON t.id = u.tenant_id "
            "WHERE u.id = $1 AND u.disabled_at IS NULL AND t.erased_at IS NULL",
            uuid.UUID(session.user_id),
        )
        if row is None or row["role"] != session.role:
            await self.sessions.revoke(session.tenant_id, session.session_id)
            raise HTTPException(401, "the user was disabled or changed; log in again")
        return self._grant(session.tenant_id, session, new, row["totp_enabled_at"] is not None)

    async def _accept_totp(self, row: asyncpg.Record, code: str) -> bool:
        secret = await self._secret(row, "totp_secret")
        step = totp_step(secret, code, self._s.totp_valid_window)
        if step is None:
            return False
        result = await self._db.pool.execute(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
            row["id"],
            step,
        )
        return str(result).endswith(" 1")  # 0 rows: this code (or a later one) was used

    async def _use_backup_code(self, row: asyncpg.Record, code: str) -> bool:
        code = code.strip().lower()
        for digest in row["backup_codes"]:
            if await asyncio.to_thread(_verify, digest, code, CODES):
                result = await self._db.pool.execute(
                    "UPDATE users SET backup_codes = array_remove(backup_codes, $2) "
                    "WHERE id = $1 AND $2 = ANY(backup_codes)",
                    row["id"],
                    digest,
                )
                return str(result).endswith(" 1")
        return False

    async def _secret(self, row: asyncpg.Record, column: str) -> str:
        token = row[column]
        plain = await self._cipher.decrypt(row["tenant_id"], "totp", str(row["id"]), token)
        return plain.decode()

    # --- MFA enrolment --------------------------------------------------------------------

    async def enroll(self, who: Principal) -> dict[str, Any]:
        row = await self._operator(who)
        if row["totp_enabled_at"] is not None:
            raise HTTPException(409, "MFA is already enabled; an admin can reset it")
        secret = pyotp.random_base32()
        token = await self._cipher.encrypt(who.tenant_id, "totp", str(row["id"]), secret.encode())
        await self._db.pool.execute(
            "UPDATE users SET totp_pending = $2, updated_at = now() WHERE id = $1",
            row["id"],
            token,
        )
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=f"{row['username']}@{who.tenant_id}", issuer_name=ISSUER
        )
        await self._record(who, "user.mfa_enroll_started", str(row["id"]))
        return {
            "otpauth_uri": uri,
            "secret": secret,
            "qr_png_base64": base64.b64encode(_qr_png(uri)).decode(),
        }

    async def confirm(self, who: Principal, code: str) -> dict[str, Any]:
        row = await self._operator(who)
        if row["totp_pending"] is None:
            raise HTTPException(409, "no MFA enrolment is pending; start with /v1/auth/mfa/enroll")
        secret = await self._secret(row, "totp_pending")
        step = totp_step(secret, code, self._s.totp_valid_window)
        if step is None:
            await self._record(who, "user.mfa_enable", str(row["id"]), outcome="denied")
            raise HTTPException(422, "the code does not match; check the device's clock")
        codes = [_backup_code() for _ in range(BACKUP_CODES)]
        hashes = await asyncio.to_thread(lambda: [CODES.hash(c) for c in codes])
        await self._db.pool.execute(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, "
            "totp_enabled_at = now(), totp_last_step = $2, backup_codes = $3, updated_at = now() "
            "WHERE id = $1",
            row["id"],
            step,
            hashes,
        )
        await self._record(who, "user.mfa_enable", str(row["id"]))
        return {"mfa_enabled": True, "backup_codes": codes}

    async def _operator(self, who: Principal) -> asyncpg.Record:
        if who.kind != "user":
            raise HTTPException(403, "only an operator (logged-in user) has this")
        return await self.get_user(who.tenant_id, who.key_id)

    # --- tenant keys and erasure ----------------------------------------------------------

    async def rotate(self, tenant_id: str, actor: Actor) -> dict[str, Any]:
        await self._live_tenant(tenant_id)
        version = await self._keyring.rotate(tenant_id)
        await self._audit.record(
            tenant_id=tenant_id,
            actor=actor,
            action="data_key.rotate",
            resource=Resource(type="data_key", id=f"{tenant_id}/v{version}"),
            details={"version": version},
        )
        return {"tenant_id": tenant_id, "version": version}

    async def erase(self, tenant_id: str, actor: Actor, reason: str) -> dict[str, Any]:
        """Crypto-shredding: the tenant's data keys are destroyed, so everything encrypted
        under them (sensitive features in Kafka, TOTP secrets, receiver secrets, audit
        payloads) is unreadable; its keys, users and sessions stop working."""
        await self._live_tenant(tenant_id)
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE tenants SET erased_at = now() WHERE id = $1", tenant_id)
            await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 "
                "AND revoked_at IS NULL",
                tenant_id,
            )
            users = await conn.execute(
                "UPDATE users SET disabled_at = coalesce(disabled_at, now()), "
                "backup_codes = '{}' WHERE tenant_id = $1",
                tenant_id,
            )
        # committed: this process stops accepting the tenant's keys now, every other one when
        # the revocation it publishes arrives (decision 37; the cache's TTL if it cannot)
        await self._keys.tenant_erased(tenant_id, actor.id)
        sessions = await self.sessions.revoke_tenant(tenant_id)
        destroyed = await self._keyring.destroy(tenant_id)
        details = {
            "reason": reason,
            "data_keys_destroyed": destroyed,
            "sessions_revoked": sessions,
            "users_disabled": int(str(users).split()[-1]),
        }
        await self._audit.record(
            tenant_id=tenant_id,
            actor=actor,
            action="tenant.erase",
            resource=Resource(type="tenant", id=tenant_id),
            details=details,
        )
        return {"tenant_id": tenant_id, "erased": True, **details}

    async def _live_tenant(self, tenant_id: str) -> None:
        row = await self._db.pool.fetchrow("SELECT erased_at FROM tenants WHERE id = $1", tenant_id)
        if row is None:
            raise HTTPException(404, f"no tenant {tenant_id!r}")
        if row["erased_at"] is not None:
            raise HTTPException(409, f"tenant {tenant_id!r} was erased at {row['erased_at']}")

    # --- audit ----------------------------------------------------------------------------

    async def _record(
        self, who: Principal, action: str, user_id: str, outcome: str = "success", **details: Any
    ) -> None:
        await self._audit.record(
            tenant_id=who.tenant_id,
            actor=who.actor(),
            action=action,
            resource=Resource(type="user", id=user_id),
            outcome=outcome,  # type: ignore[arg-type]
            details=details,
        )

    async def _login_audit(self, req: LoginRequest, outcome: str, why: str, **details: Any) -> None:
        await self._audit.record(
            tenant_id=req.tenant_id,
            actor=Actor(type="user", id=f"user:{req.username}", ip=req.ip),
            action="auth.login",
            resource=Resource(type="user", id=req.username),
            outcome=outcome,  # type: ignore[arg-type]
            details={"reason": why, **details},
        )


def _verify(digest: str, secret: str, hasher: PasswordHasher = PASSWORDS) -> bool:
    try:
        return hasher.verify(digest, secret)
    except (VerificationError, InvalidHashError):
        return False
