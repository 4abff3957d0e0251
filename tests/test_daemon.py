"""The daemon as an operator meets it: a subprocess on a test configuration, its /healthz and
/metrics, seed folders and rule files changed under it, JSON logs, SIGTERM."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from worker import config, schema
from worker.daemon import Daemon
from worker.db import Database
from worker.pipeline import Pipeline

from conftest import Clock, free_port, wait_for, write

# What the daemon must do, it must do within 20 seconds.
soon = functools.partial(wait_for, timeout=20.0)

RAQIB = [sys.executable, "-m", "worker"]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def alert_rules(project: Path) -> list[str]:
    path = project / "var/alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(x)["rule"]["id"] for x in path.read_text(encoding="utf-8").splitlines()]


def test_the_daemon_in_production(project: Path) -> None:
    port = free_port()
    cfg = project / "config/raqib.yaml"
    # A feed that never brings news, and a quiet rule with a short window for it.
    write(project / "feeds/empty.xml", "<rss version='2.0'><channel><title>t</title>"
                                       "</channel></rss>")
    write(project / "config/rules/quiet-fast.yaml",
          "rules:\n  - id: quiet-fast\n    quiet: {sources: [empty], within: 2s}\n")
    text = cfg.read_text().replace("sources: []", "sources:\n  - {name: empty, url: "
                                   f"'file://{project}/feeds/empty.xml', interval: 1h}}")
    cfg.write_text(text + f"http:\n  listen: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([*RAQIB, "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={k: v for k, v in os.environ.items()
                                            if k != "RAQIB_CONFIG"})
    lines: list[str] = []
    drain = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    base = f"http://127.0.0.1:{port}"
    try:
        assert soon(lambda: get(base + "/healthz")[0] == 200)
        assert json.loads(get(base + "/healthz")[1])["status"] == "ok"
        assert soon(lambda: len(alert_rules(project)) >= 2)
        before = len(alert_rules(project))

        # A new seed file alerts within 20 s.
        write(project / "seeds/new.txt", "Rockets hit Ain al-Asad air base\nlede\n-\n"
              "Two rockets struck the Ain al-Asad air base on Saturday.\n")
        assert soon(lambda: len(alert_rules(project)) > before)

        # A rule in a new rule file applies without a restart.
        write(project / "config/rules/zanzibar.yaml",
              "rules:\n  - id: zanzibar\n    match: zanzibar\n")
        assert soon(lambda: any("configuration reloaded" in x for x in lines))
        write(project / "seeds/z1.txt", "Zanzibar talks\nlede\n-\nA delegation went to Zanzibar.\n")
        assert soon(lambda: "zanzibar" in alert_rules(project))

        # A broken rule file is refused, named in the log, and the rules keep running.
        write(project / "config/rules/broken.yaml", "rules:\n  - id: broken\n    mach: x\n")
        assert soon(lambda: any("configuration refused" in x and
                                    "config/rules/broken.yaml:3" in x for x in lines))
        write(project / "seeds/z2.txt", "More Zanzibar\nlede\n-\nZanzibar again, elsewhere.\n")
        assert soon(lambda: alert_rules(project).count("zanzibar") == 2)

        # The quiet source is found by the task that checks quiet rules (every 5 s here).
        assert soon(lambda: "quiet-fast" in alert_rules(project))

        status, metrics = get(base + "/metrics")
        assert status == 200
        series = {line.split("{")[0].split(" ")[0] for line in metrics.splitlines()
                  if line.startswith("raqib_")}
        assert len(series) >= 8, series
        assert 'raqib_alerts_raised_total{rule="zanzibar",severity="medium"} 2.0' in metrics
        assert get(base + "/")[0] == 200
        started = time.monotonic()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        drain.join(timeout=5)
        proc.stdout.close()   # type: ignore[union-attr]
        proc.stderr.close()   # type: ignore[union-attr]
    assert proc.returncode == 0, "".join(lines[-20:])
    assert time.monotonic() - started < 25
    events = [json.loads(line) for line in lines if line.strip()]   # every line is JSON
    assert {e["level"] for e in events} >= {"info", "error"}
    assert all("timestamp" in e and "event" in e for e in events)


@pytest.fixture
def daemon(tmp_path: Path, clock: Clock) -> Daemon:
    write(tmp_path / "rules/r.yaml", "rules:\n  - id: asad\n    match: Ain al-Asad\n")
    write(tmp_path / "raqib.yaml", (
        f"database: sqlite:///{tmp_path}/raqib.db\nrules: [{tmp_path}/rules]\n"
        f"seeds: [{tmp_path}/seeds]\nsources:\n"
        f"  - {{name: a, url: 'file://{tmp_path}/a.xml'}}\n"
        f"channels:\n  log: {{type: file, path: {tmp_path}/alerts.jsonl}}\n"
        "defaults: {notify: [log]}\n"))
    (tmp_path / "seeds").mkdir()
    cfg = config.load_config(str(tmp_path / "raqib.yaml"), env={})
    db = Database(cfg.main.database)
    db.migrate()
    p = Pipeline(cfg, db, clock=clock)
    p.sync_sources()
    d = Daemon(p, web=False, watch=False)
    d._schedule()
    yield d
    p.close()


def test_reload_swaps_sources_and_rules(daemon: Daemon, tmp_path: Path, clock: Clock) -> None:
    seeds = config.seed_source_name(str(tmp_path / "seeds"))
    assert set(daemon.pipeline.poll_intervals()) == {"a", seeds}
    write(tmp_path / "seeds/one.txt", "Ain al-Asad\nlede\n-\nA new rule will see this.\n")
    daemon.pipeline.poll_seeds(str(tmp_path / "seeds"))
    text = (tmp_path / "raqib.yaml").read_text().replace("name: a,", "name: b,")
    (tmp_path / "raqib.yaml").write_text(text)
    write(tmp_path / "rules/new.yaml", "rules:\n  - id: see\n    match: new rule\n")
    assert daemon.reload("test")
    assert set(daemon.pipeline.poll_intervals()) == {"b", seeds}   # what dispatch claims
    assert {cr.rule.id for cr in daemon.pipeline.cfg.ruleset.rules} == {"asad", "see"}
    # The added rule caught up with the article stored moments before it.
    rules = {a["rule"]["id"] for a in daemon.pipeline.db.listings.alert_payloads()}
    assert rules == {"asad", "see"}
    # An invalid change is refused and the running configuration stays.
    write(tmp_path / "rules/bad.yaml", "rules: [{id: x, match: '@nobody'}]\n")
    assert not daemon.reload("test")
    assert {cr.rule.id for cr in daemon.pipeline.cfg.ruleset.rules} == {"asad", "see"}


def test_health_says_why(daemon: Daemon) -> None:
    assert daemon.health() == (False, "scheduler not running")
    daemon.scheduler.start()
    working = daemon.pipeline.db
    gone = Database("postgresql+psycopg://nobody@127.0.0.1:9/none")
    try:
        assert daemon.health() == (True, "running")
        daemon.pipeline.db = gone             # a database that does not answer
        ok, reason = daemon.health()
        # Database errors now leave storage as StorageError, naming what was being done.
        assert not ok and reason.startswith("storage: ping: OperationalError: ")
    finally:
        daemon.pipeline.db = working
        gone.close()
        daemon.scheduler.shutdown()


def test_retention_prunes_old_articles_but_keeps_alerted_ones(tmp_path: Path,
                                                              clock: Clock) -> None:
    from worker.dedupe import prepare  # noqa: PLC0415
    from worker.domain import AlertSpec, Article  # noqa: PLC0415
    from worker.ingestor import Ingestor, RuleHit  # noqa: PLC0415

    db = Database(f"sqlite:///{tmp_path}/r.db", clock=clock)
    db.migrate()
    sid = db.sources.sync([("s", "file:///x", "feed")], clock())["s"]
    spec = AlertSpec("r", "R", "low", ())
    ingestor = Ingestor(db)

    def decide(articles: list[Article]) -> list[list[RuleHit]]:
        return [[(spec, ())] if "alert" in a.title else [] for a in articles]

    old = [prepare(Article(source="s", title=f"old {i} {'alert' if i == 0 else ''}",
                           body=f"old body {i} " * 30, url=f"https://x/{i}")) for i in range(3)]
    ingestor.ingest(sid, old, decide)
    clock.advance(days=100)
    ingestor.ingest(sid, [prepare(Article(source="s", title="new", body="new body " * 30,
                                          url="https://x/new"))], decide)
    assert db.prune(clock() - timedelta(days=90)) == 2
    titles = {a["title"] for a in db.listings.articles()}
    assert titles == {"old 0 alert", "new"}
    assert db.listings.count(schema.Story) == 2
    assert len(db.listings.alert_payloads()) == 1
    db.vacuum()
    db.close()


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """The shipped unit, pointed at this checkout, passes `systemd-analyze verify`."""
    import shutil  # noqa: PLC0415

    from conftest import ROOT  # noqa: PLC0415

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    raqib = Path(sys.executable).parent / "raqib"
    unit = (ROOT / "deploy/raqib.service").read_text()
    unit = unit.replace("/opt/raqib/.venv/bin/raqib", str(raqib)).replace("/opt/raqib", str(ROOT))
    (tmp_path / "raqib.service").write_text(unit)
    proc = subprocess.run([analyze, "verify", str(tmp_path / "raqib.service")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_compose_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import ROOT  # noqa: PLC0415

    monkeypatch.chdir(ROOT)
    cfg = config.load_config("deploy/raqib.compose.yaml",
                             env={"RAQIB_DATABASE": "postgresql+psycopg://raqib@postgres/raqib",
                                  "RAQIB_HTTP_TOKEN": "a-token-of-the-deployment"})
    assert cfg.main.http.token == "a-token-of-the-deployment"
    assert set(cfg.main.channels) == {"mailpit", "local-log"}
    import yaml  # noqa: PLC0415

    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    workers = {n: s for n, s in compose["services"].items() if n.startswith("raqib")}
    assert len(workers) == 3                           # a fleet on one database
    assert {s["environment"]["RAQIB_DATABASE"] for s in workers.values()} == {
        "postgresql+psycopg://raqib:raqib@postgres:5432/raqib"}
    assert {s["command"][-1] for s in workers.values()} == {"deploy/raqib.compose.yaml"}
    assert len({s["ports"][0] for s in workers.values()}) == 3   # each its own /healthz
