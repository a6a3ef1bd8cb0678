"""Driftline audit service: the hash-chained, encrypted, append-only audit trail."""

__all__: list[str] = []
