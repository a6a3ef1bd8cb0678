"""What each operator role and each API-key scope may do.

Endpoints ask for one permission:
- `read`: see the tenant's models, results, alerts, rules;
- `write`: change models, references, rules, silences, routing;
- `ingest`: send prediction and label events;
- `audit`: read and export the audit trail, generate compliance reports;
- `admin`: manage the tenant's users and API keys, rotate its data keys, erase it.
"""

from __future__ import annotations

__all__ = ["PERMISSIONS", "ROLES", "SCOPES", "role_permissions", "scope_permissions"]

PERMISSIONS = frozenset({"read", "write", "ingest", "audit", "admin"})

ROLES: dict[str, frozenset[str]] = {
    "admin": PERMISSIONS,
    "ml-engineer": frozenset({"read", "write"}),
    "auditor": frozenset({"read", "audit"}),
    "viewer": frozenset({"read"}),
}

# API keys (producers, automation): an `admin` key may do everything in its tenant
SCOPES = frozenset({"ingest", "read", "write", "audit", "admin"})


def role_permissions(role: str) -> frozenset[str]:
    return ROLES.get(role, frozenset())


def scope_permissions(scopes: frozenset[str] | set[str] | list[str]) -> frozenset[str]:
    granted = frozenset(scopes) & SCOPES
    return PERMISSIONS if "admin" in granted else granted
