"""Data-key rotation and crypto-shredding across Kafka and PostgreSQL, through the real apps.

Rotation: data written before stays readable, data written after is under the new version.
Erasure: the tenant's encrypted fields in Kafka (sensitive features) and in PostgreSQL (TOTP
secrets, alerting configuration with receiver secrets) can no longer be decrypted, its keys,
users and sessions stop working, and the audit topic says when and by whom.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pyotp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftline_core.crypto import KeyDestroyedError
from driftline_core.crypto.setup import build_keyring
from driftline_core.events import AuditRecord, PredictionEvent, decode
from driftline_core.events import audit as audit_topic
from driftline_core.events import predictions as predictions_topic
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import AuthSettings

ADMIN_TOKEN = {"X-Admin-Token": "driftline-dev-admin"}
PASSWORD = "correct horse battery staple"
SCHEMA = {
    "features": [
        {"name": "age", "kind": "numeric"},
        {"name": "ssn", "kind": "text", "sensitive": True},
    ]
}
CONFIG = {
    "route": {"receiver": "hook"},
    "receivers": [
        {
            "name": "hook",
            "type": "webhook",
            "url": "http://127.0.0.1:9/hook",
            "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        }
    ],
}


# the bound for other processes: the revocation pushed on driftline.revocations.v1 (decision
# 37), at worst AuthSettings.api_key_cache_ttl_s (1 s), plus one request on a loaded machine
BOUND_S = AuthSettings().api_key_cache_ttl_s + 0.5


async def refused_within(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], since: float
) -> float:
    """Seconds from `since` until `client` answers 401 (bounded polling: 5 s after the first
    try at most, which is made however long the caller took to get here)."""
    first = time.monotonic()
    while True:
        r = await client.get(path, headers=headers)
        if r.status_code == 401:
            return time.monotonic() - since
        assert r.status_code == 200, r.text
        if time.monotonic() - first > 5:
            raise AssertionError(f"{path} still accepts the credentials after 5 s")
        await asyncio.sleep(0.02)


async def listening(client: httpx.AsyncClient) -> None:
    """Until the app's revocations listener has its partition (decision 37): the push, not
    only the cache's TTL, is then what the bound measures."""
    deadline = time.monotonic() + 60
    while (await client.get("/readyz")).json()["checks"].get("revocations") != "ok":
        assert time.monotonic() < deadline, "the revocations listener got no partition"
        await asyncio.sleep(0.1)


class Reader:
    """Reads a topic from the offsets it had when made."""

    def __init__(self, stack: Any, topic: str) -> None:
        self.stack, self.topic = stack, topic

    async def __aenter__(self) -> Reader:
        self.c = AIOKafkaConsumer(**client_kwargs(self.stack.kafka), enable_auto_commit=False)
        await self.c.start()
        cluster = await self.c._client.fetch_all_metadata()
        parts = [TopicPartition(self.topic, p) for p in cluster.partitions_for_topic(self.topic)]
        self.c.assign(parts)
        self.start = await self.c.end_offsets(parts)
        for tp, off in self.start.items():
            self.c.seek(tp, off)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.c.stop()

    async def read(self, want: int, match: Any, timeout_s: float = 20) -> list[bytes]:
        out: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < deadline:
            got = await self.c.getmany(timeout_ms=500)
            out += [m.value for batch in got.values() for m in batch if match(m.value)]
        return out


async def test_rotation_keeps_old_data_readable_and_erasure_shreds_everything(apps, stack):
    ing, alert = apps.ingestion, apps.alerting
    tid = f"t{uuid.uuid4().hex[:10]}"
    r = await ing.post("/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN_TOKEN)
    key = r.json()["api_key"]
    h = {"Authorization": f"Bearer {key}"}
    r = await ing.post(
        "/v1/models",
        json={"id": "m", "name": "m", "task": "regression", "feature_schema": SCHEMA},
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await ing.post("/v1/auth/keys", json={"name": "p", "scopes": ["ingest"]}, headers=h)
    producer = {"Authorization": f"Bearer {r.json()['api_key']}"}

    async def send(ssn: str) -> str:
        event_id = str(uuid.uuid4())
        r = await ing.post(
            "/v1/events/predictions",
            json=[
                {
                    "event_id": event_id,
                    "model_id": "m",
                    "model_version": "1",
                    "features": {"age": 40, "ssn": ssn},
                    "prediction": 1.0,
                }
            ],
            headers=producer,
        )
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 1, r.text
        return event_id

    ring = build_keyring(stack.postgres, stack.kek, "erasure-test")
    await ring.database.start()
    async with (
        Reader(stack, predictions_topic.TOPIC) as preds,
        Reader(stack, audit_topic.TOPIC) as audit,
    ):
        # --- rotation ---------------------------------------------------------------------
        before = await send("111-11-1111")
        r = await ing.post(f"/v1/auth/tenants/{tid}/data-keys/rotate", headers=ADMIN_TOKEN)
        assert r.json()["version"] == 2, r.text
        after = await send("222-22-2222")
        raw = await preds.read(2, lambda v: tid.encode() in v)
        events = {e.event_id.hex: e for e in (decode(PredictionEvent, v) for v in raw)}
        old, new = events[uuid.UUID(before).hex], events[uuid.UUID(after).hex]
        assert "ssn" not in old.features
        assert old.encrypted_features["ssn"].startswith("dl1.1.")
        assert new.encrypted_features["ssn"].startswith("dl1.2.")
        for ev, ssn in ((old, "111-11-1111"), (new, "222-22-2222")):
            token = ev.encrypted_features["ssn"]
            plain = await ring.cipher.decrypt(tid, "feature:ssn", str(ev.event_id), token)
            assert orjson.loads(plain) == ssn
            assert ssn.encode() not in raw[0] + raw[1]

        # --- things encrypted in PostgreSQL: a TOTP secret, the alerting configuration ------
        await ing.post(
            "/v1/auth/users",
            json={"username": "boss", "password": PASSWORD, "role": "admin"},
            headers=h,
        )
        grant = (
            await ing.post(
                "/v1/auth/login", json={"tenant": tid, "username": "boss", "password": PASSWORD}
            )
        ).json()
        op = {"Authorization": f"Bearer {grant['access_token']}"}
        secret = (await ing.post("/v1/auth/mfa/enroll", headers=op)).json()["secret"]
        code = pyotp.TOTP(secret).at(time.time() - 30)
        assert (
            await ing.post("/v1/auth/mfa/confirm", json={"code": code}, headers=op)
        ).status_code == 200
        r = await alert.put("/v1/alerting/config", json=CONFIG, headers=h)
        assert r.status_code == 200, r.text
        conn = await asyncpg.connect(stack.postgres.dsn())
        try:
            user = await conn.fetchrow(
                "SELECT id, totp_secret FROM ingestion.users WHERE tenant_id = $1", tid
            )
            body = await conn.fetchval(
                "SELECT body::text FROM alerting.configs WHERE tenant_id = $1", tid
            )
        finally:
            await conn.close()
        assert secret not in user["totp_secret"]
        assert "whsec_" not in body
        sealed = orjson.loads(body)["encrypted"]
        assert (
            await ring.cipher.decrypt(tid, "totp", str(user["id"]), user["totp_secret"])
            == secret.encode()
        )
        assert b"whsec_" in await ring.cipher.decrypt(tid, "alerting-config", tid, sealed)

        # --- erasure by the tenant's own admin ------------------------------------------------
        r = await ing.post(
            f"/v1/auth/tenants/{tid}/erase", json={"confirm": "wrong", "reason": "x"}, headers=op
        )
        assert r.status_code == 422
        # both services have just verified the key, so it sits in their caches
        await listening(alert)
        assert (await ing.get("/v1/models", headers=h)).status_code == 200
        assert (await alert.get("/v1/alerting/config", headers=h)).status_code == 200
        erased_at = datetime.now(UTC)
        r = await ing.post(
            f"/v1/auth/tenants/{tid}/erase",
            json={"confirm": tid, "reason": "GDPR art. 17 request #4711"},
            headers=op,
        )
        acknowledged = time.monotonic()
        answered_at = datetime.now(UTC)
        assert r.status_code == 200, r.text
        assert r.json()["data_keys_destroyed"] == 2
        assert r.json()["sessions_revoked"] == 1
        # at once in the service that erased: the very next request is refused
        assert (await ing.get("/v1/models", headers=h)).status_code == 401
        # elsewhere within the bound: the pushed revocation (decision 37), the TTL at worst
        waited = await refused_within(alert, "/v1/alerting/config", h, acknowledged)
        assert waited <= BOUND_S, f"alerting still accepted the erased tenant's key {waited}s"

        fresh = build_keyring(stack.postgres, stack.kek, "erasure-test-2")
        await fresh.database.start()
        try:
            for ev in (old, new):
                with pytest.raises(KeyDestroyedError):
                    await fresh.cipher.decrypt(
                        tid, "feature:ssn", str(ev.event_id), ev.encrypted_features["ssn"]
                    )
            with pytest.raises(KeyDestroyedError):
                await fresh.cipher.decrypt(tid, "totp", str(user["id"]), user["totp_secret"])
            with pytest.raises(KeyDestroyedError):
                await fresh.cipher.decrypt(tid, "alerting-config", tid, sealed)
            versions = await fresh.keyring.versions(tid)
            assert [(v["version"], v["destroyed"]) for v in versions] == [(1, True), (2, True)]
        finally:
            await fresh.database.stop()

        # --- nothing of the tenant works any more -----------------------------------------
        assert (await ing.get("/v1/models", headers=h)).status_code == 401
        assert (await ing.get("/v1/auth/me", headers=op)).status_code == 401
        r = await ing.post(
            "/v1/auth/login",
            json={
                "tenant": tid,
                "username": "boss",
                "password": PASSWORD,
                "totp": pyotp.TOTP(secret).now(),
            },
        )
        assert r.status_code == 401
        r = await ing.post(
            f"/v1/auth/tenants/{tid}/erase",
            json={"confirm": tid, "reason": "again"},
            headers=ADMIN_TOKEN,
        )
        assert r.status_code == 409

        # --- the audit trail says what happened, when and by whom ---------------------------
        records = [
            decode(AuditRecord, v)
            for v in await audit.read(1, lambda v: b"tenant.erase" in v and tid.encode() in v)
        ]
        [rec] = [x for x in records if x.action == "tenant.erase"]
        assert rec.tenant_id == tid
        assert rec.actor.type == "user"
        assert rec.actor.id == "user:boss"
        assert rec.details["reason"] == "GDPR art. 17 request #4711"
        # recorded while the erase request ran (on this machine's clock; 1 s for rounding)
        slack = timedelta(seconds=1)
        assert erased_at - slack <= rec.occurred_at <= answered_at + slack, (
            rec.occurred_at,
            erased_at,
            answered_at,
        )
    await ring.database.stop()


async def test_a_revoked_key_is_refused_at_once_where_revoked_and_within_the_bound_elsewhere(
    apps,
):
    ing, alert, audit = apps.ingestion, apps.alerting, apps.audit
    tid = f"t{uuid.uuid4().hex[:10]}"
    r = await ing.post("/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN_TOKEN)
    admin = {"Authorization": f"Bearer {r.json()['api_key']}"}
    r = await ing.post("/v1/auth/keys", json={"name": "ro", "scopes": ["read"]}, headers=admin)
    assert r.status_code == 201, r.text
    key_id, reader = r.json()["key_id"], {"Authorization": f"Bearer {r.json()['api_key']}"}
    await listening(alert)
    for client, path in ((ing, "/v1/models"), (alert, "/v1/alerting/config")):
        assert (await client.get(path, headers=reader)).status_code == 200, path

    # requests with the key are in flight on ingestion while the revocation runs
    async def hammer(stop: asyncio.Event) -> list[int]:
        codes = []
        while not stop.is_set():
            codes.append((await ing.get("/v1/models", headers=reader)).status_code)
        return codes

    stop = asyncio.Event()
    load = [asyncio.create_task(hammer(stop)) for _ in range(4)]
    await asyncio.sleep(0.05)
    r = await ing.delete(f"/v1/auth/keys/{key_id}", headers=admin)
    acknowledged = time.monotonic()
    assert r.status_code == 204, r.text
    after = [(await ing.get("/v1/models", headers=reader)).status_code for _ in range(20)]
    stop.set()
    during = [c for t in load for c in await t]
    assert after == [401] * 20  # no stale answer was cached by a request in flight
    assert set(during) <= {200, 401}
    waited = await refused_within(alert, "/v1/alerting/config", reader, acknowledged)
    assert waited <= BOUND_S, f"alerting still accepted the revoked key {waited:.3f}s later"
    # a service that had never seen the key refuses it at once
    assert (await audit.get("/v1/audit/records", headers=reader)).status_code == 401
    print(f"revocation reached alerting after {waited * 1000:.0f} ms (bound {BOUND_S} s)")
