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


def is_retriable(exc: BaseException) -> bool:
    """Can trying again help? Our errors say so; OS-level connection trouble and timeouts
    (ConnectionError is an OSError) are passing faults."""
    if isinstance(exc, DriftlineError):
        return exc.retriable
    return isinstance(exc, OSError | TimeoutError)
