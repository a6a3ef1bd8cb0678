"""Driftline alerting service: rules, routing, silences, inhibition and signed webhook
delivery.
"""

__all__: list[str] = []
