"""The sync client inside a running event loop; reference uploads streamed (memory bounded,
progress never ahead of what the connection took); the background sender's batching,
flush and failures."""

from __future__ import annotations

import threading
import tracemalloc

import httpx
import orjson
import pandas as pd
import pytest

from driftline import AsyncClient, BackgroundSender, Client, SendFailed

SIZE = 48 << 20  # the file: 48 MiB
BUDGET = 8 << 20  # the upload may hold at most 8 MiB at once


class Streaming(httpx.BaseTransport):
    """Hands the request to the handler unread (httpx.MockTransport reads it whole first)."""

    def __init__(self, handler) -> None:  # type: ignore[no-untyped-def]
        self.handler = handler

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.handler(request)  # type: ignore[no-any-return]


class AsyncStreaming(httpx.AsyncBaseTransport):
    def __init__(self, handler) -> None:  # type: ignore[no-untyped-def]
        self.handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.handler(request)  # type: ignore[no-any-return]


def big_csv(tmp_path) -> tuple:  # type: ignore[no-untyped-def]
    path = tmp_path / "ref.csv"
    line = b"0.123456789,0.987654321,north,1\n"
    with open(path, "wb") as f:
        f.write(b"a,b,region,label\n")
        block = line * (1 << 15)
        while f.tell() < SIZE:
            f.write(block)
    return path, path.stat().st_size


async def test_the_sync_client_works_inside_a_running_event_loop():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": "m"}])

    # this coroutine runs on pytest's event loop, as a notebook cell runs on Jupyter's
    with Client("http://d", "k", transport=httpx.MockTransport(handler)) as c:
        assert c.list_models() == [{"id": "m"}]


def test_a_sync_upload_streams_with_bounded_memory_and_honest_progress(tmp_path):
    path, total = big_csv(tmp_path)
    received = 0
    seen: list[tuple[int, int]] = []  # (progress reported, bytes the server had then)

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal received
        assert request.headers["content-length"] == str(total)
        assert "transfer-encoding" not in request.headers
        for chunk in request.stream:  # type: ignore[union-attr]
            received += len(chunk)
        return httpx.Response(201, json={"version": 1, "rows": 3})

    def progress(n: int, of: int) -> None:
        seen.append((n, received))

    with Client("http://d", "k", transport=Streaming(handler)) as c:
        tracemalloc.start()
        try:
            out = c.upload_reference("m", path, progress=progress)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert out == {"version": 1, "rows": 3}
    assert received == total
    assert peak < BUDGET, f"peak {peak} bytes for a {total}-byte file"
    assert len(seen) >= total // (1 << 20)  # one report per MiB, not one at the end
    assert all(n <= had for n, had in seen)  # never ahead of what was sent
    assert [n for n, _ in seen] == sorted(n for n, _ in seen)
    assert seen[-1][0] == total


async def test_an_async_upload_streams_with_bounded_memory(tmp_path):
    path, total = big_csv(tmp_path)
    received = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal received
        async for chunk in request.stream:  # type: ignore[union-attr]
            received += len(chunk)
        return httpx.Response(201, json={"version": 2, "rows": 3})

    reports: list[int] = []
    async with AsyncClient("http://d", "k", transport=AsyncStreaming(handler)) as c:
        tracemalloc.start()
        try:
            out = await c.upload_reference("m", path, progress=lambda n, of: reports.append(n))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert out["version"] == 2
    assert received == total
    assert peak < BUDGET
    assert reports[-1] == total
    assert len(reports) >= total // (1 << 20)


def test_a_retried_upload_sends_the_whole_file_again(tmp_path, monkeypatch):
    monkeypatch.setattr("driftline.client.time.sleep", lambda s: None)
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 1000)
    bodies: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(len(request.read()))
        if len(bodies) == 1:
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(201, json={"version": 1, "rows": 1000})

    with Client("http://d", "k", transport=httpx.MockTransport(handler)) as c:
        assert c.upload_reference("m", path)["rows"] == 1000
    assert bodies == [9000, 9000]


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[dict]] = []  # type: ignore[type-arg]
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        events = orjson.loads(request.content)
        with self.lock:
            self.batches.append(events)
        if self.fail:
            return httpx.Response(400, json={"detail": "bad batch"})
        return httpx.Response(
            202, json={"accepted": len(events), "event_ids": [e["event_id"] for e in events]}
        )


def test_the_sender_batches_flushes_and_closes():
    rec = Recorder()
    with Client("http://d", "k", transport=httpx.MockTransport(rec)) as c:
        with BackgroundSender(c, "m", "1", batch_size=500, flush_interval=3600) as s:
            ids = s.send([{"features": {"x": i}, "prediction": i} for i in range(1200)])
            s.flush(timeout=30)
            assert sorted(len(b) for b in rec.batches) == [200, 500, 500]
            assert s.accepted == 1200
            one = s.send({"features": {"x": -1}, "prediction": 0})
        # leaving the block flushed the last event
        sent = [e["event_id"] for b in rec.batches for e in b]
        assert sent == [*ids, *one]
        assert {e["model_id"] for b in rec.batches for e in b} == {"m"}
        with pytest.raises(RuntimeError, match="closed"):
            s.send({"features": {}, "prediction": 1})


def test_a_batch_the_server_refuses_is_kept_and_raised_at_close():
    rec = Recorder(fail=True)
    with Client("http://d", "k", transport=httpx.MockTransport(rec)) as c:
        s = BackgroundSender(c, "m", "1", batch_size=10, flush_interval=3600)
        s.send([{"features": {}, "prediction": 1}] * 25)
        s.flush(timeout=30)
        with pytest.raises(SendFailed, match=r"3 batches \(25 events\) not sent: HTTP 400"):
            s.close()
        assert sum(len(batch) for _, batch in s.errors) == 25


def test_log_sends_a_dataframe_and_its_labels_in_one_call():
    got: dict[str, list[dict]] = {"predictions": [], "actuals": []}  # type: ignore[type-arg]

    def handler(request: httpx.Request) -> httpx.Response:
        events = orjson.loads(request.content)
        got[request.url.path.rsplit("/", 1)[1]] += events
        return httpx.Response(
            202, json={"accepted": len(events), "event_ids": [e["event_id"] for e in events]}
        )

    df = pd.DataFrame({"age": [30, 41, 52], "score": [0.1, 0.8, 0.4], "defaulted": [0, None, 1]})
    with Client("http://d", "k", transport=httpx.MockTransport(handler)) as c:
        report = c.log(df, model="m", version="2", prediction="score", labels="defaulted")
    assert report.accepted == 3
    assert [e["features"] for e in got["predictions"]] == [{"age": 30}, {"age": 41}, {"age": 52}]
    assert [e["prediction"] for e in got["predictions"]] == [0.1, 0.8, 0.4]
    ids = [e["event_id"] for e in got["predictions"]]
    assert [(a["prediction_event_id"], a["actual"]) for a in got["actuals"]] == [
        (ids[0], 0),
        (ids[2], 1),
    ]
