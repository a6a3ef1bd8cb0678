"""Operator sessions in Redis: one hash per session (who, role, device, refresh-token hash),
one set of session ids per user. Every request with an access token checks that its session
still exists, so revoking a session (one device, all of a user's, all of a tenant's) takes
effect on the next request in every service.

Refresh tokens (`dlr_<session id>_<secret>`) are single use: each refresh issues a new one,
and presenting an already-used one revokes the session (a stolen token was replayed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

if TYPE_CHECKING:
    from .revocations import RevocationPublisher

__all__ = ["Session", "Sessions"]


def _s(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x


def _h(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    session_id: str
    tenant_id: str
    user_id: str
    username: str
    role: str
    created_at: float
    last_used_at: float
    ip: str
    user_agent: str

    def public(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "username": self.username,
            "role": self.role,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }


class Sessions:
    PREFIX = "dl:sess:"

    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self._r = redis
        self._ttl = ttl_s
        # set where sessions are revoked (ingestion): each revocation is also published on
        # driftline.revocations.v1 (nothing of a session is cached, decision 37)
        self.revocations: RevocationPublisher | None = None

    def _key(self, sid: str) -> str:
        return f"{self.PREFIX}{sid}"

    @staticmethod
    def _user_key(tenant_id: str, user_id: str) -> str:
        return f"dl:usess:{tenant_id}:{user_id}"

    async def create(
        self,
        *,
        tenant_id: str,
        user_id: str,
        username: str,
        role: str,
        ip: str,
        user_agent: str,
    ) -> tuple[Session, str]:
        """Returns the session and its first refresh token."""
        sid, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
        now = time.time()
        s = Session(sid, tenant_id, user_id, username, role, now, now, ip, user_agent[:300])
        fields = {**s.public(), "tenant_id": tenant_id, "refresh": _h(secret)}
        async with self._r.pipeline(transaction=True) as p:
            p.hset(self._key(sid), mapping={k: str(v) for k, v in fields.items()})
            p.expire(self._key(sid), self._ttl)
            p.sadd(self._user_key(tenant_id, user_id), sid)
            p.expire(self._user_key(tenant_id, user_id), self._ttl)
            await p.execute()
        return s, f"dlr_{sid}_{secret}"

    async def active(self, session_id: str) -> bool:
        return bool(await self._r.exists(self._key(session_id)))

    async def get(self, session_id: str) -> Session | None:
        raw = await self._r.hgetall(self._key(session_id))
        if not raw:
            return None
        d = {_s(k): _s(v) for k, v in raw.items()}
        return Session(
            d["session_id"],
            d["tenant_id"],
            d["user_id"],
            d["username"],
            d["role"],
            float(d["created_at"]),
            float(d["last_used_at"]),
            d["ip"],
            d["user_agent"],
        )

    async def refresh(self, token: str) -> tuple[Session, str] | None:
        """A new refresh token for a valid one; None (and the session revoked, when the token
        was already used) otherwise."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "dlr":
            return None
        sid, secret = parts[1], parts[2]
        stored = await self._r.hget(self._key(sid), "refresh")
        if stored is None:
            return None
        if not hmac.compare_digest(_s(stored), _h(secret)):
            session = await self.get(sid)
            if session is not None:
                await self.revoke(session.tenant_id, sid)
            return None
        new = secrets.token_urlsafe(32)
        async with self._r.pipeline(transaction=True) as p:
            p.hset(self._key(sid), mapping={"refresh": _h(new), "last_used_at": str(time.time())})
            p.expire(self._key(sid), self._ttl)
            await p.execute()
        session = await self.get(sid)
        if session is None:
            return None
        await self._r.expire(self._user_key(session.tenant_id, session.user_id), self._ttl)
        return session, f"dlr_{sid}_{new}"

    async def list(self, tenant_id: str, user_id: str | None = None) -> list[Session]:
        if user_id is not None:
            keys = [self._user_key(tenant_id, user_id)]
        else:
            keys = [k async for k in self._r.scan_iter(match=f"dl:usess:{tenant_id}:*")]
        out: list[Session] = []
        for k in keys:
            for raw in await self._r.smembers(k):
                s = await self.get(_s(raw))
                if s is not None and s.tenant_id == tenant_id:
                    out.append(s)
        return sorted(out, key=lambda s: s.created_at)

    async def revoke(self, tenant_id: str, session_id: str) -> bool:
        """Only a session of `tenant_id` (another tenant's id is treated as unknown)."""
        s = await self.get(session_id)
        if s is None or s.tenant_id != tenant_id:
            return False
        async with self._r.pipeline(transaction=True) as p:
            p.delete(self._key(session_id))
            p.srem(self._user_key(tenant_id, s.user_id), session_id)
            await p.execute()
        if self.revocations is not None:
            await self.revocations.publish("session", tenant_id, session_id)
        return True

    async def revoke_user(self, tenant_id: str, user_id: str, *, publish: bool = True) -> int:
        key = self._user_key(tenant_id, user_id)
        sids = [_s(m) for m in await self._r.smembers(key)]
        async with self._r.pipeline(transaction=True) as p:
            for sid in sids:
                p.delete(self._key(sid))
            p.delete(key)
            results = await p.execute()
        if self.revocations is not None and publish:
            await self.revocations.publish("user", tenant_id, user_id)
        return sum(int(x) for x in results[: len(sids)])

    async def revoke_tenant(self, tenant_id: str) -> int:
        """Every session of the tenant (an erasure: its one `tenant` revocation is published
        by `ApiKeys.tenant_erased`, not one per user)."""
        n = 0
        async for k in self._r.scan_iter(match=f"dl:usess:{tenant_id}:*"):
            n += await self.revoke_user(tenant_id, _s(k).rsplit(":", 1)[1], publish=False)
        return n
