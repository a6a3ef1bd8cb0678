"""Drift thresholds computed ahead (decision 43), against the real PostgreSQL: a model's
tables are computed once, in the worker process, when it gets events, and stored by
fingerprint; a restarted catalog reads them back instead of computing them; a model whose
reference arrives on the registry topic is warmed the same way; a window close of a warmed
model never computes one; and the event loop stays responsive while models warm."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from driftline_core.db import Database
from driftline_core.events import RegistryChange
from driftline_core.kafka import Message
from driftline_drift_detection.app import MIGRATIONS
from driftline_drift_detection.catalog import ModelCatalog
from driftline_stats import thresholds
from driftline_stats.thresholds import ThresholdSpec, ThresholdTable

from .conftest import references


@pytest.fixture
async def db(stack, unique):
    import asyncpg

    schema = unique("thr")
    database = Database(stack.postgres, schema, migrations_dir=MIGRATIONS)
    await database.start()
    yield database
    await database.stop()
    conn = await asyncpg.connect(stack.postgres.dsn())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()


async def test_tables_are_computed_once_stored_and_read_back_after_a_restart(db, monkeypatch):
    refs = references(seed=7)
    await db.pool.execute(
        "INSERT INTO models (tenant_id, model_id, monitoring, references_) VALUES ($1, $2, $3, $4)",
        "t",
        "m",
        orjson.dumps({"window": {"seconds": 60}}).decode(),
        orjson.dumps(refs).decode(),
    )
    thresholds._CACHE.clear()
    first = ModelCatalog(db, 0.01)
    await first.load()
    assert not first.models[("t", "m")].detector.ready  # nothing computed at start
    await first.ensure(("t", "m"))
    await first.stop()
    det = first.models[("t", "m")].detector
    specs = {s.fingerprint: s for s in det.specs.values()}
    assert len(specs) == len(refs)  # 6 Wasserstein features and one Jensen-Shannon
    assert first.thresholds_computed == len(specs)
    assert det.ready
    rows = await db.pool.fetch("SELECT fingerprint, test, thresholds FROM thresholds")
    assert {r["fingerprint"] for r in rows} == set(specs)
    for r in rows:
        stored = ThresholdTable.from_bytes(r["thresholds"])
        assert r["test"] == specs[r["fingerprint"]].test
        assert stored.values.tolist() == thresholds.cached(r["fingerprint"]).values.tolist()

    # a restart (a new process: nothing cached) reads them back, computes nothing
    thresholds._CACHE.clear()

    def never(self: ThresholdSpec) -> ThresholdTable:
        raise AssertionError("a table was computed again")

    monkeypatch.setattr(ThresholdSpec, "compute", never)
    second = ModelCatalog(db, 0.01)
    await second.load()
    await second.ensure(("t", "m"))
    assert second.thresholds_loaded == len(specs)
    assert second.thresholds_computed == 0
    assert second._pool is None  # no worker process was even started
    assert second.models[("t", "m")].detector.ready
    await second.stop()


async def test_a_reference_from_the_registry_is_warmed_and_its_closes_compute_nothing(
    db, monkeypatch
):
    from driftline_drift_detection.windows import WindowManager

    thresholds._CACHE.clear()
    catalog = ModelCatalog(db, 0.01)
    await catalog.load()
    change = RegistryChange(
        tenant_id="t",
        model_id="m2",
        change="reference_profile_updated",
        actor="test",
        details={
            "references": references(seed=8),
            "monitoring": {"window": {"seconds": 60, "grace_seconds": 0}},
        },
    )
    await catalog.handle(
        [Message(topic="r", partition=0, offset=0, key=None, timestamp_ms=0, value=change)]
    )
    assert not catalog.models[("t", "m2")].detector.ready  # no traffic yet: nothing computed
    catalog.touch(("t", "m2"), time.time())  # its first (live) events
    await asyncio.wait_for(catalog.warming_done(), 120)
    await catalog.stop()
    mon = catalog.models[("t", "m2")]
    assert mon.detector.ready
    assert catalog.thresholds_computed == len(mon.detector.specs)

    def never(self: ThresholdSpec) -> ThresholdTable:
        raise AssertionError("a window close computed a threshold table")

    monkeypatch.setattr(ThresholdSpec, "compute", never)
    import numpy as np

    from driftline_drift_detection.evaluate import evaluate

    from .conftest import features

    wm = WindowManager(3600)
    wm.configure(("t", "m2"), 60, 0, mon.refs)
    rows = features(np.random.default_rng(3), 1500)
    wm.add(
        ("t", "m2"),
        0,
        [{"occurred_at": 10.0, "model_version": "1", "features": f} for f in rows],
        0.0,
    )
    (w,) = wm.windows.values()
    drift, _, _ = evaluate(w, mon.detector, 0.5)
    assert {f.test for f in drift.features} == {"wasserstein", "jensen_shannon"}
    assert not any(f.drifted for f in drift.features)


async def test_the_event_loop_stays_responsive_while_models_warm(db):
    """Tables of 3 models with distinct references (21 tables, several CPU-seconds) are
    computed while a probe measures how late the loop wakes it: never a second late (the
    bootstrap holds the GIL, so it runs in the worker process, not in a thread)."""
    thresholds._CACHE.clear()
    catalog = ModelCatalog(db, 0.01)
    rows = [
        (
            "t",
            f"w{k}",
            orjson.dumps({"window": {"seconds": 60}}).decode(),
            orjson.dumps(references(seed=20 + k)).decode(),
        )
        for k in range(3)
    ]
    await db.pool.executemany(
        "INSERT INTO models (tenant_id, model_id, monitoring, references_) VALUES ($1, $2, $3, $4)",
        rows,
    )
    await catalog.load()
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal worst
        while not done.is_set():
            t = loop.time()
            await asyncio.sleep(0.05)
            worst = max(worst, loop.time() - t - 0.05)

    task = asyncio.create_task(probe())
    catalog.touch(("t", "w0"), time.time() - 2 * 86_400)  # an old backlog: not warmed ahead
    assert not catalog._queued
    for k in range(3):
        catalog.touch(("t", f"w{k}"), time.time())
    await asyncio.wait_for(catalog.warming_done(), 600)
    done.set()
    await task
    await catalog.stop()
    assert all(catalog.models[("t", f"w{k}")].detector.ready for k in range(3))
    assert catalog.thresholds_computed == 21
    assert worst < 1.0, f"the event loop was {worst:.2f} s late while warming"
