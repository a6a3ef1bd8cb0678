"""Generates the Grafana dashboards in deploy/grafana/dashboards/ (run it after editing this
file; tests/unit/test_dashboards.py fails on a stale JSON file).

Every InfluxDB panel is raw InfluxQL against the datasource `driftline-influxdb` with
`$timeFilter`, `$__interval` and the template variables tenant, model, version, feature and
segment; every Prometheus panel is PromQL against `driftline-prometheus`. The measurements and
metrics are described in docs/metrics.md; tests/e2e/test_dashboards.py runs every query of
every panel against a real run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
INFLUX = {"type": "influxdb", "uid": "driftline-influxdb"}
PROM = {"type": "prometheus", "uid": "driftline-prometheus"}
DATASOURCE_UIDS = {INFLUX["uid"], PROM["uid"]}

# filters: a regex per template variable, as Grafana's InfluxQL editor writes them
T = '"tenant" =~ /^$tenant$/'
M = f'{T} AND "model" =~ /^$model$/'
MV = f'{M} AND "version" =~ /^$version$/'
SEG = '"segment" =~ /^$segment$/'  # "All" (allValue "(?:)") is the whole population
MVS = f"{MV} AND {SEG}"
F = '"feature" =~ /^$feature$/'


class Board:
    def __init__(self, uid: str, title: str, description: str, tags: list[str]) -> None:
        self.uid, self.title, self.description, self.tags = uid, title, description, tags
        self.panels: list[dict[str, Any]] = []
        self.checks: dict[int, dict[str, Any]] = {}  # panel id -> expectations (tests)
        self.variables: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.row_h = 0

    # --- layout ---------------------------------------------------------------------------

    def _pos(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    # --- panels -----------------------------------------------------------------------------

    def panel(
        self,
        kind: str,
        title: str,
        description: str,
        targets: list[str],
        *,
        datasource: dict[str, str] = INFLUX,
        w: int = 12,
        h: int = 8,
        unit: str | None = None,
        fmt: str = "time_series",
        options: dict[str, Any] | None = None,
        custom: dict[str, Any] | None = None,
        legends: list[str] | None = None,
        checks: dict[str, Any] | None = None,
    ) -> None:
        """`checks`: what tests/e2e/test_dashboards.py asserts about the panel's data."""
        defaults: dict[str, Any] = {"custom": custom or {}}
        if unit:
            defaults["unit"] = unit
        tgts: list[dict[str, Any]] = []
        for i, q in enumerate(targets):
            ref = chr(ord("A") + i)
            if datasource is PROM:
                t: dict[str, Any] = {"refId": ref, "datasource": PROM, "expr": q, "range": True}
                if legends:
                    t["legendFormat"] = legends[i]
            else:
                t = {
                    "refId": ref,
                    "datasource": INFLUX,
                    "query": q,
                    "rawQuery": True,
                    "resultFormat": fmt,
                }
                if legends:
                    t["alias"] = legends[i]
            tgts.append(t)
        p: dict[str, Any] = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": datasource,
            "gridPos": self._pos(w, h),
            "targets": tgts,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options or {},
        }
        self.checks[p["id"]] = checks or {"min_series": 1}
        self.panels.append(p)

    def variable(
        self,
        name: str,
        label: str,
        query: str,
        *,
        all_value: str | None = None,
        datasource: dict[str, str] = INFLUX,
    ) -> None:
        v: dict[str, Any] = {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": datasource,
            "query": query,
            "refresh": 2,
            "sort": 1,
            "multi": False,
            "includeAll": all_value is not None,
            "current": {"text": "", "value": ""},
            "options": [],
            "hide": 0,
        }
        if all_value is not None:
            v["allValue"] = all_value
            v["current"] = {"text": "All", "value": "$__all"}
        self.variables.append(v)

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["driftline", *self.tags],
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "timezone": "browser",
            "refresh": "10s",
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {},
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "annotations": {"list": []},
            "links": [
                {
                    "title": "Driftline",
                    "type": "dashboards",
                    "tags": ["driftline"],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                    "icon": "external link",
                    "targetBlank": False,
                    "tooltip": "",
                    "url": "",
                }
            ],
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


def tenant_var(b: Board) -> None:
    b.variable(
        "tenant",
        "Tenant",
        'SHOW TAG VALUES FROM /^(live_model|drift_window)$/ WITH KEY = "tenant"',
    )


def model_vars(b: Board, *, feature: bool = False) -> None:
    tenant_var(b)
    b.variable(
        "model",
        "Model",
        f'SHOW TAG VALUES FROM /^(live_model|drift_window)$/ WITH KEY = "model" WHERE {T}',
    )
    b.variable(
        "version",
        "Version",
        f'SHOW TAG VALUES FROM /^(live_model|drift_window)$/ WITH KEY = "version" WHERE {M}',
        all_value=".*",
    )
    if feature:
        b.variable(
            "feature",
            "Feature",
            f'SHOW TAG VALUES FROM "drift_feature" WITH KEY = "feature" WHERE {M}',
        )
    b.variable(
        "segment",
        "Segment",
        f'SHOW TAG VALUES FROM "drift_window" WITH KEY = "segment" WHERE {M}',
        all_value="(?:)",  # "All" = the whole population: matches only series without the tag
    )


TS = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "auto"}
BARS = {"drawStyle": "bars", "fillOpacity": 80, "stacking": {"mode": "normal", "group": "A"}}
LEGEND = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}


def fleet() -> Board:
    b = Board(
        "driftline-fleet",
        "Driftline / Fleet overview",
        "Every model of a tenant: event rates, drifted models, open alerts, data quality.",
        ["fleet"],
    )
    tenant_var(b)
    b.panel(
        "table",
        "Models",
        "Each model and version with the events accepted in the range (live series: "
        "ingestion's and Kafka-native producers', summed).",
        [
            f'SELECT sum("events") AS "events" FROM "live_model" WHERE {T} AND $timeFilter '
            'GROUP BY "model", "version"'
        ],
        fmt="table",
        w=8,
        checks={"min_series": 1, "positive": True},
    )
    b.panel(
        "timeseries",
        "Event rate by model",
        "Events accepted per interval, per model (live series, 1 s resolution: over HTTP "
        "and straight to Kafka, summed over both sources).",
        [
            f'SELECT sum("events") FROM "live_model" WHERE {T} AND $timeFilter '
            'GROUP BY time($__interval), "model" fill(0)'
        ],
        w=16,
        custom=BARS,
        options=LEGEND,
        checks={"sum_equals": "events_sent_total"},
    )
    b.panel(
        "table",
        "Drifted models",
        "1 if any window of the model (whole population) had dataset drift in the range.",
        [
            f'SELECT max("dataset_drift") AS "dataset_drift", max("drifted_share") AS '
            f'"drifted_share" FROM "drift_window" WHERE {T} AND "segment" = \'\' AND $timeFilter '
            'GROUP BY "model"'
        ],
        fmt="table",
        w=8,
        checks={"min_series": 1, "positive": True},
    )
    b.panel(
        "table",
        "Open alerts",
        "Alerts firing and not resolved, per model and rule: the sum of +1 (firing) and "
        "-1 (resolved) over the range (choose a range that covers the alerts' start).",
        [
            f'SELECT sum("delta") AS "open" FROM "alert" WHERE {T} AND $timeFilter '
            'GROUP BY "model", "rule"'
        ],
        fmt="table",
        w=8,
        checks={"min_series": 1, "non_negative": True},
    )
    b.panel(
        "timeseries",
        "Data-quality score by model",
        "Share of feature values that were present, in range, of a known category and of "
        "the right type, per window (100 = no problem).",
        [
            f'SELECT mean("quality_score") FROM "drift_window" WHERE {T} AND "segment" = \'\' '
            'AND $timeFilter GROUP BY time($__interval), "model" fill(none)'
        ],
        w=8,
        unit="percent",
        custom=TS,
        checks={"min_series": 1, "range": [0, 100]},
    )
    return b


def model_detail() -> Board:
    b = Board(
        "driftline-model",
        "Driftline / Model detail",
        "One model and version: traffic, predictions, drift per feature, data quality, "
        "performance once labels arrive, business value and alerts.",
        ["model"],
    )
    model_vars(b)
    b.row("Traffic")
    b.panel(
        "timeseries",
        "Event rate",
        "Events accepted and refused per interval (live series, both sources summed: "
        "ingestion's visible within about 250 ms of acceptance, Kafka-native records once "
        "drift detection polled them; refusals are ingestion's).",
        [
            f'SELECT sum("events") AS "accepted", sum("rejected") AS "rejected" FROM "live_model" '
            f"WHERE {MV} AND $timeFilter GROUP BY time($__interval) fill(0)"
        ],
        custom=BARS,
        options=LEGEND,
        checks={"sum_equals": "events_sent", "column": "accepted"},
    )
    b.panel(
        "timeseries",
        "Model latency",
        "The model server's reported latency_ms: median of each second's p50, and the worst "
        "second's p99 in each interval (a second with events from both sources has a "
        "point of each: the median and the max run over both).",
        [
            f'SELECT median("latency_p50_ms") AS "p50", max("latency_p99_ms") AS "p99" FROM '
            f'"live_model" WHERE {MV} AND $timeFilter GROUP BY time($__interval) fill(none)'
        ],
        unit="ms",
        custom=TS,
        options=LEGEND,
        checks={"min_series": 1, "latency": True},
    )
    b.row("Predictions")
    b.panel(
        "timeseries",
        "Prediction distribution",
        "Predictions per class per interval (classifiers; live series).",
        [
            f'SELECT sum("count") FROM "live_prediction_class" WHERE {MV} AND $timeFilter '
            'GROUP BY time($__interval), "class" fill(0)'
        ],
        custom=BARS,
        options=LEGEND,
        checks={"sum_equals": "events_sent"},
    )
    b.panel(
        "timeseries",
        "Prediction mean",
        "Mean numeric prediction (regression output, or the positive rate of 0/1 labels): "
        "the sum of the predictions over their count, so each second and each source "
        "weighs by its events.",
        [
            f'SELECT sum("prediction_sum") / sum("prediction_count") AS "mean" FROM '
            f'"live_model" WHERE {MV} AND $timeFilter GROUP BY time($__interval) fill(none)'
        ],
        custom=TS,
        checks={"min_series": 1, "range": [0, 1]},  # the runs' classifiers predict 0 or 1
    )
    b.row("Drift")
    b.panel(
        "heatmap",
        "Drift per feature",
        "1 where a feature's test rejected the reference in a window (its statistic beyond "
        "the calibrated threshold), per feature over time.",
        [
            f'SELECT max("drifted") FROM "drift_feature" WHERE {MVS} AND "feature" != '
            "'prediction' AND $timeFilter GROUP BY time($__interval), \"feature\" fill(none)"
        ],
        w=16,
        options={
            "calculate": False,
            "yAxis": {"axisPlacement": "left"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Reds", "exponent": 0.5, "steps": 64},
            "legend": {"show": True},
        },
        checks={"heatmap_drifted": True},
    )
    b.panel(
        "timeseries",
        "Drifted share and dataset drift",
        "Share of features that drifted per window, and the dataset-drift verdict (1).",
        [
            f'SELECT mean("drifted_share") AS "drifted share", max("dataset_drift") AS '
            f'"dataset drift" FROM "drift_window" WHERE {MVS} AND $timeFilter GROUP BY '
            "time($__interval) fill(none)"
        ],
        w=8,
        unit="percentunit",
        custom=TS,
        checks={"min_series": 1, "range": [0, 1]},
    )
    b.row("Data quality")
    b.panel(
        "timeseries",
        "Quality score",
        "Share of good feature values per window (100 = no problem).",
        [
            f'SELECT mean("quality_score") FROM "drift_window" WHERE {MVS} AND $timeFilter '
            "GROUP BY time($__interval) fill(none)"
        ],
        unit="percent",
        custom=TS,
        checks={"min_series": 1, "range": [0, 100]},
    )
    b.panel(
        "timeseries",
        "Quality problems",
        "Missing, out-of-range, unseen-category, wrong-type values and outliers per window, "
        "over all features.",
        [
            f'SELECT sum("count") AS "values", sum("missing") AS "missing", sum("out_of_range") AS '
            f'"out of range", sum("unseen_categories") AS "unseen categories", sum("type_errors") '
            f'AS "type errors", sum("outliers") AS "outliers" FROM "quality_feature" WHERE {MVS} '
            "AND $timeFilter GROUP BY time($__interval) fill(none)"
        ],
        custom=BARS,
        options=LEGEND,
        checks={"min_series": 1, "column_sum": ["values", "events_sent_times_features"]},
    )
    b.row("Performance (late labels)")
    b.panel(
        "timeseries",
        "Performance",
        "Per window of the predictions' time, computed when their labels arrive: accuracy, "
        "F1, ROC-AUC (classification), MAE and RMSE (regression).",
        [
            f'SELECT mean("accuracy") AS "accuracy", mean("f1") AS "f1", mean("roc_auc") AS '
            f'"roc_auc", mean("mae") AS "mae", mean("rmse") AS "rmse" FROM "performance" WHERE '
            f"{MVS} AND $timeFilter GROUP BY time($__interval) fill(none)"
        ],
        custom=TS,
        options=LEGEND,
        # every value a share; each window's accuracy is the labels' (recomputed by the test)
        checks={"min_series": 1, "range": [0, 1], "accuracy": True},
    )
    b.panel(
        "timeseries",
        "Labelled events",
        "Predictions that got their label, per window.",
        [
            f'SELECT sum("labelled") AS "labelled" FROM "performance" WHERE {MVS} AND $timeFilter '
            "GROUP BY time($__interval) fill(none)"
        ],
        custom=BARS,
        checks={"sum_equals": "labels_sent", "column": "labelled"},
    )
    b.row("Business value and alerts")
    b.panel(
        "timeseries",
        "Business value",
        "Sum of the events' business_value per window, and its sum over wrongly predicted "
        "events once labels arrive.",
        [
            f'SELECT sum("business_value_sum") AS "value" FROM "drift_window" WHERE {MVS} AND '
            "$timeFilter GROUP BY time($__interval) fill(none)",
            f'SELECT sum("business_value_wrong") AS "value of wrong predictions" FROM '
            f'"performance" WHERE {MVS} AND $timeFilter GROUP BY time($__interval) fill(none)',
        ],
        custom=BARS,
        options=LEGEND,
        checks={"sum_equals": "value_sent", "column": "value", "target": "A"},
    )
    b.panel(
        "state-timeline",
        "Alerts timeline",
        "Each alert rule's state for the model: firing (1) or resolved (0).",
        [
            f'SELECT last("firing") FROM "alert" WHERE {M} AND $timeFilter GROUP BY '
            'time($__interval), "rule", "feature" fill(previous)'
        ],
        options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        # one row per drifted feature (and none for the others), each 0/1, firing once
        checks={"alert_rows": "drifted_features"},
    )
    return b


def feature_detail() -> Board:
    b = Board(
        "driftline-feature",
        "Driftline / Feature detail",
        "One feature of a model: its test statistic against the calibrated threshold, and "
        "its distribution in the reference and in the latest window.",
        ["feature"],
    )
    model_vars(b, feature=True)
    b.panel(
        "timeseries",
        "Statistic and calibrated threshold",
        "The drift test's statistic per window and the threshold calibrated for it on the "
        "reference (drift where the statistic is above).",
        [
            f'SELECT mean("statistic") AS "statistic", mean("threshold") AS "threshold" FROM '
            f'"drift_feature" WHERE {MVS} AND {F} AND $timeFilter GROUP BY time($__interval) '
            "fill(none)"
        ],
        w=16,
        custom=TS,
        options=LEGEND,
        checks={"min_series": 1, "positive": True},
    )
    b.panel(
        "timeseries",
        "p-value",
        "The test's p-value per window (-1 when the test has none).",
        [
            f'SELECT mean("p_value") AS "p-value" FROM "drift_feature" WHERE {MVS} AND {F} AND '
            "$timeFilter GROUP BY time($__interval) fill(none)"
        ],
        w=8,
        custom=TS,
        checks={"min_series": 1, "range": [-1, 1]},
    )
    b.panel(
        "barchart",
        "Reference versus latest window",
        "Share of the reference and of the latest window in the range in each of the "
        "reference's quantile bins (numeric) or categories.",
        [
            f'SELECT last("reference_share") AS "reference", last("current_share") AS "current" '
            f'FROM "feature_bins" WHERE {MVS} AND {F} AND $timeFilter GROUP BY "bin"'
        ],
        fmt="table",
        w=24,
        options={"xField": "bin", "orientation": "vertical", "stacking": "none", **LEGEND},
        checks={"shares": True},
    )
    return b


def platform() -> Board:
    b = Board(
        "driftline-platform",
        "Driftline / Platform health",
        "The services' own Prometheus metrics: consumer lag, dead letters, notifications, "
        "HTTP errors, the audit chains and the InfluxDB spool.",
        ["platform"],
    )
    rate = "[$__rate_interval]"
    b.panel(
        "timeseries",
        "Consumer lag",
        "Records not yet committed per consumer group and topic (max over partitions).",
        ["max by (group, topic) (driftline_consumer_lag_records)"],
        datasource=PROM,
        legends=["{{group}} {{topic}}"],
        custom=TS,
        checks={"min_series": 1, "non_negative": True},
    )
    b.panel(
        "timeseries",
        "DLQ rate by reason",
        "Records sent to driftline.dlq.v1 per second, by reason class.",
        [f"sum by (error_type) (rate(driftline_dlq_records_total{rate}))"],
        datasource=PROM,
        legends=["{{error_type}}"],
        unit="ops",
        custom=TS,
        checks={"min_series": 1, "non_negative": True, "positive_somewhere": True},
    )
    b.panel(
        "timeseries",
        "Notifications and webhook failures",
        "Notifications receivers accepted, and failed attempts, per second by receiver type.",
        [
            f"sum by (receiver) (rate(driftline_notifications_sent_total{rate}))",
            f"sum by (receiver) (rate(driftline_notifications_failed_total{rate}))",
        ],
        datasource=PROM,
        legends=["sent {{receiver}}", "failed {{receiver}}"],
        unit="ops",
        custom=TS,
        checks={"min_series": 1, "non_negative": True, "positive_somewhere": True},
    )
    b.panel(
        "timeseries",
        "Ingestion 4xx/5xx",
        "Ingestion's error answers per second by status code, and refused events by reason.",
        [
            f'sum by (status) (rate(driftline_http_requests_total{{status=~"4..|5.."}}{rate}))',
            f"sum by (reason) (rate(driftline_events_rejected_total{rate}))",
        ],
        datasource=PROM,
        legends=["HTTP {{status}}", "refused: {{reason}}"],
        unit="reqps",
        custom=TS,
        checks={"min_series": 1, "non_negative": True, "positive_somewhere": True},
    )
    b.panel(
        "timeseries",
        "HTTP latency p99",
        "99th percentile of request duration by service and route.",
        [
            "histogram_quantile(0.99, sum by (le, job, route) "
            f"(rate(driftline_http_request_duration_seconds_bucket{rate})))"
        ],
        datasource=PROM,
        legends=["{{route}}"],
        unit="s",
        custom=TS,
        checks={"min_series": 1, "non_negative": True},
    )
    b.panel(
        "timeseries",
        "Windows closed",
        "Drift and performance windows closed per second.",
        [f"sum by (kind) (rate(driftline_windows_closed_total{rate}))"],
        datasource=PROM,
        legends=["{{kind}}"],
        unit="ops",
        custom=TS,
        checks={"min_series": 1, "non_negative": True},
    )
    b.panel(
        "timeseries",
        "Audit chain",
        "Each tenant's chain head (newest sequence number) and its last verification "
        "(1 passed, 0 broken).",
        [
            "max by (tenant) (driftline_audit_chain_head_sequence)",
            "min by (tenant) (driftline_audit_verification_ok)",
        ],
        datasource=PROM,
        legends=["head {{tenant}}", "verified {{tenant}}"],
        custom=TS,
        checks={"min_series": 1, "positive": True},
    )
    b.panel(
        "timeseries",
        "InfluxDB spool",
        "Bytes of points InfluxDB refused, waiting for replay, and points refused per second.",
        [
            "max by (instance) (driftline_influx_spool_bytes)",
            f"sum by (instance) (rate(driftline_influx_points_failed_total{rate}))",
        ],
        datasource=PROM,
        legends=["spool {{instance}}", "refused/s {{instance}}"],
        unit="bytes",
        custom=TS,
        checks={"min_series": 1, "non_negative": True},
    )
    b.panel(
        "table",
        "Builds",
        "Which build of each service runs where.",
        ["driftline_build_info"],
        datasource=PROM,
        w=24,
        h=6,
        checks={"rows_equal": "services"},  # one build_info series per running service
    )
    return b


BOARDS = {
    "fleet-overview.json": fleet,
    "model-detail.json": model_detail,
    "feature-detail.json": feature_detail,
    "platform-health.json": platform,
}


def checks() -> dict[str, dict[int, dict[str, Any]]]:
    """What the end-to-end panel test expects of each panel, by file and panel id."""
    return {name: make().checks for name, make in BOARDS.items()}


def render() -> dict[str, str]:
    return {
        name: json.dumps(make().to_json(), indent=2, ensure_ascii=False) + "\n"
        for name, make in BOARDS.items()
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
