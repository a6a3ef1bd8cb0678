"""InfluxDB: a batching line-protocol writer that never loses points silently, and an
InfluxQL reader (portable across InfluxDB 1.8+, 2.x v1-compat and 3.x)."""

from .reader import InfluxQLReader
from .writer import InfluxWriter

__all__ = ["InfluxQLReader", "InfluxWriter"]
