"""Alertmanager's configuration syntax: its own example configuration round-trips, and
Debian's real amtool (the Alertmanager's own parser and router) accepts what Driftline shows
and routes every label set of a grid the way Driftline does; durations, the matcher forms,
legacy match/match_re, http_config, time intervals, and refusals that name the field."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from driftline_alerting.routing import (
    AlertingConfig,
    Matcher,
    format_duration,
    parse_duration,
    parse_matchers,
    render,
    route,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "alertmanager" / "simple.yml"


def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.fail("amtool is missing: deploy/local/bootstrap.sh installs prometheus-alertmanager")
    return path


def test_durations_as_prometheus_writes_them():
    assert parse_duration("30s") == 30
    assert parse_duration("1h30m") == 5400
    assert parse_duration("1d") == 86400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(12) == 12
    assert format_duration(5400) == "1h30m"
    assert format_duration(0) == "0s"
    assert format_duration(3 * 3600) == "3h"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("30 seconds")


def test_the_matcher_forms():
    assert parse_matchers('{severity="critical", model=~"credit-.*"}') == [
        Matcher(name="severity", value="critical"),
        Matcher(name="model", value="credit-.*", op="=~"),
    ]
    assert parse_matchers("team != ml") == [Matcher(name="team", value="ml", op="!=")]
    assert parse_matchers(r'msg="say \"hi\", please"') == [
        Matcher(name="msg", value='say "hi", please')
    ]
    assert str(Matcher(name="msg", value='a"b')) == r'msg="a\"b"'
    with pytest.raises(ValueError, match="not a matcher"):
        parse_matchers("just words")
    # list form, brace form and legacy match/match_re mean the same route
    forms = [
        {"matchers": ['severity="critical"', 'model=~"credit-.*"']},
        {"matchers": ['{severity="critical",model=~"credit-.*"}']},
        {"match": {"severity": "critical"}, "match_re": {"model": "credit-.*"}},
    ]
    routes = [
        AlertingConfig.model_validate(
            {
                "route": {"receiver": "a", "routes": [{**f, "receiver": "b"}]},
                "receivers": [{"name": "a"}, {"name": "b"}],
            }
        ).route.routes[0]
        for f in forms
    ]
    assert routes[0].matchers == routes[1].matchers
    assert set(routes[0].matchers) == set(routes[2].matchers)


def test_alertmanagers_example_configuration_round_trips():
    doc = yaml.safe_load(FIXTURE.read_text())
    cfg = AlertingConfig.model_validate(doc)
    assert cfg.route.group_wait == 30
    assert cfg.route.repeat_interval == 3 * 3600
    shown = render(cfg, redact=False)
    again = AlertingConfig.model_validate(yaml.safe_load(yaml.safe_dump(shown)))
    assert again == cfg
    assert shown["route"]["group_wait"] == "30s"
    assert cfg.warnings() == [
        "templates: kept, but not used by Driftline",
        "tracing: kept, but not used by Driftline",
    ]
    # secrets as Alertmanager shows them, and read back as such
    redacted = render(cfg)
    assert redacted["global"]["smtp_auth_password"] == "<secret>"
    assert redacted["receivers"][1]["pagerduty_configs"][0]["service_key"] == "<secret>"


def test_amtool_accepts_what_driftline_shows_and_routes_like_driftline(tmp_path):
    doc = yaml.safe_load(FIXTURE.read_text())
    doc["receivers"].append(  # and a webhook with client settings, shown as amtool reads them
        {
            "name": "hook",
            "webhook_configs": [
                {
                    "url": "https://hooks.example.org/x",
                    "http_config": {
                        "basic_auth": {"username": "u", "password": "p"},
                        "tls_config": {"insecure_skip_verify": True},
                    },
                    "driftline_signing_secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                }
            ],
        }
    )
    cfg = AlertingConfig.model_validate(doc)
    path = tmp_path / "shown.yml"
    path.write_text(yaml.safe_dump(render(cfg, extensions=False)))
    out = subprocess.run([amtool(), "check-config", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
    grid = {
        "service": ["foo1", "baz", "files", "database", "other"],
        "severity": ["critical", "warning"],
        "owner": ["team-X", "team-Y", ""],
    }
    for values in itertools.product(*grid.values()):
        labels = {k: v for k, v in zip(grid, values, strict=True) if v}
        ours = [r.receiver for r in route(cfg.route, labels)]
        args = [f"{k}={v}" for k, v in labels.items()]
        am = subprocess.run(
            [amtool(), "config", "routes", "test", f"--config.file={path}", *args],
            capture_output=True,
            text=True,
        )
        assert am.returncode == 0, am.stderr
        theirs = am.stdout.strip().split(",")
        assert ours == theirs, labels


def test_unsupported_fields_are_refused_by_name():
    base = {"route": {"receiver": "r"}}
    with pytest.raises(ValidationError, match="opsgenie_configs: not supported by Driftline"):
        AlertingConfig.model_validate(
            {**base, "receivers": [{"name": "r", "opsgenie_configs": [{"api_key": "k"}]}]}
        )
    with pytest.raises(ValidationError) as e:
        AlertingConfig.model_validate(
            {**base, "receivers": [{"name": "r", "slack_configs": [{"title": "{{ x }}"}]}]}
        )
    assert e.value.errors()[0]["loc"] == ("receivers", 0, "slack_configs", 0, "title")
    with pytest.raises(ValidationError) as e:
        AlertingConfig.model_validate({"route": {"receiver": "r", "group_wiat": "30s"}})
    assert ("route", "group_wiat") in [err["loc"] for err in e.value.errors()]
    with pytest.raises(ValidationError, match="time intervals that do not exist: weekends"):
        AlertingConfig.model_validate(
            {
                "route": {"receiver": "r", "mute_time_intervals": ["weekends"]},
                "receivers": [{"name": "r"}],
            }
        )


def test_http_config_and_driftline_extensions():
    cfg = AlertingConfig.model_validate(
        {
            "route": {"receiver": "hook"},
            "receivers": [
                {
                    "name": "hook",
                    "webhook_configs": [
                        {
                            "url": "https://hooks.example.org/a",
                            "http_config": {
                                "bearer_token": "T",
                                "tls_config": {"insecure_skip_verify": True},
                            },
                            "driftline_signing_secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                        }
                    ],
                    "driftline_alertmanager_configs": [{"url": "http://am:9093"}],
                }
            ],
        }
    )
    hook = cfg.receivers[0].webhook_configs[0]
    assert hook.http_config is not None
    assert hook.http_config.authorization is not None
    assert hook.http_config.authorization.credentials == "T"  # bearer_token is authorization
    shown = render(cfg, extensions=False)
    assert "driftline_alertmanager_configs" not in shown["receivers"][0]
    assert "driftline_signing_secrets" not in shown["receivers"][0]["webhook_configs"][0]
    assert (
        shown["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]["credentials"]
        == "<secret>"
    )
    assert cfg.receivers[0].resend_s == 60


def test_time_intervals_mute_and_activate_routes():
    cfg = AlertingConfig.model_validate(
        {
            "route": {
                "receiver": "r",
                "routes": [
                    {"matchers": ['team="a"'], "mute_time_intervals": ["weekends"]},
                    {"matchers": ['team="b"'], "active_time_intervals": ["office"]},
                ],
            },
            "receivers": [{"name": "r"}],
            "time_intervals": [
                {"name": "weekends", "time_intervals": [{"weekdays": ["saturday:sunday"]}]},
                {
                    "name": "office",
                    "time_intervals": [
                        {
                            "weekdays": ["monday:friday"],
                            "times": [{"start_time": "09:00", "end_time": "17:00"}],
                            "location": "Europe/Berlin",
                        }
                    ],
                },
            ],
        }
    )
    saturday = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    monday_10_berlin = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    monday_17_berlin = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # 17:00: the end is excluded
    [a] = route(cfg.route, {"team": "a"})
    [b] = route(cfg.route, {"team": "b"})
    assert cfg.muted_by(a, saturday) == ["weekends"]
    assert cfg.muted_by(a, monday_10_berlin) == []
    assert cfg.muted_by(b, monday_10_berlin) == []
    assert cfg.muted_by(b, monday_17_berlin) == ["office"]
    assert cfg.muted_by(b, saturday) == ["office"]


def test_the_earlier_driftline_form_still_reads():
    cfg = AlertingConfig.model_validate(
        {
            "route": {"receiver": "hook", "group_wait_s": 0, "repeat_interval_s": 60},
            "receivers": [
                {
                    "name": "hook",
                    "type": "webhook",
                    "url": "http://127.0.0.1:9/x",
                    "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                    "timeout_s": 2,
                },
                {
                    "name": "mail",
                    "type": "email",
                    "to": ["a@example.org", "b@example.org"],
                    "sender": "d@example.org",
                    "host": "smtp.example.org",
                },
            ],
        }
    )
    assert cfg.route.group_wait == 0
    assert cfg.route.repeat_interval == 60
    hook = cfg.receivers[0].webhook_configs[0]
    assert hook.timeout == 2
    assert hook.driftline_signing_secrets
    mail = cfg.receivers[1].email_configs[0]
    assert (mail.to, mail.smarthost, mail.send_resolved) == (
        "a@example.org, b@example.org",
        "smtp.example.org:587",
        True,
    )


def test_integration_refs_name_each_integration_by_its_list_and_place():
    from driftline_alerting.routing import INTEGRATION_FIELDS, Receiver

    r = Receiver.model_validate(
        {
            "name": "r",
            "email_configs": [{"to": "a@example.org"}, {"to": "b@example.org"}],
            "webhook_configs": [{"url": "http://h/x"}],
            "pagerduty_configs": [{"routing_key": "k"}],
        }
    )
    refs = r.integration_refs()
    assert refs == [
        "webhook_configs/0",
        "pagerduty_configs/0",
        "email_configs/0",
        "email_configs/1",
    ]
    for ref, integration in zip(refs, r.integrations, strict=True):
        field, place = ref.split("/")
        assert getattr(r, field)[int(place)] is integration
        assert isinstance(integration, INTEGRATION_FIELDS[field])
