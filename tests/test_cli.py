"""The command line as users run it: subprocesses on the shipped configuration."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import Response, Server, wait_for, write

RAQIB = [sys.executable, "-m", "worker"]


def raqib(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAQIB_CONFIG"}
    proc = subprocess.run([*RAQIB, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def alert_lines(project: Path) -> list[dict[str, object]]:
    path = project / "var/alerts.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] \
        if path.exists() else []


def test_once_on_the_shipped_config_alerts_on_the_seed(project: Path) -> None:
    first = raqib("once")
    alerts = alert_lines(project)
    rules = {a["rule"]["id"] for a in alerts}
    assert {"coalition-withdrawal", "named-bases", "isis-activity"} <= rules
    assert len(alerts) == len(rules)               # one alert per rule for the one story
    assert "alerts 0" not in first.stdout
    # Logs are JSON lines when stderr is not a terminal.
    events = [json.loads(line) for line in first.stderr.splitlines() if line.strip()]
    assert sum(e["event"] == "alert raised" for e in events) == len(alerts)
    second = raqib("once")
    assert "alerts 0" in second.stdout
    assert len(alert_lines(project)) == len(alerts)


def test_listings_as_json(project: Path) -> None:
    raqib("once")
    [article] = json.loads(raqib("articles", "--json").stdout)
    # Items have versions now (rules.md, Updates): the listing says which one each row is.
    assert set(article) == {"id", "source", "url", "title", "published", "language", "story",
                            "version"}
    assert (article["source"], article["language"], article["version"]) == ("seeds", "ar", 1)
    alerts = json.loads(raqib("alerts", "--json", "--since", "1d").stdout)
    assert alerts and all(a["schema"] == "raqib.alert/1" for a in alerts)
    assert alerts == alert_lines(project)[::-1]    # newest first, the same payloads
    [source] = json.loads(raqib("sources", "--json").stdout)
    assert set(source) == {"name", "url", "last_poll", "last_success", "last_error", "failures",
                           "next_poll", "moved_to"}
    assert source["failures"] == 0 and source["last_poll"].endswith("Z")
    assert json.loads(raqib("articles", "--json", "--source", "nope").stdout) == []
    assert "TITLE" in raqib("articles", "--limit", "1").stdout
    assert "coalition-withdrawal" in raqib("alerts").stdout


def test_invalid_config_is_refused_by_run_and_once(project: Path) -> None:
    rules = project / "config/rules/broken.yaml"
    write(rules, "rules:\n  - id: x\n    mach: y\n")
    for command in ("check", "once", "run"):
        proc = raqib(command, check=False)
        assert proc.returncode == 2, command
        assert "config/rules/broken.yaml:3: unknown key 'mach'" in proc.stderr
    assert not (project / "var/raqib.db").exists()


def test_db_upgrade(project: Path) -> None:
    assert "latest schema" in raqib("db", "upgrade").stdout
    assert (project / "var/raqib.db").exists()


def test_once_exits_1_when_a_source_fails(project: Path) -> None:
    cfg = project / "config/raqib.yaml"
    cfg.write_text(cfg.read_text().replace(
        "sources: []", f"sources:\n  - {{name: gone, url: 'file://{project}/gone.xml'}}"))
    proc = raqib("once", check=False)
    assert proc.returncode == 1
    assert "failed sources 1 (gone)" in proc.stdout
    assert len(alert_lines(project)) >= 2          # the seeds were still read and alerted


def last_poll() -> str | None:
    sources = json.loads(raqib("sources", "--json").stdout)
    return sources[0]["last_poll"] if sources else None


def test_run_alerts_then_stops_cleanly_and_restarts_quietly(project: Path) -> None:
    def start() -> subprocess.Popen[str]:
        return subprocess.Popen([*RAQIB, "run"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    proc = start()
    try:
        assert wait_for(lambda: len({a["rule"]["id"] for a in alert_lines(project)}) >= 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "raqib stopped" in err
    count = len(alert_lines(project))
    polled = last_poll()

    proc = start()   # a restart reads the seeds again and raises nothing new
    try:
        assert wait_for(lambda: last_poll() != polled)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(alert_lines(project)) == count


def test_backtest_replays_rule_files_and_sends_nothing(project: Path) -> None:
    raqib("once")
    sent = len(alert_lines(project))
    write(project / "replay.yaml", """\
rules:
  - id: asad-only
    title: Ain al-Asad alone
    match: "@ain-al-asad"      # an entity of the configured rule files
  - id: zebra
    match: zebra
""")
    results = json.loads(raqib("backtest", "replay.yaml", "--json", "--since", "7d").stdout)
    by_rule = {r["rule"]["id"]: r["alerts"] for r in results}
    assert set(by_rule) == {"asad-only", "zebra"}
    assert by_rule["zebra"] == []
    [hit] = by_rule["asad-only"]
    assert hit["article"]["source"] == "seeds"
    assert {m["text"] for m in hit["matches"]} == {"عين الأسد"}
    assert "asad-only (medium): 1 alert(s)" in raqib("backtest", "replay.yaml").stdout
    assert len(alert_lines(project)) == sent
    bad = raqib("backtest", "missing.yaml", check=False)
    assert bad.returncode == 2 and "missing.yaml: no such rule file" in bad.stderr


def test_secrets_never_reach_logs_or_listings(project: Path) -> None:
    """A token from the environment in a feed URL, and a password in its credentials, stay
    out of the log lines and of `raqib sources`."""
    cfg = project / "config/raqib.yaml"
    cfg.write_text(cfg.read_text().replace("sources: []", (
        "sources:\n"
        "  - {name: private, url: 'http://reader:pa55word@127.0.0.1:9/feed?token=${FEED_TOKEN}'}"
    )))
    env = {k: v for k, v in os.environ.items() if k != "RAQIB_CONFIG"}
    env["FEED_TOKEN"] = "s3cr3t-t0ken"
    once = subprocess.run([*RAQIB, "once"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert once.returncode == 1 and "source failed" in once.stderr
    listing = subprocess.run([*RAQIB, "sources", "--json"], capture_output=True, text=True,
                             env=env, timeout=120, check=True).stdout
    for text in (once.stderr, once.stdout, listing):
        assert "s3cr3t-t0ken" not in text
        assert "pa55word" not in text
    [private] = [s for s in json.loads(listing) if s["name"] == "private"]
    assert private["url"] == "http://reader:***@127.0.0.1:9/feed?token=***"


def test_unreachable_database_is_one_clear_line(project: Path) -> None:
    cfg = project / "config/raqib.yaml"
    cfg.write_text(cfg.read_text().replace(
        "sqlite:///var/raqib.db", "postgresql+psycopg://nobody@127.0.0.1:9/none"))
    proc = raqib("once", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("raqib: database: ")
    assert "Traceback" not in proc.stderr


def test_removed_sources_leave_the_listing(project: Path) -> None:
    cfg = project / "config/raqib.yaml"
    original = cfg.read_text()
    cfg.write_text(original.replace("sources: []", (
        f"sources:\n  - {{name: old, url: 'file://{project}/old.xml'}}")))
    raqib("once", check=False)
    assert {s["name"] for s in json.loads(raqib("sources", "--json").stdout)} == {"old", "seeds"}
    cfg.write_text(original)
    assert [s["name"] for s in json.loads(raqib("sources", "--json").stdout)] == ["seeds"]


def test_once_against_a_hostile_web(project: Path, http_server: Server) -> None:
    """Two passes of `raqib once` over good feeds and every kind of fault: exit 1 (some sources
    fail), the rest stored, failures listed with their errors and counts, Retry-After in
    next_poll, conditional requests on the second pass, a 301 followed, memory bounded."""
    good = ("<rss version='2.0'><channel><title>t</title><item><title>عين الأسد</title>"
            "<guid>g1</guid><description>قصف قاعدة عين الأسد</description></item>"
            "</channel></rss>")
    http_server.routes["/good"] = Response(200, good.encode("windows-1256"), {
        "Content-Type": "application/rss+xml; charset=windows-1256", "ETag": '"v1"'})
    http_server.routes["/old"] = Response(301, headers={"Location": "/good2"})
    http_server.routes["/good2"] = Response(200, good.replace("g1", "g2").replace(
        "قصف", "هجوم على").encode())
    http_server.routes["/busy"] = Response(429, headers={"Retry-After": "3600"})
    http_server.routes["/html"] = Response(200, b"<html><body>Not a feed</body></html>",
                                           {"Content-Type": "text/html"})
    http_server.routes["/empty"] = Response(200, b"")
    http_server.routes["/endless"] = Response(200, stream=lambda: iter(lambda: b"x" * 65536, b""))
    sources = {"good": "/good", "old": "/old", "busy": "/busy", "html": "/html",
               "empty": "/empty", "endless": "/endless"}
    lines = [f"  - {{name: {n}, url: '{http_server.url(p)}', max_bytes: 5MB}}"
             for n, p in sources.items()]
    lines.append("  - {name: refused, url: 'http://127.0.0.1:9/feed'}")
    cfg = project / "config/raqib.yaml"
    cfg.write_text(cfg.read_text().replace("sources: []", "sources:\n" + "\n".join(lines)))
    started = datetime.now(UTC)
    for _ in range(2):
        proc = raqib("once", check=False)
        assert proc.returncode == 1, proc.stderr
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak_kb < 400 * 1024
    health = {s["name"]: s for s in json.loads(raqib("sources", "--json").stdout)}
    failing = {n for n, s in health.items() if s["failures"]}
    assert failing == {"busy", "html", "empty", "endless", "refused"}
    assert all(health[n]["failures"] == 2 and health[n]["last_error"] for n in failing)
    busy_next = datetime.fromisoformat(health["busy"]["next_poll"])
    assert busy_next >= started + timedelta(minutes=59)
    assert health["old"]["moved_to"] == http_server.url("/good2")
    assert http_server.hits("/good")[1]["if-none-match"] == '"v1"'   # conditional, second pass
    titles = {a["title"] for a in json.loads(raqib("articles", "--json").stdout)}
    assert "عين الأسد" in titles                                     # windows-1256, decoded


def test_delivery_survives_receivers_down_then_up(project: Path, http_server: Server) -> None:
    """`raqib once` with the SMTP server and the webhook receiver down keeps every alert
    (exit 1); `raqib run` with both up — the receiver verifying signatures and failing the
    first request of each alert — delivers each exactly once to both, the redelivery under
    the same id, and stops on SIGTERM with exit 0."""
    from standardwebhooks import Webhook  # noqa: PLC0415

    from conftest import Mailbox, free_port  # noqa: PLC0415

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    smtp_port = free_port()
    cfg = project / "config/raqib.yaml"
    cfg.write_text(cfg.read_text().replace("defaults:\n  notify: [local-log]", f"""\
  mail:
    type: email
    host: 127.0.0.1
    port: {smtp_port}
    security: none
    from: raqib@desk.example
    to: [analyst@desk.example]
  hook:
    type: webhook
    url: {http_server.url('/hook')}
    secret: {secret}
defaults:
  notify: [local-log, mail, hook]"""))
    http_server.routes["/hook"] = Response(503)   # down for the first pass
    assert raqib("once", check=False).returncode == 1
    alerts = {a["id"] for a in json.loads(raqib("alerts", "--json").stdout)}
    assert len(alerts) >= 2

    seen: list[str] = []
    accepted: list[str] = []

    def hook(handler: object) -> Response:
        headers = {k.lower(): v for k, v in handler.headers.items()}  # type: ignore[attr-defined]
        Webhook(secret).verify(handler.body, headers)                 # type: ignore[attr-defined]
        msg_id = headers["webhook-id"]
        if msg_id not in seen:
            seen.append(msg_id)
            return Response(500)
        accepted.append(msg_id)
        return Response(204)

    http_server.routes["/hook"] = hook
    box = Mailbox(smtp_port).start()
    proc = subprocess.Popen([*RAQIB, "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert wait_for(lambda: set(accepted) == alerts and len(box.messages) == len(alerts),
                        timeout=110)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        box.stop()
    assert proc.returncode == 0, err
    assert sorted(accepted) == sorted(alerts)                  # exactly once each
    assert sorted(m["X-Raqib-Alert"] for m in box.messages) == sorted(alerts)


def test_test_channel_and_alerts_retry(project: Path, http_server: Server) -> None:
    cfg = project / "config/raqib.yaml"
    cfg.write_text(cfg.read_text().replace("defaults:", (
        f"  hook: {{type: webhook, url: '{http_server.url('/hook')}'}}\n"
        "  gone: {type: webhook, url: 'http://127.0.0.1:9/hook'}\n"
        "defaults:")))
    http_server.routes["/hook"] = Response(204)
    ok = raqib("test-channel", "hook")
    assert "sample alert delivered" in ok.stdout
    [(_, _, body)] = http_server.posts
    assert json.loads(body)["rule"]["id"] == "raqib-test"
    failed = raqib("test-channel", "gone", check=False)
    assert failed.returncode == 1 and "gone: failed" in failed.stderr
    assert raqib("test-channel", "nope", check=False).returncode == 2
    raqib("once")
    [alert, *_] = json.loads(raqib("alerts", "--json").stdout)
    assert "0 delivery" in raqib("alerts", "retry", alert["id"]).stdout   # all were sent
    assert raqib("alerts", "retry", "01NOSUCHALERT", check=False).returncode == 1
