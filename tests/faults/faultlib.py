"""Helpers of the fault suite and the soak: the model, the load (a client-side balancer over
the ingestion processes), the outage length, the figures file."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from harness import Tenant

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_S = float(os.environ.get("DRIFTLINE_FAULT_OUTAGE_S", "10"))
RESULTS = Path(os.environ.get("DRIFTLINE_FAULT_RESULTS", str(ROOT / ".stack" / "faults")))


def record(fault: str, figures: dict[str, Any]) -> None:
    """Write what a fault test measured (and print it, for the test log)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = {"fault": fault, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    (RESULTS / f"{fault}.json").write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    print(f"\n[fault {fault}] {orjson.dumps(figures).decode()}")


RATE = 200  # events/s (batches of BATCH)
BATCH = 50
DUPLICATE = "duplicate event_id: already accepted"  # ingestion's reason (intake.py)
WINDOW_S, GRACE_S = 10, 2
MODEL_ID = "faults"
MODEL: dict[str, Any] = {
    "id": MODEL_ID,
    "name": "Fault suite model",
    "task": "classification",
    "feature_schema": {
        "features": [
            {"name": "x0", "kind": "numeric"},
            {"name": "x1", "kind": "numeric"},
        ]
    },
    "classes": {"classes": ["0", "1"], "positive_class": "1"},
    "monitoring": {
        "window": {"kind": "time", "seconds": WINDOW_S, "grace_seconds": GRACE_S},
        "label_ttl_seconds": 3600,
    },
}


@dataclass
class Load:
    """The client side: every event sent, every id acknowledged (202, or 409 already
    accepted), by window start."""

    tenant: Tenant
    urls: list[str]
    sent: int = 0
    acked: dict[str, float] = field(default_factory=dict)  # event id -> its timestamp
    failures: Counter[str] = field(default_factory=Counter)  # what a try ran into
    gave_up: int = 0
    acked_as_duplicates: int = 0  # batches acknowledged by a 409: stored by an earlier try
    # each batch given up: its event time, its last try, what its tries ran into (per URL)
    given_up: list[dict[str, Any]] = field(default_factory=list)
    acked_after: list[tuple[float, float]] = field(default_factory=list)  # (event time, s)
    in_flight: Counter[str] = field(default_factory=Counter)  # requests unanswered, per URL
    max_start_delay_s: float = 0.0  # from a batch's making to its first try (loop stalls)
    deadline_s: float = 60.0  # how long a batch is tried before the client gives up
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[BaseException] = field(default_factory=list)
    _turn: int = 0
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def batch(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        now = time.time()
        return [
            {
                "event_id": str(uuid.uuid4()),
                "model_id": MODEL_ID,
                "model_version": "1",
                "timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
                "features": {"x0": float(rng.normal()), "x1": float(rng.normal(5, 2))},
                "prediction": int(rng.random() < 0.5),
            }
            for _ in range(BATCH)
        ]

    async def post(self, http: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
        """One batch, retried with the same ids on the other process until acknowledged
        (decision 23: a retry never stores an event twice), for at most `deadline_s`. An
        acknowledged id is kept with its event's time (the window it belongs to)."""
        ts = datetime.fromisoformat(events[0]["timestamp"]).timestamp()
        self.max_start_delay_s = max(self.max_start_delay_s, time.time() - ts)
        deadline = time.monotonic() + self.deadline_s
        tries: Counter[str] = Counter()
        while time.monotonic() < deadline:
            url = self.urls[self._turn % len(self.urls)]
            self._turn += 1
            self.in_flight[url] += 1
            try:
                r = await http.post(f"{url}/v1/events/predictions", json=events, timeout=10)
            except httpx.TransportError as e:
                self.in_flight[url] -= 1
                self.failures[type(e).__name__] += 1
                tries[f"{url.rsplit(':', 1)[-1]} {type(e).__name__}"] += 1
                await asyncio.sleep(0.2)
                continue
            self.in_flight[url] -= 1
            body = r.json() if r.status_code in (202, 409) else {}
            rejected = body.get("rejected", [])
            if r.status_code == 202 or (r.status_code == 409 and rejected):
                # acknowledged: taken in now, or stored by an earlier try (decision 23: a send
                # that outlived its request resolved; its retry is answered 409 "duplicate
                # event_id: already accepted", which clients count as accepted, as the SDK does)
                others = [x for x in rejected if x.get("reason") != DUPLICATE]
                assert not others, others[:3]  # the load sends valid events only
                ids = [*body.get("event_ids", []), *(x["event_id"] for x in rejected)]
                assert sorted(map(str, ids)) == sorted(e["event_id"] for e in events), body
                for i in ids:
                    self.acked[str(i)] = ts
                self.acked_after.append((ts, time.time() - ts))
                self.acked_as_duplicates += r.status_code == 409
                return
            self.failures[str(r.status_code)] += 1
            tries[f"{url.rsplit(':', 1)[-1]} {r.status_code} {_detail(r)}"] += 1
            await asyncio.sleep(0.2)
        self.gave_up += 1
        self.given_up.append({"event_time": ts, "last_try": time.time(), "tries": dict(tries)})

    def _done(self, t: asyncio.Task[None]) -> None:
        self._pending.discard(t)
        if not t.cancelled() and (e := t.exception()) is not None:
            self.errors.append(e)

    def given_up_in(self, start: float, end: float) -> list[dict[str, Any]]:
        """The batches given up whose events were made in [start, end)."""
        return [g for g in self.given_up if start <= g["event_time"] < end]

    def slowest_ack_s(self, start: float, end: float) -> float:
        """The longest a batch made in [start, end) waited for its acknowledgement."""
        return round(max((s for t, s in self.acked_after if start <= t < end), default=0.0), 2)

    async def run(self) -> None:
        rng = np.random.default_rng(18)
        headers = {"Authorization": f"Bearer {self.tenant.api_key}"}
        pending = self._pending
        async with httpx.AsyncClient(headers=headers) as http:
            t0 = time.monotonic()
            while not self.stop.is_set():
                events = self.batch(rng)
                self.sent += len(events)
                t = asyncio.create_task(self.post(http, events))
                pending.add(t)
                t.add_done_callback(self._done)
                # paced by the clock (an open loop): a slow server does not slow the load
                await asyncio.sleep(max(0.0, t0 + self.sent / RATE - time.monotonic()))
            if pending:
                await asyncio.gather(*pending)
        if self.errors:  # an assertion of a batch's answer (a finished task's is kept here)
            raise self.errors[0]


def _detail(r: httpx.Response) -> str:
    """The start of an error answer's detail (which 503 it was: pending ids, no ack, ...)."""
    try:
        body = r.json()
    except ValueError:
        return r.text[:60]
    return str(body.get("detail", body) if isinstance(body, dict) else body)[:60]


def model_with_grace(grace_s: int) -> dict[str, Any]:
    """MODEL with a window grace of `grace_s` (an outage's retried events must still find
    their window open, docs/reliability.md)."""
    return {
        **MODEL,
        "monitoring": {
            **MODEL["monitoring"],
            "window": {**MODEL["monitoring"]["window"], "grace_seconds": grace_s},
        },
    }


@dataclass
class Windows:
    """The acknowledged events per window against the window counts drift detection
    published (whole population, each window once)."""

    expected: Counter[float]
    counted: dict[float, int]
    twice: dict[float, list[int]]
    wrong: dict[float, tuple[int, int | None]]
    # the acknowledged ids against the prediction records on Kafka (with `topic=True`)
    missing_from_topic: int | None = None
    twice_on_topic: int | None = None

    def phase(self, start: float, end: float) -> dict[str, Any]:
        ws = [w for w in self.expected if start - WINDOW_S < w <= end]
        return {
            "windows": len(ws),
            "acked_in_windows": sum(self.expected[w] for w in ws),
            "counted_in_windows": sum(self.counted.get(w, 0) for w in ws),
            "ok": all(w not in self.wrong and w not in self.twice for w in ws),
        }


async def windows(
    system: Any, tenant: Tenant, load: Load, timeout: float, *, topic: bool = False
) -> Windows:
    """The window counts drift detection published against what was acknowledged; with
    `topic`, also every acknowledged id against driftline.predictions.v1 (once each), which
    tells a record ingestion lost or wrote twice from a miscount of drift detection."""
    from harness import unique_by_id

    expected: Counter[float] = Counter((ts // WINDOW_S) * WINDOW_S for ts in load.acked.values())

    def whole(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            r
            for r in rs
            if r.get("tenant_id") == tenant.tenant_id
            and r.get("model_id") == MODEL_ID
            and not r.get("segment")
        ]

    def start_of(r: dict[str, Any]) -> float:
        return datetime.fromisoformat(r["window"]["start"]).timestamp()

    def complete(rs: list[dict[str, Any]]) -> bool:
        return {start_of(r) for r in whole(rs)} >= set(expected)

    drift = whole(
        unique_by_id(
            await system.topic("driftline.drift.v1").read(
                where=lambda r: r.get("tenant_id") == tenant.tenant_id,
                until=complete,
                timeout=timeout,
            )
        )
    )
    per_window: dict[float, list[int]] = {}
    for r in drift:
        per_window.setdefault(start_of(r), []).append(int(r["window"]["events"]))
    counted = {w: sum(v) for w, v in per_window.items()}
    twice = {w: v for w, v in per_window.items() if len(v) > 1}
    wrong = {
        w: (expected.get(w, 0), counted.get(w))
        for w in set(expected) | set(counted)
        if expected.get(w, 0) != counted.get(w, 0)
    }
    out = Windows(expected, counted, twice, wrong)
    if topic and wrong:
        on_topic = Counter(
            str(r.get("event_id"))
            for r in await system.topic("driftline.predictions.v1").read(
                where=lambda r: r.get("tenant_id") == tenant.tenant_id, timeout=60
            )
        )
        out.missing_from_topic = len(set(load.acked) - set(on_topic))
        out.twice_on_topic = sum(1 for n in on_topic.values() if n > 1)
    return out
