"""Backoff and error classification used by the consumer loop."""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError

from driftline_core.errors import InvalidEventError, RetriableError, UnavailableError
from driftline_core.kafka.consumer import RetryPolicy, is_retriable


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    policy = RetryPolicy(initial_s=0.1, max_s=2.0, multiplier=2.0)
    for attempt, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 2.0), (30, 2.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert max(delays) - min(delays) > 0  # jitter spreads retries


def test_errors_are_classified_retriable_or_permanent():
    assert is_retriable(RetriableError("x"))
    assert is_retriable(UnavailableError("x"))
    assert is_retriable(ConnectionResetError())
    assert is_retriable(KafkaConnectionError())
    assert not is_retriable(InvalidEventError("x"))
    assert not is_retriable(ValueError("x"))
    assert is_retriable(InvalidEventError("x", retriable=True))


def test_only_kafka_errors_that_say_so_are_retriable():
    from aiokafka.errors import (
        GroupAuthorizationFailedError,
        KafkaTimeoutError,
        MessageSizeTooLargeError,
        NotLeaderForPartitionError,
        RequestTimedOutError,
        TopicAuthorizationFailedError,
    )

    assert not is_retriable(TopicAuthorizationFailedError())
    assert not is_retriable(GroupAuthorizationFailedError())
    assert not is_retriable(MessageSizeTooLargeError())
    assert is_retriable(NotLeaderForPartitionError())
    assert is_retriable(RequestTimedOutError())
    assert is_retriable(KafkaTimeoutError())  # a timeout passes, whatever its class says


def test_producer_failures_keep_the_kafka_verdict():
    from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

    from driftline_core.errors import RefusedError
    from driftline_core.kafka.config import kafka_failure

    refused = kafka_failure(TopicAuthorizationFailedError())
    assert isinstance(refused, RefusedError)
    assert not is_retriable(refused)
    assert isinstance(refused, UnavailableError)  # still a 503 at the HTTP edge
    passing = kafka_failure(KafkaConnectionError())
    assert not isinstance(passing, RefusedError)
    assert is_retriable(passing)


def test_store_errors_are_retriable_only_when_they_pass():
    import asyncpg
    import redis.exceptions

    assert is_retriable(redis.exceptions.ConnectionError("down"))
    assert is_retriable(redis.exceptions.TimeoutError())
    assert not is_retriable(redis.exceptions.ResponseError("WRONGTYPE"))
    assert is_retriable(asyncpg.exceptions.CannotConnectNowError())  # 57P03
    assert is_retriable(asyncpg.exceptions.SerializationError())  # 40001
    assert is_retriable(asyncpg.exceptions.ConnectionDoesNotExistError())
    assert not is_retriable(asyncpg.exceptions.UntranslatableCharacterError())  # \u0000
    assert not is_retriable(asyncpg.exceptions.CharacterNotInRepertoireError())
    assert not is_retriable(asyncpg.exceptions.UniqueViolationError())


def test_a_postgresql_connection_lost_mid_operation_is_retriable():
    """What a PostgreSQL stopped under load raised (tests/faults/test_postgres_outage.py): a
    protocol left mid-operation and a closed connection pass with a fresh connection; a
    wrong query does not."""
    import asyncpg

    assert is_retriable(
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        )
    )
    assert is_retriable(asyncpg.InterfaceError("connection is closed"))
    assert is_retriable(asyncpg.exceptions.CannotConnectNowError("shutting down"))
    assert is_retriable(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert not is_retriable(asyncpg.InterfaceError("the server expects 2 arguments, 1 given"))
    assert not is_retriable(asyncpg.exceptions.UniqueViolationError("duplicate key"))
