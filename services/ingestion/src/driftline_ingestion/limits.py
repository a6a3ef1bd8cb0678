"""Per-event and per-field byte limits, applied to each event before it is validated,
encrypted or encoded (issue 18).

- A whole JSON body that is one object larger than the per-event limit is a 413 before it
  is parsed; an NDJSON line larger than it is one refused event, also never parsed.
- In a JSON array (parsed whole, bounded by `max_body_bytes`), each event is measured as
  JSON; one over the limit is refused with the reason, and the rest of the batch goes on.
- A string value or key longer than the per-field limit refuses its event, naming the field.
- Nothing is measured when the body is smaller than the per-field limit (no event or field
  in it can exceed either), so the common small request costs nothing.

The per-event limit must leave room, after ingestion adds its fields and encrypts sensitive
features, for the record to fit the producer's batch (`DRIFTLINE_KAFKA__MAX_BATCH_SIZE`):
`IngestionSettings` refuses a configuration where it does not. A refused event is answered
in the batch's `rejected` list (index and reason) and dead-lettered with its bytes cut to a
prefix; a request whose every event was refused for its size answers 413.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from driftline_core.errors import DriftlineError

__all__ = [
    "TOO_LARGE",
    "EventTooLargeError",
    "Refused",
    "ScreenedItems",
    "SizeLimits",
    "event_problem",
]

TOO_LARGE = "too large: "  # every size refusal starts so (IntakeResult answers 413 on them)


class EventTooLargeError(DriftlineError):
    """A record that passed the limits still does not fit the producer's batch (413)."""

    code = "too_large"


class Refused:
    """Stands in for an event refused before validation: rejected with `reason`, its bytes
    (`raw`) dead-lettered (cut to the DLQ's payload limit)."""

    def __init__(self, reason: str, raw: bytes) -> None:
        self.reason = reason
        self.raw = raw


class ScreenedItems(list[Any]):
    """A request's events after `SizeLimits.screen`: Intake does not measure them again."""


@dataclass(frozen=True)
class SizeLimits:
    event_bytes: int = 128 * 1024
    field_bytes: int = 32 * 1024

    def event_too_large(self, size: int, where: str = "event") -> str:
        return (
            f"{TOO_LARGE}{where} is {size:,} bytes; the limit is {self.event_bytes:,} bytes "
            "per event (DRIFTLINE_INGESTION__MAX_EVENT_BYTES)"
        )

    def screen(self, items: list[Any], body_bytes: int | None = None) -> ScreenedItems:
        """The events, with each one over a limit replaced by a `Refused` stand-in."""
        if isinstance(items, ScreenedItems):
            return items
        if body_bytes is not None and body_bytes <= self.field_bytes:
            return ScreenedItems(items)
        out = ScreenedItems()
        for item in items:
            if isinstance(item, dict | list):
                raw = orjson.dumps(item)
                if len(raw) > self.field_bytes:
                    why = (
                        self.event_too_large(len(raw))
                        if len(raw) > self.event_bytes
                        else event_problem(item, self.field_bytes)
                    )
                    if why is not None:
                        out.append(Refused(why, raw))
                        continue
            out.append(item)
        return out


def _field(path: str, size: int, limit: int) -> str:
    return (
        f"{TOO_LARGE}{path} is {size:,} bytes; the limit is {limit:,} bytes per field "
        "(DRIFTLINE_INGESTION__MAX_FIELD_BYTES)"
    )


def _bytes(s: str, limit: int) -> int:
    """The UTF-8 size of `s` if it may exceed `limit` (a character is at most 4 bytes)."""
    return len(s) if 4 * len(s) <= limit else len(s.encode("utf-8", "surrogatepass"))


def event_problem(value: Any, limit: int, path: str = "event") -> str | None:
    """The first string or key inside `value` over `limit` bytes, as a reason."""
    if isinstance(value, str):
        n = _bytes(value, limit)
        return _field(path, n, limit) if n > limit else None
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and (n := _bytes(k, limit)) > limit:
                return _field(f"{path}: a key", n, limit)
            if (why := event_problem(v, limit, f"{path}.{k}")) is not None:
                return why
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if (why := event_problem(v, limit, f"{path}[{i}]")) is not None:
                return why
    return None
