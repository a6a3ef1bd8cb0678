"""Held records (records of models not known yet): released in offset order, bounded in age
and number (oldest dead-lettered first), and written to the checkpoint exactly as they
change (a fake connection records the statements)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from driftline_drift_detection.held import HeldMetrics, Holding

A, B = ("t", "a"), ("t", "b")


class FakeConn:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, int, int], tuple[Any, ...]] = {}

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        for a in args:
            if sql.startswith("DELETE"):
                self.rows.pop((a[0], a[1], a[2]), None)
            else:
                self.rows[(a[0], a[1], a[2])] = a


def test_released_in_offset_order_and_counted() -> None:
    registry = CollectorRegistry()
    h = Holding("predictions", metrics=HeldMetrics(registry))
    for off in (5, 3, 4):
        h.hold(A, 0, off, b"x", 100.0, "waiting")
    h.hold(B, 1, 9, b"y", 100.0, "waiting")
    assert h.releasable(lambda k: k == A) == [A]
    assert [r.offset for r in h.take(A)] == [3, 4, 5]
    h.released(3)
    assert (h.count, h.holds(A), h.holds(B)) == (1, False, True)
    sample = registry.get_sample_value
    assert (
        sample("driftline_drift_held_total", {"processor": "predictions", "outcome": "held"}) == 4
    )
    assert (
        sample("driftline_drift_held_total", {"processor": "predictions", "outcome": "released"})
        == 3
    )
    assert sample("driftline_drift_held_records", {"processor": "predictions"}) == 1


def test_too_old_or_too_many_are_given_up_oldest_first() -> None:
    h = Holding("labels", max_age_s=10, max_records=3)
    h.hold(A, 0, 1, b"", 0.0, "w")
    for off, t in ((2, 5.0), (3, 6.0), (4, 7.0), (5, 8.0)):
        h.hold(B, 0, off, b"", t, "w")
    gone = h.expired(now=10.0)  # offset 1 is 10 s old; then 4 remain for a bound of 3
    assert [r.offset for r in gone] == [1, 2]
    assert h.count == 3
    assert [r.offset for r in h.by_model[B]] == [3, 4, 5]
    assert not h.holds(A)


async def test_the_checkpoint_holds_exactly_what_is_held() -> None:
    h, conn = Holding("predictions"), FakeConn()
    h.hold(A, 0, 1, b"1", 0.0, "w")
    h.hold(A, 0, 2, b"2", 0.0, "w")
    await h.save(conn, "g")  # type: ignore[arg-type]
    h.saved()
    assert sorted(k[2] for k in conn.rows) == [1, 2]
    taken = h.take(A)
    h.hold(A, 0, 2, taken[1].value, taken[1].since, "something else", again=True)
    await h.save(conn, "g")  # type: ignore[arg-type]
    h.saved()
    assert sorted(k[2] for k in conn.rows) == [2]
    assert conn.rows[("g", 0, 2)][6] == "something else"


def test_dropped_partitions_are_forgotten_and_loaded_back() -> None:
    h = Holding("predictions")
    h.hold(A, 0, 1, b"1", 0.0, "w")
    h.hold(B, 1, 1, b"2", 0.0, "w")
    h.drop({0})
    assert (h.count, h.holds(A), list(h.added)) == (1, False, [(1, 1)])
    h.load(
        [
            {
                "partition": 0,
                "source_offset": 1,
                "tenant_id": "t",
                "model_id": "a",
                "held_since": 0.0,
                "reason": "w",
                "payload": b"1",
            }
        ]
    )
    assert h.count == 2
    assert h.take(A)[0].value == b"1"
