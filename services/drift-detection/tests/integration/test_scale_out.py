"""Two workers in one consumer group split the partitions and together give the same
results as one worker on the same stream (the way users scale out)."""

from __future__ import annotations

import asyncio

from aiokafka.partitioner import DefaultPartitioner

from driftline_core.events import DriftResult, decode


def models_on_every_partition(tenant: str, partitions: int = 3, each: int = 2) -> list[str]:
    """Model ids whose keys (tenant:model, murmur2 as the producer does) put `each` models
    on every partition, so every worker of the group has work whatever its share."""
    part, all_parts = DefaultPartitioner(), list(range(partitions))
    chosen: dict[int, list[str]] = {p: [] for p in all_parts}
    for k in range(1000):
        m = f"m{k}"
        p = part(f"{tenant}:{m}".encode(), all_parts, all_parts)
        if len(chosen[p]) < each:
            chosen[p].append(m)
        if all(len(v) == each for v in chosen.values()):
            return [m for p in all_parts for m in chosen[p]]
    raise AssertionError("could not place models on every partition")


async def test_two_workers_give_the_results_of_one(
    pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    models = models_on_every_partition(pipeline.tenant)
    shifted = models[0]
    for m in models:
        await pipeline.register(model=m)

    def mine(rs):
        return [
            d for d in (decode(DriftResult, r.value) for r in rs) if d.tenant_id == pipeline.tenant
        ]

    def complete(rs) -> bool:
        return len({(d.model_id, d.window.start) for d in mine(rs)}) >= 2 * len(models)

    reader = await topic_reader("driftline.drift.v1")
    async with run_pipeline(pipeline, group="two", workers=2, models=len(models)) as (
        processors,
        _influx,
    ):

        async def split() -> bool:
            owned = [{tp.partition for tp in p._consumer.assignment()} for p in processors]
            return all(owned) and not owned[0] & owned[1] and len(owned[0] | owned[1]) == 3

        await wait_until(split, timeout=60)  # both joined before any event exists
        for k, m in enumerate(models):
            await pipeline.send(window_start, 800, seed=10 + k, model=m)
            await pipeline.send(
                window_start + 60, 800, seed=20 + k, model=m, shift=0.7 if m == shifted else 0.0
            )
            await pipeline.send(window_start + 120, 3, seed=30 + k, model=m)
        two = {
            (d.model_id, d.window.start.timestamp()): d
            for d in mine(await reader.read(until=complete, timeout=90))
        }
        worked = [p.events_counted for p in processors]
        assert all(worked), f"both workers counted events: {worked}"

    reader = await topic_reader("driftline.drift.v1")
    async with run_pipeline(pipeline, group="one", workers=1, models=len(models)):
        one = {
            (d.model_id, d.window.start.timestamp()): d
            for d in mine(await reader.read(until=complete, timeout=90))
        }
    await asyncio.sleep(0)

    assert one.keys() == two.keys()
    for key, a in one.items():
        b = two[key]
        assert a.event_id == b.event_id  # the same window gives the same result id
        assert a.window.events == b.window.events
        assert {f.feature for f in a.features if f.drifted} == {
            f.feature for f in b.features if f.drifted
        }, key
    drifted = {k for k, d in one.items() if any(f.drifted for f in d.features)}
    assert drifted == {(shifted, window_start + 60)}
