"""deploy/grafana/queries.py substitutes as Grafana's datasources do (no network)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "grafana"))

from queries import TimeRange, interval_s, substitute  # noqa: E402

BOARD = {
    "templating": {
        "list": [
            {"name": "model", "current": {"value": "m"}},
            {"name": "models", "current": {"value": "x"}},
            {"name": "version", "includeAll": True, "allValue": ".*"},
            {"name": "segment", "includeAll": True, "allValue": "(?:)"},
        ]
    }
}
TR = TimeRange(1_700_000_000_000, 1_700_003_600_000)  # one hour


def test_time_filter_and_interval_as_grafana_sends_them():
    q = substitute(
        "SELECT x WHERE $timeFilter GROUP BY time($__interval)", BOARD, {}, TR, kind="influxdb"
    )
    assert q == (
        "SELECT x WHERE time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(5s)"
    )
    assert interval_s(TR) == 5  # 3600 s / 1000 points = 3.6 s, rounded to 5 s
    assert interval_s(TimeRange(0, 60_000)) == 1  # the datasource's minimum
    assert interval_s(TimeRange(0, 6 * 3600_000)) == 20


def test_variables_all_values_and_regex_escaping():
    q = substitute(
        '"model" =~ /^$model$/ AND "m2" = \'$models\' AND "version" =~ /^$version$/ '
        'AND "segment" =~ /^$segment$/',
        BOARD,
        {"model": "credit.risk", "version": "1.2", "segment": "$__all"},
        TR,
        kind="influxdb",
    )
    # single-value variable raw; include-All variable escaped; All is the allValue
    assert q == (
        '"model" =~ /^credit.risk$/ AND "m2" = \'x\' AND "version" =~ /^1\\.2$/ '
        'AND "segment" =~ /^(?:)$/'
    )


def test_prometheus_rate_interval():
    q = substitute(
        "rate(x[$__rate_interval])", BOARD, {}, TR, kind="prometheus", scrape_interval_s=15
    )
    assert q == "rate(x[1m])"  # max(5 s + 15 s, 4 x 15 s)
    q = substitute(
        "rate(x[$__rate_interval])", BOARD, {}, TR, kind="prometheus", scrape_interval_s=1
    )
    assert q == "rate(x[6s])"
