"""Log lines as a log shipper reads them: one JSON object a line, every time in ISO 8601."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
import structlog
import yaml

from worker import logs, redact

from conftest import free_port, write

T = datetime(2026, 11, 28, 21, 4, 5, 123456, tzinfo=UTC)


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The captured stderr; the root logger's handlers are put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield capsys
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def configure() -> None:
    """raqib's logging as `raqib --log-json` sets it up, on the stderr of the running test."""
    logs.configure(json=True, level="debug")


def test_times_in_every_field_are_iso_8601(json_logs: pytest.CaptureFixture[str]) -> None:
    configure()
    tehran = timezone(timedelta(hours=3, minutes=30))
    structlog.get_logger("raqib.test").warning(
        "source failed", next_poll=T, local=T.astimezone(tehran), naive=datetime(2026, 1, 2, 3),
        day=date(2026, 11, 28), at=time(21, 4), backoff=timedelta(hours=1, minutes=30),
        nested={"retry_at": T, "history": [T, None]}, pair=(T, 1))
    [event] = lines(json_logs)
    assert event["next_poll"] == "2026-11-28T21:04:05.123456Z"
    assert event["local"] == "2026-11-28T21:04:05.123456Z"      # one zone in logs: UTC
    assert event["naive"] == "2026-01-02T03:00:00"
    assert (event["day"], event["at"], event["backoff"]) == ("2026-11-28", "21:04:00", "PT1H30M")
    assert event["nested"] == {"retry_at": "2026-11-28T21:04:05.123456Z",
                               "history": ["2026-11-28T21:04:05.123456Z", None]}
    assert event["pair"] == ["2026-11-28T21:04:05.123456Z", 1]
    assert "datetime.datetime" not in json.dumps(event)
    for key in ("next_poll", "local", "naive", "timestamp"):
        datetime.fromisoformat(str(event[key]))


def test_standard_library_loggers_too(json_logs: pytest.CaptureFixture[str]) -> None:
    configure()
    logging.getLogger("raqib.stdlib").warning("plain %s", T)
    [event] = lines(json_logs)
    assert event["event"] == f"plain {T}"          # the message as the library wrote it
    datetime.fromisoformat(str(event["timestamp"]))


def test_a_job_woken_while_it_runs_is_no_warning(json_logs: pytest.CaptureFixture[str]) -> None:
    configure()
    scheduler = logging.getLogger("apscheduler.scheduler")
    scheduler.warning('Execution of job "%s" skipped: maximum number of running instances '
                      "reached (%d)", "Daemon._dispatch", 1)
    scheduler.warning("Run time of job %s was missed by %s", "Daemon._dispatch", "0:00:02")
    assert [e["event"] for e in lines(json_logs)] == [
        "Run time of job Daemon._dispatch was missed by 0:00:02"]   # other warnings stay


def test_what_json_cannot_write_is_its_repr_without_secrets(
        json_logs: pytest.CaptureFixture[str]) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque(token=hunter2-very-secret)"

    configure()
    redact.add_secrets(["hunter2-very-secret"])
    structlog.get_logger("raqib.test").info("odd value", value=Opaque())
    [event] = lines(json_logs)
    assert event["value"] == "Opaque(token=***)"


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(0), "PT0S"), (timedelta(seconds=30), "PT30S"), (timedelta(days=2), "P2D"),
    (timedelta(days=1, hours=2), "P1DT2H"), (timedelta(seconds=1.5), "PT1.5S"),
    (timedelta(minutes=-5), "-PT5M"), (timedelta(hours=1, seconds=5), "PT1H5S"),
])
def test_durations(delta: timedelta, text: str) -> None:
    assert logs.iso_duration(delta) == text


def test_a_real_log_line_from_raqib_once(tmp_path: Path) -> None:
    """A source that refuses connections: `raqib once --log-json` logs when it polls it
    next, as ISO 8601 a shipper can parse."""
    write(tmp_path / "rules/r.yaml", "rules:\n  - id: r\n    title: R\n    match: x\n")
    write(tmp_path / "raqib.yaml", yaml.safe_dump({
        "database": f"sqlite:///{tmp_path}/raqib.db", "seeds": [], "rules": [str(tmp_path / "rules")],
        "sources": [{"name": "down", "url": f"http://127.0.0.1:{free_port()}/feed.xml",
                     "timeout": "2s"}],
        "channels": {"log": {"type": "file", "path": str(tmp_path / "alerts.jsonl")}},
        "defaults": {"notify": ["log"]}}))
    env = {k: v for k, v in os.environ.items() if k != "RAQIB_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "worker", "once", "--log-json", "--config",
                           str(tmp_path / "raqib.yaml")], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr        # a source failed
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    [failed] = [e for e in events if e["event"] == "source failed"]
    assert str(failed["next_poll"]).endswith("Z")
    assert datetime.fromisoformat(str(failed["next_poll"])) > datetime.now(UTC)
    assert "datetime.datetime(" not in proc.stderr
