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
