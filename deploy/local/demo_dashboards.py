"""The demo's Grafana dashboards without Grafana: says where the provisioned dashboards are,
and renders the model-detail panels of the demo run to PNG (matplotlib) from the very
queries Grafana would run (deploy/grafana/queries.py), into .stack/demo-dashboards/.

`show(console, tenant, since)` is what `make demo` calls at its end;
`python deploy/local/demo_dashboards.py TENANT [MINUTES]` renders the last MINUTES (60) of a
tenant's demo model by hand."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
OUT = ROOT / ".stack" / "demo-dashboards"
sys.path.insert(0, str(GRAFANA))

from queries import PanelResult, Series, TimeRange, panel_results  # noqa: E402

__all__ = ["render", "show"]

MODEL_ID = "credit-risk"


def _label(s: Series, column: str, alias: str | None, multi_col: bool) -> str:
    tags = " ".join(v for v in s.tags.values() if v)
    name = column if multi_col or not tags else ""
    return " ".join(x for x in (alias if alias and not multi_col else name, tags) if x) or column


def _draw(ax: Any, results: Sequence[PanelResult], panel: dict[str, Any]) -> bool:
    """One panel on one axis; False if it had no data."""
    import matplotlib.dates as mdates
    import numpy as np

    series = [(r, s) for r in results for s in r.series]
    if not any(s.values for _, s in series):
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return False
    kind = panel["type"]
    if kind == "heatmap":
        rows = sorted(series, key=lambda rs: rs[1].tags.get("feature", ""))
        times = sorted({row[0] for _, s in rows for row in s.values if row[1] is not None})
        index = {t: i for i, t in enumerate(times)}
        grid = np.full((len(rows), len(times)), np.nan)
        for i, (_, s) in enumerate(rows):
            for t, v in s.values:
                if v is not None:
                    grid[i, index[t]] = v
        ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks(range(len(rows)), [s.tags.get("feature", "") for _, s in rows], fontsize=6)
        step = max(1, len(times) // 6)
        ax.set_xticks(
            range(0, len(times), step),
            [datetime.fromtimestamp(t / 1000, UTC).strftime("%H:%M") for t in times[::step]],
            fontsize=6,
        )
        return True
    bars = panel["fieldConfig"]["defaults"].get("custom", {}).get("drawStyle") == "bars"
    stamps = [row[0] for _, s in series for row in s.values]
    span_s = (max(stamps) - min(stamps)) / 1000 if stamps else 0.0
    for r, s in series:
        cols = s.columns[1:]
        times = [datetime.fromtimestamp(row[0] / 1000, UTC) for row in s.values]
        for j, col in enumerate(cols, start=1):
            ys = [row[j] if isinstance(row[j], int | float) else math.nan for row in s.values]
            if all(math.isnan(y) for y in ys):
                continue
            label = _label(s, col, r.target.get("alias"), len(cols) > 1)
            if kind == "state-timeline":
                ax.step(times, ys, where="post", label=label, linewidth=1)
            elif bars:
                nz = [(t, y) for t, y in zip(times, ys, strict=True) if y]
                if nz:
                    width = (times[1] - times[0]) if len(times) > 1 else timedelta(seconds=1)
                    ax.bar([t for t, _ in nz], [y for _, y in nz], width=width, label=label)
            else:
                ax.plot(times, ys, marker="." if len(times) < 40 else None, label=label, lw=1)
    # a live panel spans seconds to minutes: %H:%M alone would read the same on every tick
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if span_s < 1800 else "%H:%M"))
    if kind == "state-timeline":  # a state, not a quantity: 0/1 on a fixed axis
        ax.set_ylim(-0.15, 1.15)
        ax.set_yticks([0, 1], ["resolved", "firing"])
    ax.tick_params(labelsize=6)
    handles, _ = ax.get_legend_handles_labels()
    if 1 < len(handles) <= 8:
        ax.legend(fontsize=5, loc="upper left")
    return True


def render(
    tenant: str,
    since: datetime,
    *,
    until: datetime | None = None,
    model: str = MODEL_ID,
    version: str = "$__all",
    influx_url: str = "http://127.0.0.1:18086",
    database: str = "driftline",
    out: Path = OUT,
) -> list[Path]:
    """PNG per model-detail panel, and all of them on one sheet (model-detail.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    board = json.loads((GRAFANA / "dashboards" / "model-detail.json").read_text())
    end = until or datetime.now(UTC)
    tr = TimeRange(int(since.timestamp() * 1000), int(end.timestamp() * 1000))
    values = {"tenant": tenant, "model": model, "version": version, "segment": "$__all"}
    results = panel_results(board, values, tr, influx_url=influx_url, influx_database=database)
    panels = [p for p in board["panels"] if p.get("targets")]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for p in panels:
        fig, ax = plt.subplots(figsize=(6, 2.6), dpi=100)
        _draw(ax, [r for r in results if r.panel is p], p)
        ax.set_title(p["title"], fontsize=9)
        fig.tight_layout()
        path = out / f"{p['id']:02d}-{p['title'].lower().replace(' ', '-')}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.3 * rows), dpi=80)
    for ax, p in zip(axes.flat, panels, strict=False):
        _draw(ax, [r for r in results if r.panel is p], p)
        ax.set_title(p["title"], fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"Driftline / Model detail: {tenant} / {model}", fontsize=10)
    fig.tight_layout()
    sheet = out / "model-detail.png"
    fig.savefig(sheet)
    plt.close(fig)
    return [sheet, *written]


def show(console: Any, tenant: str, since: datetime) -> bool:
    """For `make demo`: where the dashboards are, and the PNGs of the demo's model detail."""
    console.print(
        "Grafana dashboards (provisioning for your Grafana): "
        f"{GRAFANA / 'provisioning'} and {GRAFANA / 'dashboards'} (docs/dashboards.md)"
    )
    try:
        paths = render(tenant, since - timedelta(minutes=2))
    except Exception as e:  # the demo goes on; say why there is no picture
        console.print(f"[red]dashboard renderings failed: {e}")
        return False
    console.print(
        f"model-detail panels of this run rendered to {paths[0].parent}/ ({len(paths)} PNG)"
    )
    return True


if __name__ == "__main__":
    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    for p in render(sys.argv[1], datetime.now(UTC) - timedelta(minutes=minutes)):
        print(p)
