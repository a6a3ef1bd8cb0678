"""InfluxDB through influxdb-client's batching write API, read back with InfluxQL; a batch
InfluxDB refuses is spooled and counted (never lost silently) and replays later."""

from __future__ import annotations

import time

import httpx
from influxdb_client.client.write.point import Point
from prometheus_client import CollectorRegistry

from driftline_core.influx import InfluxQLReader, InfluxWriter
from driftline_core.observability.metrics import CoreMetrics


async def test_points_written_in_batches_are_read_back_with_influxql(stack, unique, wait_until):
    measurement = unique("drift_test")
    writer = InfluxWriter(
        stack.influx.model_copy(update={"batch_size": 100, "flush_interval_ms": 200})
    )
    reader = InfluxQLReader(stack.influx)
    writer.start()
    t0 = time.time_ns() - 1_000 * 1_000_000_000
    try:
        writer.write(
            [
                Point(measurement)
                .tag("model", "credit")
                .tag("feature", f"f{i % 5}")
                .field("psi", i / 1000)
                .field("drifted", i % 7 == 0)
                .time(t0 + i * 1_000_000_000)
                for i in range(1000)
            ]
        )
        writer.flush()

        async def all_there() -> bool:
            rows = await reader.query(f'SELECT count("psi") FROM "{measurement}"')
            return bool(rows) and rows[0]["count"] == 1000

        await wait_until(all_there, timeout=30)
        rows = await reader.query(
            f'SELECT sum("psi") AS s, count("drifted") AS n FROM "{measurement}" '
            'WHERE "feature" = \'f3\' GROUP BY "model"'
        )
        assert rows[0]["model"] == "credit"
        assert rows[0]["n"] == 200
        assert abs(rows[0]["s"] - sum(i / 1000 for i in range(3, 1000, 5))) < 1e-9
        assert writer.failed_batches == 0
    finally:
        writer.close()
        await reader.close()


async def test_a_refused_batch_is_spooled_counted_and_replayed(stack, unique, tmp_path, wait_until):
    database = unique("spooltest")
    settings = stack.influx.model_copy(
        update={
            "database": database,
            "batch_size": 10,
            "flush_interval_ms": 100,
            "max_retries": 0,
            "spool_dir": str(tmp_path / "spool"),
        }
    )
    metrics = CoreMetrics(CollectorRegistry(), "test")
    writer = InfluxWriter(settings, metrics)
    writer.start()
    reader = InfluxQLReader(settings)
    try:
        # the database does not exist yet: InfluxDB answers 404 to every write
        writer.write([f"m,src=test v={i}i {1_700_000_000_000_000_000 + i}" for i in range(25)])
        writer.close()
        assert writer.failed_batches == 3
        assert metrics.influx_points_failed._value.get() == 25
        assert len(writer.spool_path.read_text().splitlines()) == 25

        async with httpx.AsyncClient(base_url=settings.url) as http:
            r = await http.post("/query", data={"q": f'CREATE DATABASE "{database}"'})
            assert r.status_code == 200
        assert writer.replay_spool() == 25
        assert not writer.spool_path.exists()
        rows = await reader.query('SELECT sum("v") AS total, count("v") AS n FROM "m"')
        assert (rows[0]["total"], rows[0]["n"]) == (sum(range(25)), 25)
    finally:
        await reader.close()
        async with httpx.AsyncClient(base_url=settings.url) as http:
            await http.post("/query", data={"q": f'DROP DATABASE "{database}"'})
