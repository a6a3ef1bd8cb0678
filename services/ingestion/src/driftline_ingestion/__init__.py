"""Driftline ingestion service: HTTP and Kafka intake of prediction events, tenants, API keys,
model registry.
"""

__all__: list[str] = []
