"""Feeds as the real web writes them, through the whole path (real HTTP server on 127.0.0.1,
SQLite and PostgreSQL): relative links after a redirect, one bad byte, a bogus
Content-Encoding, JSON Feed, a picture where a feed should be, dates in the future. Each fault
costs what it must and no more: a warning is logged and the source stays healthy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from worker import config
from worker.db import Database
from worker.pipeline import Pipeline

from conftest import ASAD_RULES, Clock, Response, Server, write

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>وكالة</title>
<item><title>وصول تعزيزات إلى قاعدة عين الأسد</title><link>/ar/news/2026/11/28/1</link>
<guid isPermaLink="false">n-1</guid><pubDate>Sat, 28 Nov 2026 20:30:00 +0300</pubDate>
<description>وصلت تعزيزات عسكرية إلى قاعدة عين الأسد الجوية غربي الأنبار.</description></item>
<item><title>Ain al-Asad air base on alert</title><link>news/2026/11/28/2</link>
<guid>2</guid><pubDate>الأحد، 28 نوفمبر 2026 - 10:30</pubDate>
<description>Sirens sounded at the base.</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Desk</title><id>tag:desk,2026:feed</id>
<updated>2026-11-28T20:00:00Z</updated>
<entry><title type="html">Q&amp;A: rockets near Ain al-Asad</title><id>tag:desk,2026:7</id>
<updated>2026-11-28T20:00:00Z</updated><link rel="alternate" href="2026/11/qna.html"/>
<summary>Questions and answers.</summary></entry></feed>"""

JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1", "title": "JSON desk", "language": "en",
    "items": [{"id": 17, "url": "/j/17", "title": "Drone downed near Ain al-Asad",
               "content_html": "<p>A drone was shot down.</p>",
               "date_published": "2026-11-28T19:00:00Z"}],
}

BROKEN = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>agency</title>
<item><title>تعزيزات عسكرية تصل إلى قاعدة عين الأسد</title><guid>b-1</guid>
<description>وصلت التعزيزات صباح اليوم.</description></item>
<item><title>افتتاح معرض للكتاب في أربيل</title><guid>b-2</guid>
<description>يستمر المعرض عشرة أيام في قاعة كبيرة</description></item>
</channel></rss>""".encode().replace("كبيرة".encode(), "كبيرة".encode()[:-1])

FUTURE = """<rss version="2.0"><channel><title>typos</title>
<item><title>Ain al-Asad: a date from 2099</title><guid>f-1</guid>
<pubDate>Sat, 28 Nov 2099 20:00:00 GMT</pubDate><description>One.</description></item>
<item><title>Ain al-Asad: a date a few hours ahead</title><guid>f-2</guid>
<pubDate>Sun, 29 Nov 2026 03:00:00 GMT</pubDate><description>Two.</description></item>
<item><title>Ain al-Asad: an hour ago</title><guid>f-3</guid>
<pubDate>Sat, 28 Nov 2026 20:00:00 GMT</pubDate><description>Three.</description></item>
<item><title>Ain al-Asad: no date</title><guid>f-4</guid><description>Four.</description></item>
</channel></rss>"""


def pipeline(tmp: Path, db_url: str, server: Server, clock: Clock,
             sources: dict[str, str]) -> Pipeline:
    write(tmp / "rules.yaml", ASAD_RULES)
    write(tmp / "raqib.yaml", yaml.safe_dump({
        "database": db_url, "rules": [str(tmp / "rules.yaml")],
        "fetch": {"per_host": 8},
        "sources": [{"name": n, "url": server.url(p)} for n, p in sources.items()],
        "channels": {"log": {"type": "file", "path": str(tmp / "alerts.jsonl")}},
        "defaults": {"notify": ["log"]},
    }))
    cfg = config.load_config(str(tmp / "raqib.yaml"), env={})
    db = Database(cfg.main.database)
    db.migrate()
    p = Pipeline(cfg, db, clock=clock)
    p.sync_sources()
    return p


def alerts(tmp: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp / "alerts.jsonl").read_text().splitlines()]


def test_feed_faults_cost_no_more_than_they_must(tmp_path: Path, db_url: str,
                                                 http_server: Server, clock: Clock) -> None:
    routes = http_server.routes
    routes["/feed"] = Response(301, headers={"Location": "/feeds/ar/main.xml"})
    routes["/feeds/ar/main.xml"] = Response(200, RSS.encode(), {
        "Content-Type": "application/rss+xml; charset=utf-8"})
    routes["/blog/atom.xml"] = Response(200, ATOM.encode(), {
        "Content-Type": "application/atom+xml", "Content-Encoding": "aws-chunked"})
    routes["/feed.json"] = Response(200, json.dumps(JSON_FEED).encode(), {
        "Content-Type": "application/feed+json", "Content-Encoding": "UTF-8"})
    routes["/broken.xml"] = Response(200, BROKEN, {
        "Content-Type": "application/rss+xml; charset=utf-8"})
    routes["/logo.png"] = Response(200, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {
        "Content-Type": "application/rss+xml"})
    p = pipeline(tmp_path, db_url, http_server, clock, {
        "relative": "/feed", "atom": "/blog/atom.xml", "json": "/feed.json",
        "broken": "/broken.xml", "picture": "/logo.png"})
    with capture_logs() as logs:
        report = p.run_once()
    assert report.failed_sources == ["picture"]
    health = {s.name: s for s in p.db.sources.all()}
    assert health["picture"].last_error == "parse: not a readable feed: got a PNG image"
    for name in ("relative", "atom", "json", "broken"):
        assert (health[name].last_error, health[name].failures) == (None, 0), name
    warned = {(e["source"], e["warning"].split(":")[0]) for e in logs
              if e["event"] == "source warning"}
    assert warned == {("atom", "fetch"), ("json", "fetch"), ("broken", "parse")}

    articles = {a["title"]: a for a in p.db.listings.articles()}
    base = http_server.base
    assert {t: a["url"] for t, a in articles.items()} == {
        "وصول تعزيزات إلى قاعدة عين الأسد": f"{base}/ar/news/2026/11/28/1",
        "Ain al-Asad air base on alert": f"{base}/feeds/ar/news/2026/11/28/2",
        "Q&A: rockets near Ain al-Asad": f"{base}/blog/2026/11/qna.html",
        "Drone downed near Ain al-Asad": f"{base}/j/17",
        "تعزيزات عسكرية تصل إلى قاعدة عين الأسد": None,
        "افتتاح معرض للكتاب في أربيل": None,
    }
    raised = alerts(tmp_path)
    assert sorted(a["article"]["title"] for a in raised) == sorted([
        "وصول تعزيزات إلى قاعدة عين الأسد", "Ain al-Asad air base on alert",
        "Q&A: rockets near Ain al-Asad", "Drone downed near Ain al-Asad",
        "تعزيزات عسكرية تصل إلى قاعدة عين الأسد"])
    assert all(a["article"]["url"] for a in raised if a["article"]["source"] != "broken")
    p.close()


def test_dates_in_the_future_never_keep_an_article_on_top(tmp_path: Path, db_url: str,
                                                          http_server: Server,
                                                          clock: Clock) -> None:
    """The clock reads 2026-11-28 21:00 UTC. A date more than a day ahead is dropped; one a
    few hours ahead is kept as the publisher wrote it, but listings order by the earlier of
    it and the time raqib stored the article."""
    http_server.routes["/f.xml"] = Response(200, FUTURE.encode())
    p = pipeline(tmp_path, db_url, http_server, clock, {"typos": "/f.xml"})
    assert p.run_once().ok
    later = FUTURE.replace("</channel>", """<item><title>Ain al-Asad: seen later</title>
<guid>f-5</guid><pubDate>Sat, 28 Nov 2026 20:30:00 GMT</pubDate><description>Five.</description>
</item></channel>""")
    http_server.routes["/f.xml"] = Response(200, later.encode())
    clock.advance(hours=2)
    assert p.run_once().ok
    listed = [(a["title"].split(": ")[1], a["published"].isoformat() if a["published"] else None)
              for a in p.db.listings.articles()]
    assert listed == [
        # stored at 21:00: the 2099 date dropped, the one 6 hours ahead kept but not on top;
        # equal times in the order stored, newest first
        ("no date", None),
        ("a date a few hours ahead", "2026-11-29T03:00:00+00:00"),
        ("a date from 2099", None),
        # stored at 23:00, published 20:30: below what was stored at 21:00
        ("seen later", "2026-11-28T20:30:00+00:00"),
        ("an hour ago", "2026-11-28T20:00:00+00:00"),
    ]
    payloads = {a["article"]["title"]: a["article"]["published"] for a in alerts(tmp_path)}
    assert payloads["Ain al-Asad: a date from 2099"] is None
    assert payloads["Ain al-Asad: an hour ago"] == "2026-11-28T20:00:00Z"
    p.close()


@pytest.mark.parametrize("label", ["aws-chunked", "none", "UTF-8", "binary"])
def test_a_bogus_content_encoding_never_fails_the_source(tmp_path: Path, http_server: Server,
                                                         clock: Clock, label: str) -> None:
    http_server.routes["/f.xml"] = Response(200, FUTURE.encode(), {"Content-Encoding": label})
    p = pipeline(tmp_path, f"sqlite:///{tmp_path}/raqib.db", http_server, clock,
                 {"s3": "/f.xml"})
    report = p.run_once()
    assert (report.ok, report.new) == (True, 4)
    clock.advance(hours=1)
    p.poll_source(p.cfg.main.sources[0])
    [health] = p.db.sources.all()
    assert (health.last_error, health.failures) == (None, 0)
    p.close()
