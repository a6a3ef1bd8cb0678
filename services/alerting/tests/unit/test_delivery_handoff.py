"""The delivery loop sends what a result's save handed it without reading it back, and a
row both handed and claimed (claim_due ran after the save committed) is sent once; rows
claimed again later (retries, on the clock's tick) are sent again; a row whose outcome is
still being recorded is not. A fake store: no servers."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from driftline_alerting.runtime import AlertingRuntime
from driftline_alerting.settings import AlertingOptions


class Store:
    db = None  # the runtime's outbox is never started here

    def __init__(self) -> None:
        self.due: list[list[dict[str, Any]]] = []
        self.claims = 0

    async def claim_due(self, limit: int = 50) -> list[dict[str, Any]]:
        self.claims += 1
        return self.due.pop(0) if self.due else []


def row(i: str, attempts: int = 0) -> dict[str, Any]:
    return {"id": i, "tenant_id": "t", "receiver": "hook", "kind": "notification",
            "body": "{}", "attempts": attempts}  # fmt: skip


async def runtime(store: Store, sent: list[str]) -> AlertingRuntime:
    rt = AlertingRuntime(AlertingOptions(), store, None, None)  # type: ignore[arg-type]

    async def deliver_one(r: Any) -> None:
        sent.append(r["id"])

    rt._deliver_one = deliver_one  # type: ignore[method-assign]
    return rt


async def test_handed_rows_are_sent_without_a_claim_then_claims_go_on() -> None:
    store, sent = Store(), list[str]()
    rt = await runtime(store, sent)
    rt._handed = [row("a"), row("b")]
    store.due = [[row("c")]]
    await rt.deliver()
    assert sent == ["a", "b", "c"]
    assert store.claims == 2  # after the handed rows: c, then nothing due
    await rt.clients.aclose()


async def test_a_row_claimed_and_handed_is_sent_once_and_a_retry_again() -> None:
    store, sent = Store(), list[str]()
    rt = await runtime(store, sent)
    store.due = [[row("a")]]  # claim_due saw the committed row first
    await rt.deliver()
    assert store.claims == 2  # a, then nothing due
    rt._handed = [row("a")]  # the save's hand-off arrives after it
    store.due = [[row("a", attempts=1)]]  # the retry, due again later
    await rt.deliver()
    assert sent == ["a"]  # the hand-off is not sent again
    assert store.claims == 2  # and nothing is claimed before the clock's next tick
    rt._claim_again_at = 0.0  # the tick
    await rt.deliver()
    assert sent == ["a", "a"]  # once from the claim, once as the retry; never the hand-off
    assert rt._handed == []
    await rt.clients.aclose()


async def test_a_row_whose_attempt_is_being_recorded_is_not_sent_again() -> None:
    """The loop sends the next rows while the outcome of those before is recorded; a claim
    that sees such a row (still pending in the store) skips it, and when a full claim held
    only such rows, the end of their recording wakes the loop for the rows behind them."""
    store, sent = Store(), list[str]()
    rt = await runtime(store, sent)
    gate = asyncio.Event()
    ids = [f"r{i}" for i in range(50)]
    for i in ids:
        task = asyncio.create_task(gate.wait())
        rt._recording[i] = task  # type: ignore[assignment]
        task.add_done_callback(functools.partial(rt._recorded, i))
    store.due = [[row(i) for i in ids]]
    await rt.deliver()
    assert sent == []
    assert not rt._wake["deliver"].is_set()
    gate.set()
    await asyncio.wait(list(rt._recording.values()))
    await asyncio.sleep(0)  # the done callbacks
    assert rt._recording == {}
    assert rt._wake["deliver"].is_set()
    store.due = [[row("r0", attempts=1)]]  # e.g. a retry among them
    await rt.deliver()  # claimed at once, not on the clock
    assert sent == ["r0"]
    await rt.clients.aclose()


class RacingStore(Store):
    """A claim that reads the rows before their recordings commit, and returns only after
    those recordings ended (their answers came back first): what it returns is stale."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    async def claim_due(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = await super().claim_due(limit)  # read as the rows were: pending, due
        self.gate.set()  # the recordings end while the claim's answer is on its way
        for _ in range(5):
            await asyncio.sleep(0)
        return rows


async def test_a_row_recorded_while_the_claim_ran_is_not_sent_again() -> None:
    """A claim sent while a row's outcome was being recorded may read the row as it was
    before (still pending and due) although the recording ended before the claim's answer
    came: the row is not sent again. When all of a full claim was recorded meanwhile, the
    loop claims again at once (no recording is left to wake it)."""
    gate = asyncio.Event()
    store, sent = RacingStore(gate), list[str]()
    rt = await runtime(store, sent)
    ids = [f"r{i}" for i in range(50)]
    for i in ids:
        task = asyncio.create_task(gate.wait())
        rt._recording[i] = task  # type: ignore[assignment]
        task.add_done_callback(functools.partial(rt._recorded, i))
    store.due = [[row("r7")]]
    await rt.deliver()
    assert rt._recording == {}, "the recordings ended during the claim"
    assert sent == [], "a row whose attempt was recorded during the claim was sent again"
    assert store.claims == 1  # nothing to send: the next claim on the clock
    rt._claim_again_at = 0.0  # the tick
    gate.clear()
    for i in ids:
        task = asyncio.create_task(gate.wait())
        rt._recording[i] = task  # type: ignore[assignment]
        task.add_done_callback(functools.partial(rt._recorded, i))
    store.due = [[row(i) for i in ids], [row("r0", attempts=1)]]
    await rt.deliver()
    assert sent == ["r0"]  # claimed again at once, what it read recorded
    assert store.claims == 4  # the stale full claim, r0's, then nothing due
    await rt.clients.aclose()
