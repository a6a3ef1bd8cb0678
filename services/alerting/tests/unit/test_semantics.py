"""Alertmanager semantics on a fake clock: rules with `for`, replays, grouping, group_wait /
group_interval / repeat_interval, resolved notifications, silences and inhibition. Each test
fails if its behaviour breaks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftline_alerting.dispatch import Dispatcher, Notification
from driftline_alerting.routing import AlertingConfig, Matcher, Silence, route
from driftline_alerting.rules import Rule, RuleEngine

T0 = 1_800_000_000.0


def drift(model: str, share: float, end: float, features: dict[str, bool] | None = None):
    iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
    return {
        "tenant_id": "t1",
        "model_id": model,
        "model_version": "1",
        "segment": {},
        "event_id": f"{model}-{end}",
        "window": {"start": iso(end - 60), "end": iso(end), "events": 100},
        "drifted_share": share,
        "dataset_drift": share >= 0.5,
        "features": [
            {
                "feature": f,
                "test": "psi",
                "statistic": 0.3 if d else 0.01,
                "threshold": 0.1,
                "drifted": d,
            }
            for f, d in (features or {}).items()
        ],
    }


SHARE = Rule.model_validate(
    {
        "id": "share",
        "name": "DatasetDrift",
        "condition": {"metric": "drift.drifted_share", "op": ">=", "value": 0.5},
        "for_windows": 2,
        "severity": "critical",
        "annotations": {"summary": "{value:.0%} drifted on {model}"},
    }
)
FEATURE = Rule.model_validate(
    {
        "id": "feat",
        "name": "FeatureDrift",
        "condition": {"metric": "drift.feature.drifted", "op": "==", "value": 1, "feature": "*"},
        "severity": "warning",
    }
)
CONFIG = AlertingConfig.model_validate(
    {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "model"],
            "group_wait_s": 10,
            "group_interval_s": 60,
            "repeat_interval_s": 600,
        },
        "receivers": [
            {
                "name": "hook",
                "type": "webhook",
                "url": "http://127.0.0.1:1/x",
                "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            }
        ],
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["model"],
            }
        ],
    }
)


def run(engine, disp, results, now, rules=(SHARE, FEATURE)):
    for r in results:
        for a in engine.observe("drift", r, list(rules), now):
            disp.add(a, CONFIG, now)


def flush(disp: Dispatcher, now: float, silences=()) -> list[Notification]:
    return [n for g in disp.due(now) if (n := disp.flush(g, CONFIG, list(silences), now))]


def test_for_needs_consecutive_windows_and_a_replay_counts_once():
    e = RuleEngine()
    assert e.observe("drift", drift("m", 0.6, T0), [SHARE], T0) == []
    # the same window again (redelivery after a crash) must not complete the streak
    assert e.observe("drift", drift("m", 0.6, T0), [SHARE], T0) == []
    [a] = e.observe("drift", drift("m", 0.6, T0 + 60), [SHARE], T0)
    assert (a.status, a.labels["model"], a.annotations["summary"]) == (
        "firing",
        "m",
        "60% drifted on m",
    )
    assert len(a.evidence) == 2
    assert e.observe("drift", drift("m", 0.7, T0 + 120), [SHARE], T0) == []  # deduplicated
    [r] = e.observe("drift", drift("m", 0.1, T0 + 180), [SHARE], T0)
    assert r.status == "resolved"
    assert r.fingerprint == a.fingerprint
    # a broken streak starts again
    assert e.observe("drift", drift("m", 0.9, T0 + 240), [SHARE], T0) == []


def test_group_waits_then_sends_once_and_repeats_after_repeat_interval():
    e, d = RuleEngine(), Dispatcher()
    run(e, d, [drift("m", 0.0, T0, {"a": True, "b": True})], T0)
    assert flush(d, T0 + 5) == []  # group_wait 10 s
    [n] = flush(d, T0 + 10)
    assert n.status == "firing"
    assert sorted(a.labels["feature"] for a in n.alerts) == ["a", "b"]  # grouped by model
    # the same alerts keep firing: nothing new at each group_interval...
    run(e, d, [drift("m", 0.0, T0 + 60, {"a": True, "b": True})], T0 + 60)
    assert flush(d, T0 + 70) == []
    assert flush(d, T0 + 550) == []
    # ...until repeat_interval has passed
    [again] = flush(d, T0 + 10 + 600)
    assert again.id != n.id  # a repeat is a new notification


def test_a_new_alert_in_the_group_is_sent_at_the_next_interval_not_before():
    e, d = RuleEngine(), Dispatcher()
    run(e, d, [drift("m", 0.0, T0, {"a": True})], T0)
    [_first] = flush(d, T0 + 10)
    run(e, d, [drift("m", 0.0, T0 + 60, {"a": True, "b": True})], T0 + 20)
    assert flush(d, T0 + 30) == []
    [second] = flush(d, T0 + 70)
    assert {a.labels["feature"] for a in second.alerts} == {"a", "b"}


def test_resolved_is_sent_once_and_the_group_goes_away():
    e, d = RuleEngine(), Dispatcher()
    run(e, d, [drift("m", 0.0, T0, {"a": True})], T0)
    flush(d, T0 + 10)
    run(e, d, [drift("m", 0.0, T0 + 60, {"a": False})], T0 + 65)
    [n] = flush(d, T0 + 70)
    assert n.status == "resolved"
    assert [a.status for a in n.alerts] == ["resolved"]
    assert d.groups == {}
    assert flush(d, T0 + 1000) == []


def test_separate_models_are_separate_groups():
    e, d = RuleEngine(), Dispatcher()
    run(e, d, [drift("m1", 0.0, T0, {"a": True}), drift("m2", 0.0, T0, {"a": True})], T0)
    assert sorted(n.group_labels["model"] for n in flush(d, T0 + 10)) == ["m1", "m2"]


def test_a_silence_mutes_and_its_end_lets_the_alert_through():
    e, d = RuleEngine(), Dispatcher()
    when = datetime.fromtimestamp(T0, UTC)
    s = Silence(
        id="s1",
        matchers=[Matcher.parse('feature="a"')],
        starts_at=when,
        ends_at=when + timedelta(seconds=100),
        created_by="ops",
        comment="known issue",
    )
    run(e, d, [drift("m", 0.0, T0, {"a": True})], T0)
    assert flush(d, T0 + 10, [s]) == []
    assert flush(d, T0 + 70, [s]) == []
    [n] = flush(d, T0 + 130, [s])  # the silence ended at T0 + 100
    assert n.alerts[0].labels["feature"] == "a"


def test_a_critical_alert_inhibits_the_models_warnings_with_equal_labels():
    e, d = RuleEngine(), Dispatcher()
    both = [drift("m", 0.6, T0 - 60, {"a": True}), drift("m", 0.6, T0, {"a": True})]
    run(e, d, [*both, drift("other", 0.0, T0, {"a": True})], T0)
    sent = flush(d, T0 + 10)
    names = sorted((n.group_labels["alertname"], n.group_labels["model"]) for n in sent)
    # the FeatureDrift warning of m is inhibited by m's critical DatasetDrift; other's is not
    assert names == [("DatasetDrift", "m"), ("FeatureDrift", "other")]


def test_a_restart_mid_group_does_not_send_again():
    e, d = RuleEngine(), Dispatcher()
    run(e, d, [drift("m", 0.0, T0, {"a": True})], T0)
    [n] = flush(d, T0 + 10)
    saved_engine, saved = e.to_json(), d.to_json()
    e2, d2 = RuleEngine(), Dispatcher()
    e2.load(saved_engine)
    d2.load(saved, T0 + 30)
    run(e2, d2, [drift("m", 0.0, T0, {"a": True})], T0 + 30)  # the last result, redelivered
    assert flush(d2, T0 + 200) == []
    [again] = flush(d2, T0 + 10 + 600)
    assert again.id != n.id


def test_same_decision_gives_the_same_notification_id():
    """A crash after sending but before saving rebuilds the same notification: receivers
    drop it by its id (the idempotency key)."""
    ids = []
    for _ in range(2):
        e, d = RuleEngine(), Dispatcher()
        run(e, d, [drift("m", 0.0, T0, {"a": True})], T0)
        [n] = flush(d, T0 + 10)
        ids.append(n.id)
    assert ids[0] == ids[1]


def test_routing_tree_first_match_continue_and_inheritance():
    cfg = AlertingConfig.model_validate(
        {
            "route": {
                "receiver": "default",
                "group_wait_s": 5,
                "routes": [
                    {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
                    {"matchers": ['model=~"credit-.*"'], "receiver": "team", "group_by": ["..."]},
                    {"matchers": ['model=~"credit-.*"'], "receiver": "never"},
                ],
            },
            "receivers": [
                {"name": n, "type": "slack", "url": "http://127.0.0.1:1/"}
                for n in ("default", "pager", "team", "never")
            ],
        }
    )
    got = route(cfg.route, {"severity": "critical", "model": "credit-1", "alertname": "X"})
    assert [r.receiver for r in got] == ["pager", "team"]
    assert got[1].group_by == ("...",)
    assert got[1].group_wait_s == 5
    assert [r.receiver for r in route(cfg.route, {"model": "fraud"})] == ["default"]


def test_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="receivers that do not exist: nope"):
        AlertingConfig.model_validate({"route": {"receiver": "nope"}})
    with pytest.raises(ValueError, match="is per feature"):
        Rule.model_validate(
            {
                "id": "x",
                "name": "X",
                "condition": {"metric": "drift.feature.statistic", "op": ">", "value": 1},
            }
        )
    with pytest.raises(ValueError, match="unknown metric"):
        Rule.model_validate(
            {"id": "x", "name": "X", "condition": {"metric": "cpu", "op": ">", "value": 1}}
        )
    with pytest.raises(ValueError, match="not a matcher"):
        Matcher.parse("just words")


def test_a_mute_time_interval_holds_the_notification_until_it_ends():
    t = datetime.fromtimestamp(T0, UTC)
    start, end = f"{t:%H:%M}", f"{t + timedelta(minutes=2):%H:%M}"
    cfg = AlertingConfig.model_validate(
        {
            **CONFIG.model_dump(mode="json", by_alias=True),
            "route": {
                "receiver": "hook",
                "group_by": ["alertname", "model"],
                "group_wait": "10s",
                "group_interval": "1m",
                "mute_time_intervals": ["at-t0"],
            },
            "time_intervals": [
                {
                    "name": "at-t0",
                    "time_intervals": [{"times": [{"start_time": start, "end_time": end}]}],
                }
            ],
        }
    )
    e, d = RuleEngine(), Dispatcher()
    for a in e.observe("drift", drift("m", 0.0, T0, {"a": True, "b": True}), [FEATURE], T0):
        d.add(a, cfg, T0)

    def due(now: float) -> list[Notification]:
        return [n for g in d.due(now) if (n := d.flush(g, cfg, [], now))]

    assert due(T0 + 10) == []  # muted: the interval covers T0's minute and the next
    [n] = due(T0 + 10 + 180)  # the first flush after it ended sends
    assert n.status == "firing"
