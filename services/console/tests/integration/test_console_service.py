"""The console service over HTTP against the real stack: the ingestion app and an echo
upstream served by uvicorn on loopback, one upstream port with nothing listening, the
console in front of them. Proxy passthrough (headers, a 3 MB request body and an 8 MB
streamed answer byte for byte, an encoded path and query as sent), the real ingestion API
through it, 502 for a service that is down, and /api/live against the real broker: each
tenant's stream carries its own records only, and a revoked key's stream ends."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from driftline_console.app import ConsoleDeps, build, create_app
from driftline_console.settings import ConsoleOptions, ConsoleSettings, Upstreams
from driftline_core.events import DriftResult
from driftline_core.kafka import EventProducer
from driftline_ingestion.app import build as build_ingestion
from driftline_ingestion.app import create_app as ingestion_app
from driftline_ingestion.settings import IngestionSettings

ADMIN = {"X-Admin-Token": os.environ.get("DRIFTLINE_INGESTION__ADMIN_TOKEN", "driftline-dev-admin")}
BIG = 8 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def poll(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if got := await check():
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.2)


# --- an upstream that says what it received ---------------------------------------------


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "headers": dict(request.headers),
            "client": request.client.host if request.client else None,
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        },
        status_code=201 if request.method == "POST" else 200,
        headers={"X-Upstream": "echo"},
    )


def chunk(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * 2048  # 64 KiB


async def big(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for i in range(BIG // len(chunk(0))):
            yield chunk(i)

    return StreamingResponse(body(), media_type="application/zip")


UPSTREAM = Starlette(
    routes=[
        Route("/big", big),
        Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
)


@contextlib.asynccontextmanager
async def served(app: Any, port: int) -> AsyncIterator[uvicorn.Server]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()  # raises what stopped it
        return server.started

    try:
        await poll(started, 90, f"a server on port {port}")
        yield server
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


@dataclass
class Console:
    url: str
    ingestion: str
    deps: ConsoleDeps
    influx_url: str
    influx_db: str


@pytest.fixture(scope="module")
async def console(stack: Any) -> AsyncIterator[Console]:
    ports = {n: free_port() for n in ("ingestion", "echo", "dead", "console")}
    si = IngestionSettings(environment="test")
    influx_db = f"console_{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=si.influx.url, timeout=10) as c:
        (await c.post("/query", data={"q": f'CREATE DATABASE "{influx_db}"'})).raise_for_status()
    sc = ConsoleSettings(
        environment="test",
        influx=si.influx.model_copy(update={"database": influx_db}),
        console=ConsoleOptions(
            upstreams=Upstreams(
                ingestion=f"http://127.0.0.1:{ports['ingestion']}",
                alerting=f"http://127.0.0.1:{ports['echo']}",
                audit=f"http://127.0.0.1:{ports['dead']}",  # nothing listens there
            ),
            keepalive_s=0.5,
        ),
    )
    deps = build(sc)
    try:
        async with (
            served(ingestion_app(si, build_ingestion(si)), ports["ingestion"]),
            served(UPSTREAM, ports["echo"]),
            served(create_app(sc, deps), ports["console"]),
        ):
            yield Console(
                f"http://127.0.0.1:{ports['console']}",
                f"http://127.0.0.1:{ports['ingestion']}",
                deps,
                sc.influx.url,
                influx_db,
            )
    finally:
        async with httpx.AsyncClient(base_url=si.influx.url, timeout=10) as c:
            await c.post("/query", data={"q": f'DROP DATABASE "{influx_db}"'})


async def tenant(c: Console) -> tuple[str, str, str]:
    """A new tenant through the console's proxy: its id, admin key id and key."""
    tid = f"console-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=c.url, timeout=30) as http:
        r = await http.post(
            "/api/ingestion/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN
        )
    assert r.status_code == 201, r.text
    return tid, r.json()["key_id"], r.json()["api_key"]


# --- the proxy ----------------------------------------------------------------------------


async def test_request_headers_body_path_and_query_pass_through(console: Console) -> None:
    body = os.urandom(3 * 1024 * 1024)
    async with httpx.AsyncClient(base_url=console.url, timeout=60) as http:
        r = await http.post(
            "/api/alerting/v1/rules/a%2Fb?model=credit%20risk&x=1&x=2",
            content=body,
            headers={
                "Authorization": "Bearer token-1",
                "X-API-Key": "dlk_abc_def",
                "Content-Type": "application/octet-stream",
                "Accept": "application/json",
            },
        )
    assert r.status_code == 201
    assert r.headers["x-upstream"] == "echo"
    got = r.json()
    assert got["method"] == "POST"
    assert got["raw_path"] == "/v1/rules/a%2Fb"
    assert got["query"] == "model=credit%20risk&x=1&x=2"
    assert got["length"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()
    h = got["headers"]
    assert h["authorization"] == "Bearer token-1"
    assert h["x-api-key"] == "dlk_abc_def"
    assert h["content-type"] == "application/octet-stream"
    assert h["accept"] == "application/json"
    # the caller's address as the console's server accepted it (uvicorn trusts a client's
    # own X-Forwarded-For only from FORWARDED_ALLOW_IPS, loopback by default: an Ingress)
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert got["client"] == "127.0.0.1"


async def test_a_large_answer_streams_back_byte_for_byte(console: Console) -> None:
    want = hashlib.sha256(b"".join(chunk(i) for i in range(BIG // len(chunk(0))))).hexdigest()
    digest, n, pieces = hashlib.sha256(), 0, 0
    async with (
        httpx.AsyncClient(base_url=console.url, timeout=60) as http,
        http.stream("GET", "/api/alerting/big") as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/zip"
        async for part in r.aiter_raw():
            digest.update(part)
            n += len(part)
            pieces += 1
    assert n == BIG
    assert digest.hexdigest() == want
    assert pieces > 1  # it came in pieces, not as one buffered body


async def test_the_real_ingestion_api_through_the_proxy(console: Console) -> None:
    tid, _, key = await tenant(console)
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        me = await http.get("/api/ingestion/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
        refused = await http.get("/api/ingestion/v1/models")
    assert me.status_code == 200
    assert me.json()["tenant_id"] == tid
    assert refused.status_code == 401  # the service's own answer, passed back as it is
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "required" in refused.json()["detail"]


async def test_a_service_that_is_down_is_a_502_naming_it(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        r = await http.get("/api/audit/v1/audit/verify", headers={"Authorization": "Bearer x"})
        ready = await http.get("/readyz")
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["service"] == "audit"
    assert body["status"] == 502
    assert body["title"] == "Bad Gateway"
    assert "audit" in body["detail"]
    assert ready.status_code == 200  # the console itself stays ready
    assert ready.json()["checks"] == {"kafka": "ok", "redis": "ok", "live": "ok", "postgres": "ok"}


async def test_platform_lists_every_service_even_unreachable_ones(console: Console) -> None:
    _, _, key = await tenant(console)
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        r = await http.get("/api/platform", headers={"Authorization": f"Bearer {key}"})
        anonymous = await http.get("/api/platform")
    assert anonymous.status_code == 401
    assert r.status_code == 200
    found = {s["service"]: s for s in r.json()["services"]}
    assert set(found) == {"ingestion", "drift-detection", "alerting", "audit", "compliance-report"}
    assert found["ingestion"]["reachable"] is True
    assert found["ingestion"]["ready"] is True
    assert found["ingestion"]["checks"]["postgres"] == "ok"
    assert found["audit"]["reachable"] is False
    assert found["audit"]["ready"] is False
    assert "ConnectError" in found["audit"]["error"]


# --- /api/live ----------------------------------------------------------------------------


@dataclass
class Stream:
    """One browser's /api/live, read in the background into (event, data) pairs."""

    url: str
    key: str
    events: list[tuple[str, str]] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 0
    task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as http,
                http.stream(
                    "GET", f"{self.url}/api/live", headers={"Authorization": f"Bearer {self.key}"}
                ) as r,
            ):
                self.status = r.status_code
                assert r.headers["content-type"].startswith("text/event-stream")
                kind, data = "", []
                async for line in r.aiter_lines():
                    if line == ": live":
                        self.opened.set()
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line == "" and kind:
                        self.events.append((kind, "\n".join(data)))
                        kind, data = "", []
        finally:
            self.ended.set()

    async def __aenter__(self) -> Stream:
        self.task = asyncio.create_task(self._read())
        done, _ = await asyncio.wait(
            [self.task, asyncio.create_task(self.opened.wait())],
            timeout=30,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self.task in done:
            self.task.result()
        assert self.opened.is_set(), "/api/live did not open within 30 s"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self.task

    def ids(self, kind: str = "drift") -> list[str]:
        return [orjson.loads(d)["event_id"] for k, d in self.events if k == kind]

    def tenants(self) -> set[str]:
        return {orjson.loads(d)["tenant_id"] for k, d in self.events if k == "drift"}


def result(tid: str, share: float) -> DriftResult:
    end = time.time()
    return DriftResult.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "tenant_id": tid,
            "model_id": "credit",
            "model_version": "1",
            "window": {
                "start": datetime.fromtimestamp(end - 60, UTC),
                "end": datetime.fromtimestamp(end, UTC),
                "events": 100,
            },
            "occurred_at": datetime.fromtimestamp(end, UTC),
            "features": [],
            "drifted_share": share,
            "dataset_drift": share >= 0.5,
        }
    )


async def test_live_streams_carry_only_their_own_tenants_records(
    console: Console, stack: Any
) -> None:
    (a, _, key_a), (b, _, key_b) = await tenant(console), await tenant(console)
    await poll(console.deps.feed.assigned, 60, "the live feed's partitions")
    producer = EventProducer(stack.kafka)
    await producer.start()
    try:
        async with Stream(console.url, key_a) as sa, Stream(console.url, key_b) as sb:
            assert sa.status == 200
            for_b = [result(b, 0.1 * i) for i in range(4)]
            for r in for_b:
                await producer.send(r)
            # B's records were handed to every subscriber once B's stream has them all
            want_b = [str(r.event_id) for r in for_b]

            async def b_has_all() -> bool:
                return set(want_b) <= set(sb.ids())

            await poll(b_has_all, 60, "tenant B's records on B's stream")
            for_a = [result(a, 0.9) for _ in range(3)]
            for r in for_a:
                await producer.send(r)
            want_a = [str(r.event_id) for r in for_a]

            async def a_has_all() -> bool:
                return set(want_a) <= set(sa.ids())

            await poll(a_has_all, 60, "tenant A's records on A's stream")
            assert sorted(sa.ids()) == sorted(want_a)  # none of B's, none twice
            assert sa.tenants() == {a}
            assert sorted(sb.ids()) == sorted(want_b)
            assert sb.tenants() == {b}
            got = {orjson.loads(d)["event_id"]: orjson.loads(d) for _, d in sa.events}
            for r in for_a:  # the record as it is on the topic
                assert got[str(r.event_id)] == orjson.loads(r.model_dump_json())
    finally:
        await producer.stop()


async def test_live_refuses_no_credentials_and_ends_a_revoked_keys_stream(
    console: Console,
) -> None:
    _, _, admin = await tenant(console)
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        assert (await http.get("/api/live")).status_code == 401
        bad = await http.get("/api/live", headers={"Authorization": "Bearer dlk_no_such"})
        assert bad.status_code == 401
        made = await http.post(
            "/api/ingestion/v1/auth/keys",
            json={"name": "viewer", "scopes": ["read"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 201, made.text
        key_id, key = made.json()["key_id"], made.json()["api_key"]
        async with Stream(console.url, key) as s:
            assert not s.ended.is_set()
            gone = await http.delete(
                f"/api/ingestion/v1/auth/keys/{key_id}",
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert gone.status_code == 204
            # checked at each keepalive (0.5 s here); the key cache holds at most 1 s
            await asyncio.wait_for(s.ended.wait(), 30)
            assert s.events[-1] == ("expired", "{}")


# --- /api/history ---------------------------------------------------------------------------


async def test_history_is_the_callers_tenants_stored_windows_of_the_model(
    console: Console,
) -> None:
    (a, _, key_a), (b, _, _) = await tenant(console), await tenant(console)
    now = int(time.time() // 10 * 10 * 1000)
    t1, t2, old = now - 20_000, now - 10_000, now - 3 * 3600 * 1000

    def point(measurement: str, t: str, at: int, fields: str, **tags: str) -> str:
        more = "".join(f",{k}={v}" for k, v in tags.items())
        return f"{measurement},tenant={t},model=credit,version=1{more} {fields} {at}"

    window = "events={}i,late=0i,drifted_share={},dataset_drift={}i,quality_score={}"
    value = ",business_value_sum=50.0,business_value_mean=0.5,business_value_count=100i"
    bins = "reference_share=0.5,current_share={},current_count={}i,upper={}"
    lines = [
        point("drift_window", a, t1, window.format(100, 0.25, 0, 99.5) + value),
        point("drift_window", a, t2, window.format(120, 0.75, 1, 87.5)),
        point("drift_window", a, old, window.format(7, 0.0, 0, 100)),
        point("drift_window", a, t2, window.format(40, 1.0, 1, 50), segment="c1\\=u"),
        point("drift_window", b, t2, window.format(999, 1.0, 1, 1)),
        point(
            "drift_feature",
            a,
            t1,
            "statistic=0.05,threshold=0.1,p_value=0.4,drifted=0i",
            feature="x1",
            test="ks",
        ),
        point(
            "drift_feature",
            a,
            t2,
            "statistic=0.3,threshold=0.1,p_value=0.001,drifted=1i",
            feature="x1",
            test="ks",
        ),
        point(
            "drift_feature",
            a,
            t2,
            "statistic=9.5,threshold=0.05,p_value=-1,drifted=1i",
            feature="c0",
            test="chi2",
        ),
        point("feature_bins", a, t2, bins.format(0.2, 24, 7.5), feature="x1", bin="b01"),
        point("feature_bins", a, t2, bins.format(0.8, 96, 5.0), feature="x1", bin="b00"),
        point("feature_bins", a, t1, bins.format(0.5, 50, 5.0), feature="x1", bin="b00"),
        point("performance", a, t2, "labelled=60i,accuracy=0.9,f1=0.8,business_value_wrong=12.5"),
    ]
    async with httpx.AsyncClient(base_url=console.influx_url, timeout=10) as c:
        w = await c.post(
            "/write",
            params={"db": console.influx_db, "precision": "ms"},
            content="\n".join(lines).encode(),
        )
        assert w.status_code == 204, w.text
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {key_a}"}
        r = await http.get("/api/history/credit", params={"hours": 1}, headers=auth)
        none = await http.get("/api/history/other", params={"hours": 1}, headers=auth)
        bad = await http.get("/api/history/credit", params={"hours": 0}, headers=auth)
        anonymous = await http.get("/api/history/credit")
        older = await http.get("/api/history/credit", params={"hours": 4}, headers=auth)
        one = await http.get("/api/history/credit", params={"hours": 1, "limit": 1}, headers=auth)
    assert anonymous.status_code == 401
    assert bad.status_code == 422
    assert r.status_code == 200, r.text
    h = r.json()
    iso = [
        datetime.fromtimestamp(t / 1000, UTC).isoformat().replace("+00:00", "Z") for t in (t1, t2)
    ]
    # the whole population of tenant A's model in the last hour, oldest first
    assert [
        (w["time"], w["events"], w["drifted_share"], w["dataset_drift"]) for w in h["windows"]
    ] == [
        (iso[0], 100, 0.25, False),
        (iso[1], 120, 0.75, True),
    ]
    assert h["windows"][0]["business_value_sum"] == 50.0
    assert h["windows"][1]["business_value_sum"] is None
    assert h["windows"][1]["quality_score"] == 87.5
    assert [
        (f["time"], f["feature"], f["statistic"], f["p_value"], f["drifted"]) for f in h["features"]
    ] == [
        (iso[0], "x1", 0.05, 0.4, False),
        (iso[1], "c0", 9.5, None, True),  # p_value -1: the test has none
        (iso[1], "x1", 0.3, 0.001, True),
    ]
    # the latest window's bins only, in the order of their upper bounds
    assert h["bins"] == {
        "x1": [
            {
                "bin": "b00",
                "upper": 5.0,
                "reference_share": 0.5,
                "current_share": 0.8,
                "current_count": 96,
            },
            {
                "bin": "b01",
                "upper": 7.5,
                "reference_share": 0.5,
                "current_share": 0.2,
                "current_count": 24,
            },
        ]
    }
    assert h["performance"] == [
        {
            "time": iso[1],
            "version": "1",
            "labelled": 60,
            "metrics": {"accuracy": 0.9, "f1": 0.8},
            "business_value_wrong": 12.5,
        }
    ]
    assert none.json()["windows"] == []
    assert len(older.json()["windows"]) == 3  # the one from three hours ago too
    assert [w["time"] for w in one.json()["windows"]] == [iso[1]]  # the latest only
    assert {f["time"] for f in one.json()["features"]} == {iso[1]}
