"""Driftline's shared library: event contracts, store adapters, settings, observability.

Submodules: `events`, `kafka`, `db`, `redis_store`, `influx`, `observability`,
`settings`, `errors`, `service`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
