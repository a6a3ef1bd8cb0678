"""Drift thresholds computed ahead (decision 43), against the real PostgreSQL: a model's
tables are computed once when it is built and stored by fingerprint; a restarted catalog
reads them back instead of computing them; a model whose reference arrives on the registry
topic is warmed the same way; and a window close of a warmed model never computes one."""

from __future__ import annotations

import asyncio

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
    await first.warming_done()
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
    await second.warming_done()
    assert second.thresholds_loaded == len(specs)
    assert second.thresholds_computed == 0
    assert second.models[("t", "m")].detector.ready


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
    await asyncio.wait_for(catalog.warming_done(), 120)
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
