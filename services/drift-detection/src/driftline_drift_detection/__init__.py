"""Driftline drift-detection service: per-window drift, data quality and performance on the
prediction stream.
"""

__all__: list[str] = []
