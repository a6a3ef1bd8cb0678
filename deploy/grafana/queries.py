"""Runs a dashboard's panel queries the way Grafana would, without Grafana: template
variables, `$timeFilter`, `$__interval` and `$__rate_interval` substituted as Grafana's
InfluxDB (InfluxQL) and Prometheus datasources do, then sent to InfluxDB's `/query` and
Prometheus' `/api/v1/query_range`. Used by tests/e2e/test_dashboards.py (every panel of
every dashboard against a real run) and deploy/local/demo_dashboards.py (PNG renderings)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Series",
    "TimeRange",
    "interval_s",
    "panel_results",
    "run_influx",
    "run_prometheus",
    "substitute",
]

# Grafana's interval rounding (kbn.roundInterval), in seconds
_NICE = [
    (0.015, 0.01), (0.035, 0.02), (0.075, 0.05), (0.15, 0.1), (0.35, 0.2), (0.75, 0.5),
    (1.5, 1), (3.5, 2), (7.5, 5), (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60),
    (210, 120), (450, 300), (750, 600), (1050, 900), (1500, 1200), (2700, 1800),
    (5400, 3600), (9000, 7200), (16200, 10800), (32400, 21600), (86400, 43200),
]  # fmt: skip


@dataclass(frozen=True)
class TimeRange:
    start_ms: int
    end_ms: int

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000


@dataclass
class Series:
    """One series a query returned: its name (measurement or metric), tags or labels, and
    columns of values (time first, epoch ms)."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]] = field(default_factory=list)

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.values]

    def numbers(self) -> list[float]:
        """Every non-null number of the series' value columns."""
        return [
            float(v)
            for row in self.values
            for v in row[1:]
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]


def interval_s(tr: TimeRange, *, max_points: int = 1000, min_s: float = 1.0) -> float:
    """`$__interval` as Grafana computes it: the range over the panel's data points,
    rounded to a nice value, at least the datasource's minimum interval."""
    raw = tr.seconds / max_points
    for limit, nice in _NICE:
        if raw < limit:
            return max(nice, min_s)
    return max(86400.0, min_s)


def _duration(seconds: float) -> str:
    if seconds >= 1 and seconds == int(seconds):
        s = int(seconds)
        for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
            if s % n == 0:
                return f"{s // n}{unit}"
        return f"{s}s"
    return f"{int(seconds * 1000)}ms"


def _regex_escape(value: str) -> str:
    """Grafana's escapeRegex: the characters special in a regular expression."""
    return re.sub(r"([\\^$*+?.()|{}\[\]/])", r"\\\1", value)


def _variable_value(var: dict[str, Any], value: str) -> str:
    """A variable's text in a query as Grafana's InfluxDB datasource interpolates it:
    "All" is the variable's allValue (raw) when it has one (Grafana otherwise joins every
    option, `(a|b)`, which only a live Grafana knows: `.*` here); other values are
    regex-escaped for variables that are multi-value or include All, and raw otherwise."""
    if value == "$__all":
        return str(var.get("allValue") or ".*")
    if var.get("multi") or var.get("includeAll"):
        return _regex_escape(value)
    return value


def substitute(
    query: str,
    board: dict[str, Any],
    values: dict[str, str],
    tr: TimeRange,
    *,
    kind: str,
    min_interval_s: float = 1.0,
    scrape_interval_s: float = 15.0,
) -> str:
    """The query as Grafana sends it. `values` are the selected values of the dashboard's
    template variables (a variable not given keeps its `current` value)."""
    interval = interval_s(tr, min_s=min_interval_s)
    out = query
    variables = {v["name"]: v for v in board.get("templating", {}).get("list", [])}
    # longest names first, so $model does not eat the start of $models
    for name in sorted(variables, key=len, reverse=True):
        var = variables[name]
        value = values.get(name, var.get("current", {}).get("value", ""))
        text = _variable_value(var, str(value))
        out = out.replace("${" + name + "}", text).replace("$" + name, text)
    if kind == "influxdb":
        out = out.replace("$timeFilter", f"time >= {tr.start_ms}ms and time <= {tr.end_ms}ms")
        out = out.replace("$__interval", _duration(interval))
    else:  # Prometheus: $__rate_interval = max($__interval + scrape, 4 * scrape)
        rate = max(interval + scrape_interval_s, 4 * scrape_interval_s)
        out = out.replace("$__rate_interval", _duration(rate))
        out = out.replace("$__interval", _duration(interval))
        out = out.replace("$__range", _duration(tr.seconds))
    return out


def _get(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body: dict[str, Any] = json.load(r)
    except urllib.error.HTTPError as e:  # 400 with {"error": ...} on a parse error
        body = json.load(e)
    return body


def run_influx(url: str, database: str, query: str, token: str = "") -> list[Series]:
    """Run one InfluxQL statement; raises on an error InfluxDB reports."""
    qs = urllib.parse.urlencode({"db": database, "q": query, "epoch": "ms"})
    headers = {"Authorization": f"Token {token}"} if token else {}
    body = _get(f"{url}/query?{qs}", headers)
    if body.get("error"):
        raise ValueError(f"InfluxDB: {body['error']}\n{query}")
    out: list[Series] = []
    for result in body.get("results", []):
        if result.get("error"):
            raise ValueError(f"InfluxDB: {result['error']}\n{query}")
        for s in result.get("series", []):
            out.append(Series(s.get("name", ""), s.get("tags", {}), s["columns"], s["values"]))
    return out


def run_prometheus(url: str, expr: str, tr: TimeRange, step_s: float) -> list[Series]:
    qs = urllib.parse.urlencode(
        {"query": expr, "start": tr.start_ms / 1000, "end": tr.end_ms / 1000, "step": step_s}
    )
    body = _get(f"{url}/api/v1/query_range?{qs}")
    if body.get("status") != "success":
        raise ValueError(f"Prometheus: {body.get('error')}\n{expr}")
    out = []
    for r in body["data"]["result"]:
        labels = dict(r["metric"])
        values = [[int(float(t) * 1000), float(v)] for t, v in r["values"]]
        out.append(Series(labels.pop("__name__", ""), labels, ["time", "value"], values))
    return out


@dataclass
class PanelResult:
    panel: dict[str, Any]
    target: dict[str, Any]
    query: str  # as sent
    series: list[Series]


def panel_results(
    board: dict[str, Any],
    values: dict[str, str],
    tr: TimeRange,
    *,
    influx_url: str,
    influx_database: str,
    prometheus_url: str | None = None,
    influx_token: str = "",
    scrape_interval_s: float = 15.0,
) -> list[PanelResult]:
    """Every target of every panel of the dashboard, run."""
    out = []
    for p in board["panels"]:
        for t in p.get("targets", []):
            kind = t["datasource"]["type"]
            if kind == "influxdb":
                q = substitute(t["query"], board, values, tr, kind=kind)
                series = run_influx(influx_url, influx_database, q, influx_token)
            else:
                if prometheus_url is None:
                    continue
                q = substitute(
                    t["expr"], board, values, tr, kind=kind, scrape_interval_s=scrape_interval_s
                )
                step = interval_s(tr, min_s=scrape_interval_s)
                series = run_prometheus(prometheus_url, q, tr, step)
            out.append(PanelResult(p, t, q, series))
    return out


def variable_values(
    board: dict[str, Any],
    values: dict[str, str],
    *,
    influx_url: str,
    influx_database: str,
    influx_token: str = "",
) -> dict[str, list[str]]:
    """What each template variable's query offers, given the other variables' values."""
    tr = TimeRange(0, 0)
    out = {}
    for var in board.get("templating", {}).get("list", []):
        q = substitute(var["query"], board, values, tr, kind="influxdb")
        series = run_influx(influx_url, influx_database, q, influx_token)
        out[var["name"]] = sorted({str(row[1]) for s in series for row in s.values})
    return out
