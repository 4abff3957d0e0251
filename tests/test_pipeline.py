"""The whole path in one process: a real HTTP server on 127.0.0.1 and seed folders in, alerts
in a JSON Lines file out."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from worker import config, schema
from worker.db import Database
from worker.fetch import Fetcher
from worker.pipeline import Pipeline

from conftest import ASAD_RULES as RULES
from conftest import Clock, Response, Server, write

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Desk</title>
<item><title>Rockets hit Ain al-Asad air base</title><link>{base}/a/1?utm_source=rss</link>
<guid>a-1</guid><pubDate>Sat, 28 Nov 2026 20:55:00 GMT</pubDate>
<description>Two rockets struck the base in Anbar province on Saturday evening, officials said.</description></item>
<item><title>Markets close higher</title><link>{base}/a/2</link><guid>a-2</guid>
<description>Stocks rose in quiet trading as investors waited for the central bank.</description></item>
</channel></rss>"""



def make_config(tmp: Path, server: Server | None, seeds: bool = False,
                extra_sources: list[dict[str, str]] | None = None) -> config.Config:
    sources = [{"name": "desk", "url": server.url("/feed.xml"), "interval": "5m"}] \
        if server is not None else []
    write(tmp / "rules/r.yaml", RULES)
    write(tmp / "raqib.yaml", yaml.safe_dump({
        "database": f"sqlite:///{tmp}/raqib.db",
        "seeds": ["seeds"] if seeds else [],
        "rules": ["rules/"],
        "sources": sources + (extra_sources or []),
        "channels": {"log": {"type": "file", "path": f"{tmp}/alerts.jsonl"}},
        "defaults": {"notify": ["log"]},
    }))
    return config.load_config(str(tmp / "raqib.yaml"), env={})


def pipeline_for(cfg: config.Config, clock: Clock) -> Pipeline:
    db = Database(cfg.main.database)
    db.migrate()
    p = Pipeline(cfg, db, clock=clock)
    p.sync_sources()
    return p


def alerts_file(tmp: Path) -> list[dict[str, object]]:
    path = tmp / "alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_feed_to_alert_file_and_conditional_get(workdir: Path, http_server: Server,
                                                clock: Clock) -> None:
    body = FEED.format(base=http_server.base).encode()

    def feed(handler: object) -> Response:
        if http_server.hits("/feed.xml")[-1].get("if-none-match") == '"v1"':
            return Response(304)
        return Response(200, body, {"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    http_server.routes["/feed.xml"] = feed
    p = pipeline_for(make_config(workdir, http_server), clock)
    report = p.run_once()
    assert (report.ok, report.new, report.alerts, report.delivery.sent) == (True, 2, 1, 1)
    [alert] = alerts_file(workdir)
    assert alert["rule"] == {"id": "asad", "title": "Ain al-Asad", "severity": "high"}
    assert alert["article"]["published"] == "2026-11-28T20:55:00Z"
    assert alert["article"]["language"] == "en"
    assert alert["matches"][0]["text"] == "Ain al-Asad"
    assert "User-Agent" not in http_server.hits("/feed.xml")[0]
    assert http_server.hits("/feed.xml")[0]["user-agent"].startswith("raqib/")

    clock.advance(minutes=5)
    report = p.run_once()
    assert (report.ok, report.new, report.alerts) == (True, 0, 0)
    assert http_server.hits("/feed.xml")[1]["if-none-match"] == '"v1"'
    assert len(alerts_file(workdir)) == 1
    p.close()


def test_a_failing_source_does_not_stop_the_others(workdir: Path, http_server: Server,
                                                   clock: Clock) -> None:
    http_server.routes["/feed.xml"] = Response(200, FEED.format(base=http_server.base).encode())
    http_server.routes["/broken.xml"] = Response(500, b"oops")
    http_server.routes["/html"] = Response(200, b"<html><body>Not a feed</body></html>")
    extra = [{"name": "broken", "url": http_server.url("/broken.xml")},
             {"name": "html", "url": http_server.url("/html")},
             {"name": "refused", "url": "http://127.0.0.1:9/feed"},
             {"name": "missing-file", "url": f"file://{workdir}/nope.xml"}]
    p = pipeline_for(make_config(workdir, http_server, extra_sources=extra), clock)
    report = p.run_once()
    assert not report.ok
    assert sorted(report.failed_sources) == ["broken", "html", "missing-file", "refused"]
    assert report.alerts == 1
    health = {s.name: s for s in p.db.sources.all()}
    assert health["broken"].last_error == "fetch: HTTP 500 Internal Server Error"
    assert health["html"].last_error.startswith("parse: not a readable feed")
    assert health["refused"].last_error == "fetch: connection refused"
    assert "nope.xml" in health["missing-file"].last_error
    assert health["broken"].failures == 1 and health["desk"].failures == 0
    p.run_once()
    assert {s.name: s.failures for s in p.db.sources.all()}["broken"] == 2
    p.close()


def test_seed_folder_reads_new_and_changed_files_only(workdir: Path, clock: Clock) -> None:
    seed = write(workdir / "seeds/one.txt",
                 "Rockets near Ain al-Asad\nLede\n-\nCaption\nBody of the story.\n")
    write(workdir / "seeds/other.md", "Nothing to see here about markets.")
    write(workdir / "seeds/.hidden.txt", "Ain al-Asad hidden")
    write(workdir / "seeds/image.png", "Ain al-Asad binary")
    p = pipeline_for(make_config(workdir, None, seeds=True), clock)
    report = p.run_once()
    assert (report.new, report.alerts) == (2, 1)

    # The same size and time: not opened again, even though its bytes changed.
    st = seed.stat()
    seed.write_text(seed.read_text().replace("Rockets", "Rocketz"))
    os.utime(seed, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert p.run_once().new == 0

    # A real change is read again and stored as a new version of the same story: the rule
    # that alerted on the story does not alert again.
    seed.write_text("عين الأسد\nقصف\n-\nنص الخبر عن قاعدة عين الأسد الجوية\n", encoding="utf-8")
    # (Contract change: a changed item is an update, counted apart from new items.)
    result = p.poll_seeds(p.cfg.main.seeds[0]).result
    assert (result.new, result.updates, result.alerts) == (0, 1, [])
    assert p.run_once().alerts == 0
    assert p.db.listings.count(schema.Article) == 3
    versions = {a["title"]: (a["story"], a["version"]) for a in p.db.listings.articles()}
    assert versions["عين الأسد"] == (versions["Rockets near Ain al-Asad"][0], 2)
    assert p.db.listings.count(schema.Story) == 2
    # A new file is a new story, and alerts.
    write(workdir / "seeds/two.txt", "Ain al-Asad again\nLede\n-\nAnother report.\n")
    assert p.run_once().alerts == 1
    assert len(alerts_file(workdir)) == 2
    p.close()


def test_a_bad_seed_file_loses_nothing_good(workdir: Path, clock: Clock) -> None:
    write(workdir / "seeds/good.txt", "Ain al-Asad\nlede\n-\nbody\n")
    (workdir / "seeds/bad.txt").write_bytes("عين الأسد".encode("windows-1256"))
    p = pipeline_for(make_config(workdir, None, seeds=True), clock)
    report = p.run_once()
    assert report.failed_sources == ["seeds"] and report.new == 1 and report.alerts == 1
    [seeds] = [s for s in p.db.sources.all() if s.name == "seeds"]
    assert "bad.txt: not UTF-8" in seeds.last_error
    assert p.run_once().failed_sources == []   # reported once, not re-read until it changes
    p.close()


def test_restart_never_alerts_again(workdir: Path, http_server: Server, clock: Clock) -> None:
    http_server.routes["/feed.xml"] = Response(200, FEED.format(base=http_server.base).encode())
    cfg = make_config(workdir, http_server)
    first = pipeline_for(cfg, clock)
    first.run_once()
    first.close()
    second = pipeline_for(cfg, clock)    # a new process on the same database
    report = second.run_once()
    assert (report.new, report.alerts) == (0, 0)
    assert len(alerts_file(workdir)) == 1
    second.close()


def test_unwritable_channel_keeps_alert_for_retry(workdir: Path, http_server: Server,
                                                  clock: Clock) -> None:
    http_server.routes["/feed.xml"] = Response(200, FEED.format(base=http_server.base).encode())
    p = pipeline_for(make_config(workdir, http_server), clock)
    (workdir / "alerts.jsonl").mkdir()          # a folder where the file should be
    report = p.run_once()
    assert report.delivery.failed == 1 and not report.ok
    (workdir / "alerts.jsonl").rmdir()
    assert p.deliver().sent == 0                # not due yet: it waits for its retry time
    clock.advance(minutes=1)
    assert p.deliver().sent == 1
    assert len(alerts_file(workdir)) == 1
    p.close()


def test_an_unexpected_error_is_contained_to_its_source(workdir: Path, http_server: Server,
                                                        clock: Clock) -> None:
    """A transport that fails in a way nobody planned for: the source records it, the others
    (here the seed folder) are still read and their alerts delivered."""
    import httpx  # noqa: PLC0415

    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the network stack broke")

    write(workdir / "seeds/one.txt", "Ain al-Asad\nlede\n-\nbody\n")
    cfg = make_config(workdir, http_server, seeds=True)
    db = Database(cfg.main.database)
    db.migrate()
    p = Pipeline(cfg, db, clock=clock,
                 fetcher=Fetcher(httpx.Client(transport=httpx.MockTransport(explode))))
    p.sync_sources()
    report = p.run_once()
    assert report.failed_sources == ["desk"]
    assert (report.alerts, report.delivery.sent) == (1, 1)
    [desk] = [s for s in p.db.sources.all() if s.name == "desk"]
    assert desk.last_error == "internal error: RuntimeError: the network stack broke"
    assert desk.failures == 1
    p.close()


def test_feed_language_and_control_characters_on_every_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_server: Server, clock: Clock,
        db_url: str) -> None:
    """What a feed declares is a hint, not a value to store blindly: a language that is no
    code, and NUL characters (which PostgreSQL refuses), do not cost the feed its items."""
    monkeypatch.chdir(tmp_path)
    http_server.routes["/feed.xml"] = Response(200, (
        b"<rss version='2.0'><channel><title>t</title>"
        b"<language>English (United States)</language>"
        b"<item><title>2026</title><guid>1</guid></item>"
        b"<item><title>Rockets hit Ain al-Asad base</title><guid>2</guid>"
        b"<description>Two rockets &#0;struck the base on Saturday, officials said.</description>"
        b"</item></channel></rss>"))
    cfg = make_config(tmp_path, http_server)
    cfg = config.Config(cfg.path, cfg.main.model_copy(update={"database": db_url}),
                        cfg.ruleset, cfg.rule_files, cfg.warnings)
    p = pipeline_for(cfg, clock)
    report = p.run_once()
    assert (report.ok, report.new, report.alerts) == (True, 2, 1)
    langs = {a["title"]: a["language"] for a in p.db.listings.articles()}
    assert langs == {"2026": None, "Rockets hit Ain al-Asad base": "en"}
    p.close()


def test_an_empty_feed_without_content_type_is_no_failure(workdir: Path, http_server: Server,
                                                          clock: Clock) -> None:
    http_server.routes["/feed.xml"] = Response(
        200, b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>")
    p = pipeline_for(make_config(workdir, http_server), clock)
    report = p.run_once()
    assert report.ok and report.new == 0
    p.close()


def test_timeout_bounds_the_whole_request(workdir: Path, http_server: Server,
                                          clock: Clock) -> None:
    """A server that answers a byte at a time never lets a read time out; the source's
    timeout still ends the request."""
    http_server.routes["/feed.xml"] = Response(200, b"x" * 200, trickle=0.05)
    cfg = make_config(workdir, http_server)
    src = cfg.main.sources[0].model_copy(update={"timeout": timedelta(seconds=0.5)})
    cfg = config.Config(cfg.path, cfg.main.model_copy(update={"sources": [src]}),
                        cfg.ruleset, cfg.rule_files, cfg.warnings)
    p = pipeline_for(cfg, clock)
    report = p.run_once()
    assert report.failed_sources == ["desk"]
    [desk] = p.db.sources.all()
    assert desk.last_error == "fetch: timed out after 0.5s"
    p.close()


def test_empty_seed_files_are_not_articles(workdir: Path, clock: Clock) -> None:
    write(workdir / "seeds/empty.txt", "")
    write(workdir / "seeds/blank.md", "  \n\n ")
    p = pipeline_for(make_config(workdir, None, seeds=True), clock)
    report = p.run_once()
    assert (report.ok, report.new) == (True, 0)
    p.close()


def test_once_delivers_everything_due(workdir: Path, clock: Clock) -> None:
    for i in range(5):
        write(workdir / f"seeds/{i}.txt", f"Ain al-Asad report {i}\nlede\n-\nbody {i}\n")
    p = pipeline_for(make_config(workdir, None, seeds=True), clock)
    p.deliverer.batch = 2          # smaller batches than there are alerts
    report = p.run_once()
    assert (report.alerts, report.delivery.sent) == (5, 5)
    assert len(alerts_file(workdir)) == 5
    p.close()


def test_backoff_and_retry_after_set_next_poll(workdir: Path, http_server: Server,
                                               clock: Clock) -> None:
    http_server.routes["/feed.xml"] = Response(503, headers={"Retry-After": "7200"})
    p = pipeline_for(make_config(workdir, http_server), clock)
    p.rand = lambda: 0.0   # no jitter
    polled = p.poll_source(p.cfg.main.sources[0])
    assert polled.next_poll == clock() + timedelta(hours=2)      # the server's wish, not 5m
    http_server.routes["/feed.xml"] = Response(500)
    failures = []
    for _ in range(3):
        polled = p.poll_source(p.cfg.main.sources[0])
        [desk] = p.db.sources.all()
        failures.append((desk.failures, desk.next_poll - clock()))
    assert failures == [(2, timedelta(minutes=10)), (3, timedelta(minutes=20)),
                        (4, timedelta(minutes=40))]
    http_server.routes["/feed.xml"] = Response(200, FEED.format(base=http_server.base).encode())
    p.poll_source(p.cfg.main.sources[0])
    [desk] = p.db.sources.all()
    assert (desk.failures, desk.last_error, desk.next_poll - clock()) == (
        0, None, timedelta(minutes=5))
    p.close()


def test_permanent_redirect_is_noted_on_the_source(workdir: Path, http_server: Server,
                                                   clock: Clock) -> None:
    http_server.routes["/feed.xml"] = Response(301, headers={"Location": "/moved.xml"})
    http_server.routes["/moved.xml"] = Response(200, FEED.format(base=http_server.base).encode())
    p = pipeline_for(make_config(workdir, http_server), clock)
    report = p.run_once()
    assert (report.ok, report.new) == (True, 2)
    [desk] = p.db.sources.all()
    assert desk.moved_to == http_server.url("/moved.xml")
    p.close()


ARTICLE_PAGE = b"""<html><head><title>Rockets</title></head><body>
<nav>Home | World | Sport</nav>
<article><h1>Rockets hit Ain al-Asad air base</h1>
<p>Two rockets struck the Ain al-Asad air base in western Iraq late on Saturday, according to
two security officials who spoke on condition of anonymity because they were not authorised to
brief the media.</p>
<p>The base hosts Iraqi forces and, until recently, advisers of the international coalition
fighting the Islamic State group. No casualties were reported, the officials said.</p>
<p>The attack came days after the coalition completed its withdrawal from federal Iraq.</p>
</article><footer>Copyright</footer></body></html>"""


@pytest.mark.parametrize("allow_private", [True, False])
def test_full_text(workdir: Path, http_server: Server, clock: Clock, allow_private: bool) -> None:
    feed = ("<rss version='2.0'><channel><title>t</title><item><title>Short item</title>"
            f"<link>{http_server.url('/story')}</link><guid>s1</guid>"
            "<description>A teaser.</description></item></channel></rss>")
    http_server.routes["/feed.xml"] = Response(200, feed.encode())
    http_server.routes["/story"] = Response(200, ARTICLE_PAGE,
                                            {"Content-Type": "text/html; charset=utf-8"})
    cfg = make_config(workdir, http_server)
    src = cfg.main.sources[0].model_copy(update={"full_text": True,
                                                 "allow_private": allow_private})
    cfg = config.Config(cfg.path, cfg.main.model_copy(update={"sources": [src]}),
                        cfg.ruleset, cfg.rule_files, cfg.warnings)
    p = pipeline_for(cfg, clock)
    report = p.run_once()
    assert report.ok                     # a page that cannot be read never fails the source
    if allow_private:
        # The body is the page's main text, and the rule matches in it.
        assert report.alerts == 1
        assert len(http_server.hits("/story")) == 1
        [alert] = alerts_file(workdir)
        assert alert["matches"][0]["field"] == "body"
    else:
        # 127.0.0.1 is no public address: the page is never requested.
        assert report.alerts == 0
        assert http_server.hits("/story") == []
    p.run_once()                          # a known article's page is not fetched again
    assert len(http_server.hits("/story")) == (1 if allow_private else 0)
    p.close()
