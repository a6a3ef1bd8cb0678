"""Create the catalogue's topics idempotently (and check the broker answers)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ..events.catalogue import TOPICS, TopicSpec
from ..settings import KafkaSettings
from .config import client_kwargs

__all__ = ["ensure_topics", "topic_names"]

log = logging.getLogger(__name__)


async def topic_names(settings: KafkaSettings) -> set[str]:
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def ensure_topics(
    settings: KafkaSettings,
    specs: Iterable[TopicSpec] = TOPICS,
    *,
    partitions: int | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    `partitions` overrides the catalogue's count (a small local stack or a test);
    existing topics are left as they are.
    """
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=s.name,
                num_partitions=partitions or s.partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=s.configs(),
            )
            for s in specs
            if s.name not in existing
        ]
        if not new:
            return []
        created: list[str] = []
        response = await admin.create_topics(new)
        for name, code, *_ in getattr(response, "topic_errors", []):
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:
                raise RuntimeError(f"could not create topic {name}: error code {code}")
        log.info("created topics", extra={"topics": created})
        return created
    finally:
        await admin.close()
