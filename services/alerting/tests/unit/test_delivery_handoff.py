"""The delivery loop sends what a result's save handed it without reading it back, and a
row both handed and claimed (claim_due ran after the save committed) is sent once; rows
claimed again later (retries) are sent again. A fake store: no servers."""

from __future__ import annotations

from typing import Any

from driftline_alerting.runtime import AlertingRuntime
from driftline_alerting.settings import AlertingOptions


class Store:
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
    rt._handed = [row("a")]  # the save's hand-off arrives after it
    store.due = [[row("a", attempts=1)]]  # the retry, due again later
    await rt.deliver()
    assert sent == ["a", "a"]  # once from the claim, once as the retry; never the hand-off
    assert rt._handed == []
    await rt.clients.aclose()
