"""The console service's parts without servers: the live hub and its SSE frames, the feed's
routing of records by tenant, the static files with the SPA fallback, the proxy's header
handling and its answers when an upstream fails (httpx's mock transport), /api/platform's
reading of a metrics exposition."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftline_console.live import Hub, LiveFeed, frame, sse
from driftline_console.platform import parse_metrics
from driftline_console.proxy import Proxy, proxy_router
from driftline_console.settings import ConsoleOptions, Upstreams
from driftline_console.static import static_router
from driftline_core.settings import KafkaSettings

# --- live -----------------------------------------------------------------------------------


def test_frame_is_one_sse_event_per_record_with_a_data_line_per_line() -> None:
    assert frame("drift", '{"a":1}') == b'event: drift\ndata: {"a":1}\n\n'
    assert frame("alert", '{\n"a": 1\n}') == b'event: alert\ndata: {\ndata: "a": 1\ndata: }\n\n'


def test_hub_sends_a_record_only_to_its_tenants_subscribers() -> None:
    hub = Hub(10, CollectorRegistry())
    a1, a2, b = hub.subscribe("a"), hub.subscribe("a"), hub.subscribe("b")
    hub.publish("a", "drift", '{"tenant_id":"a"}')
    hub.publish("c", "drift", '{"tenant_id":"c"}')  # nobody listens: nothing queued
    assert a1.queue.get_nowait() == ("drift", '{"tenant_id":"a"}')
    assert a2.queue.get_nowait() == ("drift", '{"tenant_id":"a"}')
    assert b.queue.empty()
    hub.unsubscribe(a1)
    hub.unsubscribe(a1)  # twice is harmless
    assert hub.subscribers("a") == 1
    assert hub.clients._value.get() == 2


def test_a_subscriber_that_falls_behind_is_told_and_gets_nothing_more() -> None:
    hub = Hub(2, CollectorRegistry())
    s = hub.subscribe("a")
    for i in range(5):
        hub.publish("a", "quality", str(i))
    items = [s.queue.get_nowait() for _ in range(s.queue.qsize())]
    assert items[:2] == [("quality", "0"), ("quality", "1")]
    assert len(items) == 3
    assert items[2] is not None
    assert not isinstance(items[2], tuple)
    assert hub.overflows._value.get() == 1


async def test_sse_stream_opens_with_a_comment_keeps_alive_and_ends_on_overflow() -> None:
    hub = Hub(1, CollectorRegistry())
    s = hub.subscribe("a")
    stream = sse(hub, s, keepalive_s=0.05)
    assert await anext(stream) == b": live\nretry: 3000\n\n"
    assert await anext(stream) == b": keepalive\n\n"  # nothing queued within 0.05 s
    hub.publish("a", "performance", '{"x":1}')
    assert await anext(stream) == b'event: performance\ndata: {"x":1}\n\n'
    hub.publish("a", "drift", "1")
    hub.publish("a", "drift", "2")  # the queue holds one: overflow
    assert await anext(stream) == b"event: drift\ndata: 1\n\n"
    last = await anext(stream)
    assert last.startswith(b"event: overflow\n")
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert hub.subscribers("a") == 0  # the stream's end unsubscribed it


def test_feed_routes_records_by_the_tenant_they_name_and_counts_what_it_skips() -> None:
    reg = CollectorRegistry()
    hub = Hub(10, reg)
    feed = LiveFeed(KafkaSettings(), hub, reg)
    a = hub.subscribe("a")
    feed.dispatch("drift", orjson.dumps({"tenant_id": "a", "n": 1}))
    feed.dispatch("drift", orjson.dumps({"tenant_id": "b", "n": 2}))
    feed.dispatch("drift", b"not json")
    feed.dispatch("drift", b"[1, 2]")
    feed.dispatch("alert", None)
    feed.dispatch("drift", orjson.dumps({"tenant_id": ""}))
    assert a.queue.qsize() == 1
    kind, data = a.queue.get_nowait()
    assert kind == "drift"
    assert orjson.loads(data) == {"tenant_id": "a", "n": 1}
    skipped = {
        (s.labels["kind"], s.labels["reason"]): s.value
        for m in reg.collect()
        if m.name == "driftline_console_live_skipped"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert skipped == {
        ("drift", "not_json"): 1,
        ("drift", "no_tenant"): 2,
        ("alert", "not_json"): 1,
    }


# --- static files ---------------------------------------------------------------------------


def _static(dist: Path) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(static_router(dist))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c")


async def test_static_files_with_the_spa_fallback(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>console</html>")
    (dist / "assets" / "app-1234.js").write_text("console.log(1)")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside")
    async with _static(dist) as c:
        for path in ("/", "/models/credit", "/alerts", "/deep/a/b"):
            r = await c.get(path)
            assert r.status_code == 200, path
            assert r.text == "<html>console</html>", path
            assert r.headers["cache-control"] == "no-cache"
        js = await c.get("/assets/app-1234.js")
        assert js.text == "console.log(1)"
        assert "immutable" in js.headers["cache-control"]
        assert "javascript" in js.headers["content-type"]
        assert (await c.get("/favicon.svg")).text == "<svg/>"
        missing = await c.get("/assets/gone.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert (await c.get("/%2e%2e/secret.txt")).status_code == 404
        api = await c.get("/api/nothing")
        assert api.status_code == 404
        assert "use /api/<service>/" in api.json()["detail"]


async def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    async with _static(tmp_path / "missing") as c:
        r = await c.get("/fleet")
    assert r.status_code == 503
    assert "make console" in r.json()["detail"]


# --- proxy ----------------------------------------------------------------------------------


def _proxied(handler: Any) -> tuple[httpx.AsyncClient, Proxy]:
    opts = ConsoleOptions(upstreams=Upstreams(alerting="http://alerting:9"))
    proxy = Proxy(opts, CollectorRegistry())
    proxy._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    app = FastAPI()
    app.include_router(proxy_router(proxy))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")
    return client, proxy


async def test_proxy_passes_headers_and_body_and_drops_hop_by_hop_ones() -> None:
    seen: list[dict[str, Any]] = []

    async def upstream(request: Request) -> Response:
        seen.append(
            {
                "url": str(request.url),
                "method": request.method,
                "headers": dict(request.headers),
                "body": await request.body(),
            }
        )
        return Response(
            b"made", 201, headers={"x-upstream": "yes", "connection": "close", "server": "up"}
        )

    up = Starlette(routes=[Route("/{path:path}", upstream, methods=["POST"])])
    client, proxy = _proxied(None)
    proxy._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=up))
    async with client:
        r = await client.post(
            "/api/alerting/v1/silences?a=1&b=x%20y",
            content=b'{"k":1}',
            headers={
                "Authorization": "Bearer t",
                "X-API-Key": "dlk_x",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Keep-Alive": "timeout=99",
                "Proxy-Authorization": "Basic cHJveHk6cHJveHk=",
                "X-Forwarded-For": "6.6.6.6",
            },
        )
    assert r.status_code == 201
    assert r.content == b"made"
    assert r.headers["x-upstream"] == "yes"
    assert r.headers.get("server") != "up"  # the console's own server header only
    (got,) = seen
    assert got["url"] == "http://alerting:9/v1/silences?a=1&b=x%20y"
    assert got["method"] == "POST"
    assert got["body"] == b'{"k":1}'
    h = got["headers"]
    assert h["authorization"] == "Bearer t"
    assert h["x-api-key"] == "dlk_x"
    assert h["content-type"] == "application/json"
    assert h["accept"] == "application/json"
    assert h["x-forwarded-for"] == "127.0.0.1"  # the caller's address, not what it claimed
    assert h["x-forwarded-host"] == "console"
    assert "keep-alive" not in h  # hop-by-hop: the console's own connection
    assert "proxy-authorization" not in h
    assert h["host"] == "alerting:9"


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (httpx.ConnectError("refused"), 502, "Bad Gateway"),
        (httpx.ReadTimeout("slow"), 504, "Gateway Timeout"),
    ],
)
async def test_proxy_answers_a_problem_when_the_upstream_fails(
    error: Exception, status: int, title: str
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise error

    client, proxy = _proxied(handler)
    async with client:
        r = await client.get("/api/alerting/v1/alerts")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"] == title
    assert body["status"] == status
    assert body["service"] == "alerting"
    assert "alerting" in body["detail"]
    reason = "unreachable" if status == 502 else "timeout"
    assert proxy.errors.labels("alerting", reason)._value.get() == 1


async def test_proxy_refuses_an_unknown_service() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no upstream may be called")

    client, _ = _proxied(handler)
    async with client:
        r = await client.get("/api/billing/v1/x")
    assert r.status_code == 404
    assert "billing" in r.json()["detail"]
    assert "drift-detection" in r.json()["detail"]


def test_upstreams_are_named_as_in_the_api_paths() -> None:
    assert set(Upstreams().by_service()) == {
        "ingestion",
        "drift-detection",
        "alerting",
        "audit",
        "compliance-report",
    }


# --- platform -------------------------------------------------------------------------------


def test_platform_reads_lag_per_group_and_topic_and_dead_letters_per_reason() -> None:
    text = "\n".join(
        [
            "# TYPE driftline_consumer_lag_records gauge",
            'driftline_consumer_lag_records{group="g",partition="0",topic="t"} 3.0',
            'driftline_consumer_lag_records{group="g",partition="1",topic="t"} 4.0',
            'driftline_consumer_lag_records{group="h",partition="0",topic="t"} 0.0',
            "# TYPE driftline_dlq_records counter",
            'driftline_dlq_records_total{error_type="schema",source_topic="p"} 2.0',
            'driftline_dlq_records_created{error_type="schema",source_topic="p"} 1.7e9',
            'driftline_dlq_records_total{error_type="unknown_tenant",source_topic="p"} 1.0',
            "",
        ]
    )
    assert parse_metrics(text) == {
        "consumer_lag": [
            {"group": "g", "topic": "t", "lag": 7},
            {"group": "h", "topic": "t", "lag": 0},
        ],
        "dead_letters": [
            {"source_topic": "p", "reason": "schema", "count": 2},
            {"source_topic": "p", "reason": "unknown_tenant", "count": 1},
        ],
    }


async def test_sse_keepalive_waits_without_a_bare_sleep() -> None:
    """The keepalive is a bounded wait on the queue: a record that arrives during it goes
    out at once, not after the keepalive period."""
    hub = Hub(10, CollectorRegistry())
    s = hub.subscribe("a")
    stream = sse(hub, s, keepalive_s=30)
    await anext(stream)
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, hub.publish, "a", "alert", "{}")
    t0 = loop.time()
    assert await anext(stream) == b"event: alert\ndata: {}\n\n"
    assert loop.time() - t0 < 5
    await stream.aclose()
