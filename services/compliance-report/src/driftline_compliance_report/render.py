"""Rendering a validated `Report`: JSON (sorted keys), HTML (jinja2, charts inline as SVG)
and PDF (WeasyPrint from the same HTML, so both say the same thing).

Charts are drawn with matplotlib: inline SVG in the HTML, where each plotted series is a
group with id `series-<model>-<name>` whose path has one vertex per window of the period
(which is how the tests check that a chart shows the period's data), and 200-dpi PNG in the
PDF, which WeasyPrint lays out in a fraction of the time an SVG of thousands of points takes.
"""

from __future__ import annotations

import base64
import io
import itertools
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape

from .model import ModelMonitoring, Report

__all__ = ["MEDIA_TYPES", "charts_for", "render"]

MEDIA_TYPES = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}
_chart_ids = itertools.count(1)
_MARKERS_UP_TO = 300
_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(v: Any) -> str:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "—"
    return str(v)


_env.filters["fmt"] = _fmt


def _chart(title: str, series: dict[str, list[list[Any]]], ylabel: str, gid: str, fmt: str) -> str:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 2.4), dpi=96)
    try:
        for name, points in series.items():
            if not points:
                continue
            xs = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t, _ in points]
            ys = [v for _, v in points]
            # markers only where they can be told apart; a month of 5-minute windows is a line
            marker = "o" if len(points) <= _MARKERS_UP_TO else ""
            style = {"marker": marker, "markersize": 2.5, "linewidth": 1.0, "label": name}
            (line,) = ax.plot(xs, ys, **style)  # type: ignore[arg-type]
            line.set_gid(f"series-{gid}-{name}")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        dates = mdates.DateFormatter("%m-%d %H:%M")  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(dates)
        if len(series) > 1:
            ax.legend(fontsize=7, loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        if fmt == "png":  # for the PDF: WeasyPrint lays out a raster far faster than an SVG
            raw = io.BytesIO()
            fig.savefig(raw, format="png", dpi=200)
        else:
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
    finally:
        plt.close(fig)
    if fmt == "png":
        data = base64.b64encode(raw.getvalue()).decode()
        return f'<img alt="{escape(title)}" src="data:image/png;base64,{data}">'
    svg = buf.getvalue()
    return _scoped(svg[svg.index("<svg") :])


_IDS = re.compile(r'(id="|href="#|url\(#)(?!series-)([^")]+)')


def _scoped(svg: str) -> str:
    """Prefix the chart's element ids (matplotlib numbers them per figure), so that several
    charts in one document do not define the same anchor; `series-*` ids are unique."""
    prefix = f"c{next(_chart_ids)}-"
    return _IDS.sub(lambda m: m.group(1) + prefix + m.group(2), svg)


def charts_for(m: ModelMonitoring, fmt: str = "svg") -> list[str]:
    """The charts of one model's period (inline SVG, or PNG `<img>` for the PDF): drift,
    quality, and performance when labelled."""
    out = []
    if m.series.get("drifted_share"):
        out.append(
            _chart(
                f"{m.model_id}: share of drifted features per window",
                {"drifted_share": m.series["drifted_share"]},
                "share",
                m.model_id,
                fmt,
            )
        )
        out.append(
            _chart(
                f"{m.model_id}: data-quality score per window",
                {"quality_score": m.series["quality_score"]},
                "score",
                m.model_id,
                fmt,
            )
        )
    perf = {k.removeprefix("performance."): v for k, v in m.series.items() if k.startswith("perf")}
    if any(perf.values()):
        out.append(_chart(f"{m.model_id}: performance per window", perf, "value", m.model_id, fmt))
    return out


def render(report: Report, formats: list[str]) -> dict[str, bytes]:
    """File name -> bytes for each requested format."""
    files: dict[str, bytes] = {}
    doc = report.model_dump(mode="json")
    if "json" in formats:
        files["report.json"] = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    template = _env.get_template("report.html.j2")
    if "html" in formats:
        charts = {m.model_id: charts_for(m, "svg") for m in report.monitoring}
        files["report.html"] = template.render(r=report, charts=charts).encode()
    if "pdf" in formats:
        from weasyprint import HTML

        charts = {m.model_id: charts_for(m, "png") for m in report.monitoring}
        files["report.pdf"] = HTML(string=template.render(r=report, charts=charts)).write_pdf()
    return files
