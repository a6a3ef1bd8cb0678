"""The SDK's HTTP behaviour against a fake transport: retries honour Retry-After and resend
the same event ids; refused duplicates of a retried batch count as accepted."""

from __future__ import annotations

import httpx
import orjson
import pandas as pd
import pytest

from driftline import AsyncClient, events_from_dataframe
from driftline.client import DriftlineAPIError


def client_with(handler) -> AsyncClient:  # type: ignore[no-untyped-def]
    c = AsyncClient("http://driftline", "dlk_x_y", retries=3)
    c._http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://d")
    return c


async def test_a_503_is_retried_after_retry_after_with_the_same_event_ids(monkeypatch):
    sent: list[list[str]] = []
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    monkeypatch.setattr("driftline.client.asyncio.sleep", fake_sleep)

    def handler(request: httpx.Request) -> httpx.Response:
        ids = [e["event_id"] for e in orjson.loads(request.content)]
        sent.append(ids)
        if len(sent) == 1:
            return httpx.Response(503, headers={"Retry-After": "2"}, json={"detail": "down"})
        if len(sent) == 2:  # the first attempt had in fact stored event 0
            return httpx.Response(
                202,
                json={
                    "accepted": 1,
                    "event_ids": ids[1:],
                    "rejected": [
                        {
                            "index": 0,
                            "event_id": ids[0],
                            "reason": "duplicate event_id: already accepted",
                        }
                    ],
                },
            )
        raise AssertionError("no third attempt expected")

    async with client_with(handler) as c:
        report = await c.log_predictions("m", "1", [{"features": {}, "prediction": 1}] * 2)
    assert sent[0] == sent[1]
    assert slept == [2.0]
    assert report.accepted == 2
    assert report.rejected == []
    assert sorted(report.event_ids) == sorted(sent[0])


async def test_rejections_keep_their_index_across_batches():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            202,
            json={"accepted": 1, "event_ids": ["x"], "rejected": [{"index": 1, "reason": "bad"}]},
        )

    async with client_with(handler) as c:
        report = await c.log_predictions(
            "m", "1", [{"features": {}, "prediction": 1}] * 4, batch_size=2
        )
    assert [r["index"] for r in report.rejected] == [1, 3]
    assert report.accepted == 2


async def test_client_errors_are_raised_with_the_servers_reason():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "this API key lacks the 'admin' scope"})

    async with client_with(handler) as c:
        with pytest.raises(DriftlineAPIError, match="lacks the 'admin' scope") as info:
            await c.list_models()
    assert info.value.status == 403


def test_dataframe_rows_become_events_with_nulls_for_missing_values():
    df = pd.DataFrame(
        {
            "id": ["a", "b"],
            "age": [30, None],
            "region": ["n", "s"],
            "p_yes": [0.2, 0.9],
            "pred": [0, 1],
        }
    )
    events = events_from_dataframe(df, prediction="pred", probabilities=["p_yes"], event_id="id")
    assert events[0] == {
        "features": {"age": 30.0, "region": "n"},
        "prediction": 0,
        "probabilities": {"p_yes": 0.2},
        "event_id": "a",
    }
    assert events[1]["features"]["age"] is None


async def test_a_conflict_on_a_registry_call_is_an_error_not_an_answer():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"detail": "model 'm' already exists"})

    async with client_with(handler) as c:
        with pytest.raises(DriftlineAPIError, match="already exists") as info:
            await c.register_model({"id": "m"})
    assert info.value.status == 409
