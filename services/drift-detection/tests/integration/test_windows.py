"""Windows close on event time with exact counts; the shifted feature drifts in its window
only; results reach Kafka and InfluxDB."""

from __future__ import annotations

from driftline_core.events import DriftResult, QualityResult, decode


async def test_closed_windows_have_exact_counts_and_the_shift_is_found(
    pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    drift_topic = await topic_reader("driftline.drift.v1")
    quality_topic = await topic_reader("driftline.quality.v1")
    await pipeline.register()
    async with run_pipeline(pipeline) as (_processors, influx):
        await pipeline.send(window_start, 1500, seed=3)
        await pipeline.send(window_start + 60, 1500, shift=0.6, seed=4)
        await pipeline.send(window_start + 120, 10, seed=5)  # moves the watermark past both

        def mine(rs, model):
            return sorted(
                (
                    decode(model, r.value)
                    for r in rs
                    if decode(model, r.value).tenant_id == pipeline.tenant
                ),
                key=lambda e: e.window.start,
            )

        results = mine(
            await drift_topic.read(until=lambda rs: len(mine(rs, DriftResult)) >= 2, timeout=60),
            DriftResult,
        )
        first, second = results[:2]
        assert (first.window.events, second.window.events) == (1500, 1500)
        assert first.window.start.timestamp() == window_start
        assert not [f.feature for f in first.features if f.drifted]
        assert [f.feature for f in second.features if f.drifted] == ["x0"]
        x0 = next(f for f in second.features if f.feature == "x0")
        assert x0.test == "wasserstein"
        assert x0.statistic > x0.threshold
        qualities = mine(
            await quality_topic.read(
                until=lambda rs: len(mine(rs, QualityResult)) >= 2, timeout=30
            ),
            QualityResult,
        )
        assert qualities[0].quality_score == 100.0
        assert {f.feature for f in qualities[0].features} == {*(f"x{i}" for i in range(6)), "c"}

        async def in_influx() -> bool:
            rows = await influx.query(
                'SELECT sum("events") AS n, count("events") AS w FROM "drift_window"'
            )
            return bool(rows) and rows[0]["w"] == 2 and rows[0]["n"] == 3000

        await wait_until(in_influx, timeout=20)
        await influx.close()
