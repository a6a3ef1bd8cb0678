"""A background sender: `send()` queues events and returns at once; a thread sends them in
batches (when `batch_size` are waiting or `flush_interval` seconds passed) through the
sync client, with its retries. `flush()` waits until everything queued so far was
answered; `close()` (or leaving the `with` block) flushes and stops the thread. Nothing is
dropped silently: what the server refused, and batches that failed after the retries, are
kept in `rejected` and `errors`, and `close()` raises if any batch failed."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client

__all__ = ["BackgroundSender", "SendFailed"]


class SendFailed(Exception):
    """Batches that could not be sent after the client's retries (their events kept)."""

    def __init__(self, errors: list[tuple[Exception, list[dict[str, Any]]]]) -> None:
        n = sum(len(e) for _, e in errors)
        super().__init__(f"{len(errors)} batches ({n} events) not sent: {errors[0][0]}")
        self.errors = errors


class BackgroundSender:
    def __init__(
        self,
        client: Client,
        model: str,
        version: str,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
    ) -> None:
        self._client, self.model, self.version = client, model, version
        self._size, self._interval = batch_size, flush_interval
        self._pending: list[dict[str, Any]] = []
        self._queued = 0  # events handed to send()
        self._done = 0  # events answered (accepted, rejected or failed)
        self._cond = threading.Condition()
        self._closed = False
        self._flush_asked = False
        self.accepted = 0
        self.rejected: list[dict[str, Any]] = []
        self.errors: list[tuple[Exception, list[dict[str, Any]]]] = []
        self._thread = threading.Thread(target=self._loop, name="driftline-sender", daemon=True)
        self._thread.start()

    def __enter__(self) -> BackgroundSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, events: list[dict[str, Any]] | dict[str, Any]) -> list[str]:
        """Queue one event or several; returns their event ids (chosen here if absent)."""
        batch = [events] if isinstance(events, dict) else list(events)
        batch = [{**e, "event_id": e.get("event_id") or str(uuid.uuid4())} for e in batch]
        with self._cond:
            if self._closed:
                raise RuntimeError("the sender is closed")
            self._pending += batch
            self._queued += len(batch)
            if len(self._pending) >= self._size:
                self._cond.notify_all()
        return [e["event_id"] for e in batch]

    def log(self, df: Any, *, prediction: str, **columns: Any) -> list[str]:
        """Queue every row of a DataFrame (see `events_from_dataframe`)."""
        from .dataframe import events_from_dataframe

        return self.send(events_from_dataframe(df, prediction=prediction, **columns))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event queued so far has been answered."""
        with self._cond:
            target = self._queued
            self._flush_asked = True
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._done >= target, timeout):
                raise TimeoutError(f"{target - self._done} events still unsent after {timeout} s")

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        if self.errors:
            raise SendFailed(self.errors)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closed or self._flush_asked or len(self._pending) >= self._size,
                    self._interval,
                )
                batch, self._pending = self._pending[: self._size], self._pending[self._size :]
                if not self._pending:
                    self._flush_asked = False
                stop = self._closed and not self._pending and not batch
            if stop:
                return
            if not batch:
                continue
            try:
                report = self._client.log_predictions(
                    self.model, self.version, batch, batch_size=self._size
                )
                self.accepted += report.accepted
                self.rejected += report.rejected
            except Exception as e:  # kept, counted and raised by close()
                self.errors.append((e, batch))
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()
