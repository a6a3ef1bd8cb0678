"""The CLI's contract: one-line errors, exit 1 for runtime failures and 2 for usage errors,
--version, --output json, help on every command and argument, choices for enumerations."""

from __future__ import annotations

import json
import socket
import zipfile
from importlib.metadata import version

import click
import pytest
import typer
from typer.testing import CliRunner

from driftline.cli import _lag, app


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_an_unreachable_server_is_one_line_and_exit_1():
    url = f"http://127.0.0.1:{closed_port()}"
    out = invoke("--url", url, "--api-key", "dlk_x_y", "models", "list")
    assert out.exit_code == 1
    assert out.exception is None or isinstance(out.exception, SystemExit)
    lines = [x for x in out.output.splitlines() if x.strip()]
    assert lines == [f"error: cannot reach Driftline at {url}: [Errno 111] Connection refused"]


def test_the_url_and_key_come_from_the_environment_too():
    url = f"http://127.0.0.1:{closed_port()}"
    out = invoke("models", "list", env={"DRIFTLINE_URL": url, "DRIFTLINE_API_KEY": "k"})
    assert out.exit_code == 1
    assert f"cannot reach Driftline at {url}" in out.output


def test_a_missing_key_and_a_bad_choice_are_usage_errors():
    out = invoke("models", "list", env={"DRIFTLINE_API_KEY": ""})
    assert out.exit_code == 2
    assert "set DRIFTLINE_API_KEY" in out.output
    out = invoke("report", "create", "hipaa", "--from", "2026-01-01", "--to", "2026-02-01")
    assert out.exit_code == 2
    assert "'gdpr', 'sox', 'fda', 'model_card'" in out.output
    out = invoke("--api-key", "k", "users", "create", "bob", "--role", "root")
    assert out.exit_code == 2
    out = invoke("--output", "yaml", "models", "list")
    assert out.exit_code == 2


def test_version():
    out = invoke("--version")
    assert out.exit_code == 0
    assert out.output.strip() == f"driftline {version('driftline')}"


def test_every_command_and_argument_has_help():
    missing = []

    def walk(cmd: click.Command, path: str) -> None:
        if not (cmd.help or "").strip():
            missing.append(path)
        for p in cmd.params:
            if isinstance(p, click.Option | click.Argument) and not (getattr(p, "help", "") or ""):
                missing.append(f"{path} {p.name}")
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "driftline")
    assert missing == []


def test_the_environment_variables_are_shown_in_help():
    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    for var in ("DRIFTLINE_URL", "DRIFTLINE_API_KEY", "DRIFTLINE_ADMIN_TOKEN"):
        assert f"env var: {var}" in out.output


def test_report_verify_on_a_file_that_is_not_a_report(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    out = invoke("report", "verify", str(junk))
    assert out.exit_code == 1
    assert "is not a Driftline report bundle" in out.output
    assert "None" not in out.output
    other = tmp_path / "other.zip"  # a zip, but not a report
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("a.txt", "x")
    out = invoke("--output", "json", "report", "verify", str(other))
    assert out.exit_code == 1
    body = json.loads(out.stdout)
    assert body["ok"] is False
    assert body["report"] is False
    assert body["problems"] == ["the bundle has no manifest.json"]


def test_status_of_an_unreachable_service_is_not_ready_exit_1():
    url = f"http://127.0.0.1:{closed_port()}"
    out = invoke("-o", "json", "status", "--service", f"alerting={url}")
    assert out.exit_code == 1
    [row] = json.loads(out.stdout)
    assert row["service"] == "alerting"
    assert row["ready"] is False
    assert row["detail"].startswith("unreachable:")
    out = invoke("status", "--service", "alerting")
    assert out.exit_code == 2


def test_lag_is_summed_per_group_from_the_metrics_text():
    text = (
        "# HELP driftline_consumer_lag_records lag\n"
        'driftline_consumer_lag_records{group="g1",partition="0",topic="t"} 5.0\n'
        'driftline_consumer_lag_records{group="g1",partition="1",topic="t"} 7.0\n'
        'driftline_consumer_lag_records{group="g2",partition="0",topic="t"} 0.0\n'
        'driftline_consumer_lag_records_other{group="g3"} 9.0\n'
    )
    assert _lag(text) == {"g1": 12.0, "g2": 0.0}


@pytest.mark.parametrize(("duration", "code"), [("2h", 1), ("soon", 2)])
def test_a_silence_duration_is_checked_before_any_call(duration, code):
    url = f"http://127.0.0.1:{closed_port()}"
    out = invoke(
        "--api-key",
        "k",
        "silences",
        "add",
        "-m",
        "model_id=m",
        "--comment",
        "maintenance",
        "--duration",
        duration,
        env={"DRIFTLINE_ALERTING_URL": url},
    )
    assert out.exit_code == code
    if code == 1:
        assert f"cannot reach Driftline at {url}" in out.output
