"""Against a real ingestion server: the sync client called from a coroutine whose event loop
is running (a Jupyter cell), `client.log(df, ...)` with labels, the background sender, and
the CLI's JSON output and status."""

from __future__ import annotations

import json

import httpx
import numpy as np
import orjson
import pandas as pd
from typer.testing import CliRunner

from driftline import Client
from driftline.cli import app
from driftline.demo.credit import MODEL, generate


def tenant_key(url: str, unique) -> str:  # type: ignore[no-untyped-def]
    r = httpx.post(
        f"{url}/v1/auth/tenants",
        json={"id": unique("nb").replace("_", "-"), "name": "nb"},
        headers={"X-Admin-Token": "driftline-dev-admin"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["api_key"])


async def test_sync_client_log_and_sender_inside_a_running_loop(thread_url, unique, topic_reader):
    predictions = await topic_reader("driftline.predictions.v1")
    actuals = await topic_reader("driftline.actuals.v1")
    key = tenant_key(thread_url, unique)
    events, _ = generate(300, 0.0, np.random.default_rng(7))
    rows = [{**e["features"], "score": e["prediction"]} for e in events]
    with Client(thread_url, key) as dl:  # no RuntimeError: the loop here is running
        dl.register_model(MODEL)
        df = pd.DataFrame(rows)
        df["defaulted"] = [i % 2 if i % 3 else None for i in range(len(df))]
        report = dl.log(
            df, model="credit-risk", version="1", prediction="score", labels="defaulted"
        )
        assert report.accepted == len(df), report.rejected[:3]
        assert report.rejected == []
        with dl.sender("credit-risk", "1", batch_size=64, flush_interval=0.2) as s:
            sent = s.log(df.drop(columns=["defaulted"]), prediction="score")
        assert s.accepted == len(df)
    ids = set(report.event_ids) | set(sent)
    stored = await predictions.read(
        until=lambda rs: ids <= {orjson.loads(r.value)["event_id"] for r in rs}
    )
    assert ids <= {orjson.loads(r.value)["event_id"] for r in stored}
    labelled = {report.event_ids[i] for i in range(len(df)) if i % 3}
    got = await actuals.read(
        until=lambda rs: labelled <= {orjson.loads(r.value)["prediction_event_id"] for r in rs}
    )
    by_id = {orjson.loads(r.value)["prediction_event_id"]: orjson.loads(r.value) for r in got}
    assert {by_id[e]["actual"] for e in labelled} == {0, 1}


async def test_cli_json_output_and_status_against_a_real_server(thread_url, unique, tmp_path):
    key = tenant_key(thread_url, unique)
    spec = tmp_path / "model.json"
    spec.write_text(json.dumps(MODEL))
    runner = CliRunner()
    env = {"DRIFTLINE_URL": thread_url, "DRIFTLINE_API_KEY": key}
    out = runner.invoke(app, ["-o", "json", "models", "register", str(spec)], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["id"] == "credit-risk"
    out = runner.invoke(app, ["-o", "json", "models", "list"], env=env)
    assert [m["id"] for m in json.loads(out.stdout)] == ["credit-risk"]
    out = runner.invoke(app, ["-o", "json", "models", "register", str(spec)], env=env)
    assert out.exit_code == 1
    assert "already exists" in out.output
    assert "HTTP 409" in out.output
    out = runner.invoke(
        app, ["--api-key", "dlk_nope_nope", "models", "list"], env={"DRIFTLINE_URL": thread_url}
    )
    assert out.exit_code == 1
    assert "credentials refused" in out.output
    assert "HTTP 401" in out.output
    out = runner.invoke(app, ["-o", "json", "status", "-s", f"ingestion={thread_url}"], env=env)
    [row] = json.loads(out.stdout)
    assert row["ready"] is True, row
    assert out.exit_code == 0
