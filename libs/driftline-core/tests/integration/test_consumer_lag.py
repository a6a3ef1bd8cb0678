"""The lag reporter against a real broker: a group that committed k of the n records of each
partition is reported n - k behind, per partition, as the gauge Prometheus scrapes."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from driftline_core.kafka.config import client_kwargs
from driftline_core.observability.lag import LagReporter
from driftline_core.observability.metrics import CoreMetrics


async def test_lag_is_end_offset_minus_committed_per_partition(stack, new_topic, unique):
    topic = await new_topic("lag", partitions=2)
    group = unique("lag-group")
    producer = AIOKafkaProducer(**client_kwargs(stack.kafka))
    await producer.start()
    try:
        for p, n in ((0, 30), (1, 12)):
            for i in range(n):
                await producer.send_and_wait(topic, b"x%d" % i, partition=p)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        **client_kwargs(stack.kafka), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 0): 10, TopicPartition(topic, 1): 12})
    finally:
        await consumer.stop()
    metrics = CoreMetrics(CollectorRegistry(), "svc")
    reporter = LagReporter(stack.kafka, metrics, [group, unique("no-such-group")])
    await reporter.start()
    try:
        got = await reporter.measure()
    finally:
        await reporter.stop()
    assert got == {(group, topic, 0): 20, (group, topic, 1): 0}
    gauge = metrics.registry.get_sample_value
    labels = {"group": group, "topic": topic}
    assert gauge("driftline_consumer_lag_records", {**labels, "partition": "0"}) == 20
    assert gauge("driftline_consumer_lag_records", {**labels, "partition": "1"}) == 0
