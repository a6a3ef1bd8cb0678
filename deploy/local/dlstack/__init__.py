"""Driftline's local stack: real Kafka, PostgreSQL, Redis, InfluxDB and Prometheus
started as plain processes on loopback, with data, logs and caches under `.stack/`.

Standard library only, so it runs before the project's virtualenv exists.
"""
