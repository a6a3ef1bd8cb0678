"""What the trail records of each kind of source event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from driftline_audit.sources import CHECKPOINT_ACTION, to_item
from driftline_core.events import (
    Actor,
    AlertEvent,
    AuditRecord,
    RegistryChange,
    ReportEvent,
    Resource,
    RetrainRequested,
)
from driftline_core.kafka import Message


def msg(ev, topic="t"):
    return Message(topic=topic, partition=0, offset=0, key=None, timestamp_ms=0, value=ev)


def test_audit_records_keep_actor_action_resource_and_outcome():
    ev = AuditRecord(
        tenant_id="acme",
        service="ingestion",
        actor=Actor(type="user", id="user:ana", ip="10.0.0.1"),
        action="http.get",
        resource=Resource(type="endpoint", id="/v1/models"),
        outcome="denied",
        details={"reason": "no key"},
    )
    it = to_item(msg(ev, "driftline.audit.v1"))
    assert it is not None
    assert (it.actor, it.action, it.resource_type, it.resource_id, it.outcome) == (
        "user:ana",
        "http.get",
        "endpoint",
        "/v1/models",
        "denied",
    )
    assert it.source_id == ev.event_id
    assert b"no key" in it.payload


@pytest.mark.parametrize(
    ("ev", "action", "resource"),
    [
        (
            RegistryChange(
                tenant_id="acme",
                model_id="m",
                model_version="2",
                change="version_approved",
                actor="user:bo",
            ),
            "registry.version_approved",
            ("model", "m@2"),
        ),
        (
            AlertEvent(tenant_id="acme", kind="firing", fingerprint="fp1"),
            "alert.firing",
            ("alert", "fp1"),
        ),
        (
            RetrainRequested(tenant_id="acme", model_id="m", rule_id="r", reason="drift"),
            "remediation.retrain",
            ("model", "m"),
        ),
        (
            ReportEvent(
                tenant_id="acme",
                report_id=uuid.uuid4(),
                kind="generated",
                framework="sox",
                period_start=datetime(2026, 1, 1, tzinfo=UTC),
                period_end=datetime(2026, 2, 1, tzinfo=UTC),
                actor="user:aud",
            ),
            "report.generated",
            None,
        ),
    ],
)
def test_control_events_become_records(ev, action, resource):
    it = to_item(msg(ev))
    assert it is not None
    assert it.action == action
    if resource:
        assert (it.resource_type, it.resource_id) == resource


def test_the_services_own_checkpoint_announcements_are_not_recorded_again():
    ev = AuditRecord(
        tenant_id="acme",
        service="audit",
        actor=Actor(type="service", id="service:audit"),
        action=CHECKPOINT_ACTION,
        resource=Resource(type="audit_chain", id="acme@10"),
    )
    assert to_item(msg(ev)) is None
