"""One rooted error tree. `retriable` says whether trying again can help.

Consumers retry retriable errors with backoff; the rest send the record to the DLQ.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DeadLetterError",
    "DriftlineError",
    "InvalidEventError",
    "NotFoundError",
    "RefusedError",
    "RetriableError",
    "UnavailableError",
    "is_retriable",
]


class DriftlineError(Exception):
    """Root of every error Driftline raises on purpose."""

    retriable: bool = False
    code: str = "driftline_error"

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable

    @property
    def reason(self) -> str:
        return f"{self.code}: {self}"


class RetriableError(DriftlineError):
    """A passing fault (a store briefly unreachable, a timeout): try again later."""

    retriable = True
    code = "retriable"


class UnavailableError(RetriableError):
    """A dependency (Kafka, PostgreSQL, Redis, InfluxDB) cannot be reached."""

    code = "unavailable"


class RefusedError(UnavailableError):
    """A dependency answered and refused for good (an authorisation failure, a record too
    large for the broker): trying again cannot help, however long one waits."""

    retriable = False
    code = "refused"


class InvalidEventError(DriftlineError):
    """A record that no retry will fix: bad JSON, wrong schema, unknown model."""

    code = "invalid_event"


class DeadLetterError(InvalidEventError):
    """A handler's explicit verdict: this record belongs in the DLQ."""

    code = "dead_letter"


class NotFoundError(DriftlineError):
    code = "not_found"


class ConfigurationError(DriftlineError):
    code = "configuration"


# PostgreSQL error classes that pass: connection exceptions (08), transaction rollback
# (40: serialization failure, deadlock), insufficient resources (53), operator intervention
# (57: admin shutdown, crash recovery), system errors (58)
_PG_TRANSIENT = frozenset({"08", "40", "53", "57", "58"})


def is_retriable(exc: BaseException) -> bool:
    """Can trying again help? Our errors say so; OS-level connection trouble and timeouts
    (ConnectionError is an OSError) are passing faults; so are the Kafka client errors that
    say so themselves (aiokafka's `retriable`: a leader moving, a broker not ready), Kafka
    timeouts, Redis connection trouble and PostgreSQL's transient error classes. An
    authorisation failure, a record too large or a constraint violation is not."""
    if isinstance(exc, DriftlineError):
        return exc.retriable
    if isinstance(exc, OSError | TimeoutError):
        return True
    from aiokafka.errors import KafkaError, KafkaTimeoutError

    if isinstance(exc, KafkaError):
        return isinstance(exc, KafkaTimeoutError) or bool(exc.retriable)
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.exceptions import TryAgainError

    if isinstance(exc, RedisConnectionError | RedisTimeoutError | TryAgainError):
        return True
    import asyncpg

    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError):
        return True
    # a connection lost in the middle of an operation leaves asyncpg's protocol in a state
    # it refuses ("cannot switch to state 15; another operation (2) is in progress"), or
    # closed under the caller; a fresh connection passes (a PostgreSQL stopped under load
    # dead-lettered an audit record with the first, tests/faults/test_postgres_outage.py)
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return True
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "")[:2] in _PG_TRANSIENT
    return False
