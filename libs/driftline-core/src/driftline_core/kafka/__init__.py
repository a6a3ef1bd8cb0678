"""Kafka: idempotent producer with awaited delivery, one consumer runtime (the consumer loop
with DLQ runs on it), topic admin."""

from .admin import ensure_topics, topic_names
from .config import client_kwargs
from .consumer import ConsumerLoop, Handler, Message, RetryPolicy
from .producer import EventProducer
from .runtime import ConsumerRuntime, Worker, consumers_check

__all__ = [
    "ConsumerLoop",
    "ConsumerRuntime",
    "EventProducer",
    "Handler",
    "Message",
    "RetryPolicy",
    "Worker",
    "client_kwargs",
    "consumers_check",
    "ensure_topics",
    "topic_names",
]
