"""Driftline compliance-report service: signed GDPR, SOX and FDA reports from the audit trail,
registry and metrics.
"""

__all__: list[str] = []
