"""Streaming the demo: register the model, upload its reference, stream predictions at a
rate with scheduled drift, and send labels late."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections import deque
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..client import AsyncClient, DriftlineAPIError
from .credit import DRIFTS, MODEL, generate, labels_for, reference_rows

__all__ = ["prepare", "run"]


async def prepare(c: AsyncClient, console: Console) -> None:
    try:
        await c.register_model(MODEL)
        console.print(f"registered model [bold]{MODEL['id']}[/bold]")
    except DriftlineAPIError as e:
        if e.status != 409:
            raise
        await c.request("PUT", f"/v1/models/{MODEL['id']}/monitoring", json=MODEL["monitoring"])
        await c.request("PUT", f"/v1/models/{MODEL['id']}/classes", json=MODEL["classes"])
        console.print(f"model {MODEL['id']} is registered already (monitoring, classes updated)")

    rows = reference_rows(20_000)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(
        {
            k: ("" if v is None else str(v).lower() if isinstance(v, bool) else v)
            for k, v in r.items()
        }
        for r in rows
    )
    out = await c.request(
        "POST",
        f"/v1/models/{MODEL['id']}/reference",
        content=buf.getvalue().encode(),
        headers={"Content-Type": "text/csv"},
    )
    console.print(f"reference v{out['version']}: {out['rows']:,} rows profiled")


async def stream(
    c: AsyncClient, *, seconds: float, rate: float, label_delay: float, console: Console
) -> dict[str, Any]:
    rng = np.random.default_rng(11)
    pending: deque[tuple[float, list[dict[str, Any]]]] = deque()
    sent = labelled = rejected = 0
    tick = 0.5
    start = time.monotonic()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task("streaming", total=seconds)
        while (elapsed := time.monotonic() - start) < seconds:
            share = elapsed / seconds
            active = [d.name for d in DRIFTS if d.start <= share]
            events, p_true = generate(max(1, int(rate * tick)), share, rng)
            report = await c.log_predictions(MODEL["id"], "1", events)
            sent += report.accepted
            rejected += len(report.rejected)
            pending.append((time.monotonic() + label_delay, labels_for(events, p_true, rng)))
            while pending and pending[0][0] <= time.monotonic():
                labelled += (await c.log_actuals(MODEL["id"], pending.popleft()[1])).accepted
            progress.update(
                task,
                completed=elapsed,
                description=(
                    f"{sent:,} predictions, {labelled:,} labels; drift: "
                    f"{active[-1] if active else 'none yet'}"
                ),
            )
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - start - elapsed)))
    while pending:
        labelled += (await c.log_actuals(MODEL["id"], pending.popleft()[1])).accepted
    return {"predictions": sent, "labels": labelled, "rejected": rejected}


def run(
    url: str, api_key: str, *, seconds: float, rate: float, label_delay: float, console: Console
) -> int:
    async def main() -> int:
        async with AsyncClient(url, api_key) as c:
            await prepare(c, console)
            totals = await stream(
                c, seconds=seconds, rate=rate, label_delay=label_delay, console=console
            )
        console.print(
            f"sent {totals['predictions']:,} predictions and {totals['labels']:,} "
            f"late labels ({totals['rejected']} rejected)"
        )
        return 0 if totals["rejected"] == 0 else 1

    return asyncio.run(main())
