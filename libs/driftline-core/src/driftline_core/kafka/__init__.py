"""Kafka: idempotent producer with awaited delivery, consumer loop with DLQ, topic admin."""

from .admin import ensure_topics, topic_names
from .config import client_kwargs
from .consumer import ConsumerLoop, Handler, Message, RetryPolicy
from .producer import EventProducer

__all__ = [
    "ConsumerLoop",
    "EventProducer",
    "Handler",
    "Message",
    "RetryPolicy",
    "client_kwargs",
    "ensure_topics",
    "topic_names",
]
