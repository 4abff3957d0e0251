"""`when:` windows and `throttle:`: counted in the database, so a restart neither loses nor
repeats them; a throttle holds alerts back and folds them into the next one, never drops them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from worker import config
from worker.db import Database
from worker.pipeline import Pipeline

from conftest import Clock, Response, Server, write

RULES = """\
rules:
  - id: surge
    match: Ain al-Asad
    when: {count: 3, within: 6h, distinct_sources: true}
  - id: stories3
    match: Ain al-Asad
    when: {count: 3, within: 6h}
  - id: calm
    match: Ain al-Asad
    throttle: 1h
"""
TEXTS = [
    "Two rockets struck the Ain al-Asad air base late on Saturday, officials said, without "
    "casualties; an investigation into the launch site has been opened by the army.",
    "Parliament debated the future of Ain al-Asad and other bases after the coalition left, "
    "with several blocs calling for a new security agreement with Washington this year.",
    "A convoy carrying equipment from Ain al-Asad reached Baghdad on Monday, the defence "
    "ministry said, as Iraqi units took over the last facilities at the western base.",
    "Satellite images show new construction at Ain al-Asad, analysts said, suggesting the "
    "Iraqi air force plans to station more aircraft there in the coming months ahead.",
    "Local officials in Anbar welcomed the handover of Ain al-Asad and promised jobs for "
    "residents of nearby towns, who had worked at the base for two decades of war.",
]


def item(i: int, text: str) -> str:
    return (f"<item><title>Report {i}</title><link>https://news.example/{i}</link>"
            f"<description>{text}</description></item>")


def setup(tmp: Path, server: Server, clock: Clock) -> Pipeline:
    for s in range(4):   # four sources, empty until a test gives them items
        server.routes.setdefault(f"/s{s}", Response(200, b"<rss version='2.0'><channel>"
                                                         b"<title>t</title></channel></rss>"))
    write(tmp / "rules/r.yaml", RULES)
    write(tmp / "raqib.yaml", yaml.safe_dump({
        "database": f"sqlite:///{tmp}/raqib.db", "rules": [str(tmp / "rules")],
        "sources": [{"name": f"s{i}", "url": server.url(f"/s{i}")} for i in range(4)],
        "channels": {"log": {"type": "file", "path": str(tmp / "alerts.jsonl")}},
        "defaults": {"notify": ["log"]}}))
    cfg = config.load_config(str(tmp / "raqib.yaml"), env={})
    db = Database(cfg.main.database)
    db.migrate()
    p = Pipeline(cfg, db, clock=clock)
    p.sync_sources()
    return p


def feed(server: Server, source: int, items: list[tuple[int, str]]) -> None:
    server.routes[f"/s{source}"] = Response(200, (
        "<rss version='2.0'><channel><title>t</title>" + "".join(item(i, t) for i, t in items)
        + "</channel></rss>").encode())


def alerts(p: Pipeline, rule: str) -> list[dict[str, object]]:
    return [a for a in p.db.listings.alert_payloads() if a["rule"]["id"] == rule]


def test_when_fires_once_per_window_and_survives_restart(tmp_path: Path, http_server: Server,
                                                         clock: Clock) -> None:
    p = setup(tmp_path, http_server, clock)
    feed(http_server, 0, [(0, TEXTS[0]), (1, TEXTS[1])])     # two stories, one source
    p.run_once()
    assert alerts(p, "surge") == [] and alerts(p, "stories3") == []
    p.close()

    clock.advance(hours=1)
    p = setup(tmp_path, http_server, clock)                  # a restart keeps the count
    feed(http_server, 1, [(2, TEXTS[2])])                    # third story, second source
    p.run_once()
    [fired] = alerts(p, "stories3")
    assert fired["window"] == {"count": 3, "within_seconds": 21600, "distinct_sources": False}
    assert alerts(p, "surge") == []                          # only 2 sources so far
    feed(http_server, 2, [(3, TEXTS[3])])                    # third source
    p.run_once()
    assert len(alerts(p, "surge")) == 1
    assert len(alerts(p, "stories3")) == 1                   # its window already fired
    clock.advance(hours=1)
    feed(http_server, 3, [(4, TEXTS[4])])
    p.run_once()                                             # a new window needs 3 new hits
    assert len(alerts(p, "stories3")) == 1 and len(alerts(p, "surge")) == 1
    p.close()


def test_throttle_holds_back_and_folds_into_the_next_alert(tmp_path: Path,
                                                           http_server: Server,
                                                           clock: Clock) -> None:
    p = setup(tmp_path, http_server, clock)
    feed(http_server, 0, [(0, TEXTS[0])])
    p.run_once()
    assert len(alerts(p, "calm")) == 1
    clock.advance(minutes=10)
    feed(http_server, 1, [(1, TEXTS[1]), (2, TEXTS[2])])
    p.run_once()
    assert len(alerts(p, "calm")) == 1                       # held back, not dropped
    clock.advance(minutes=10)
    p.close()
    p = setup(tmp_path, http_server, clock)                  # held across a restart
    clock.advance(hours=1)
    feed(http_server, 2, [(3, TEXTS[3])])
    p.run_once()
    # Policy change (flushes dated at the window's close): the window closed at 22:00, so
    # what it held goes out first, dated 22:00, on its newest story; Report 3, 20 minutes
    # after that alert, is held in turn.
    assert len(alerts(p, "calm")) == 2
    newest = alerts(p, "calm")[0]
    assert newest["held"] == {"count": 2, "titles": ["Report 1", "Report 2"]}
    assert (newest["article"]["title"], newest["created_at"]) == ("Report 2",
                                                                 "2026-11-28T22:00:00Z")
    # Held alerts with no later alert to ride on are flushed once the window passes.
    clock.advance(minutes=10)
    feed(http_server, 3, [(4, TEXTS[4])])
    p.run_once()
    assert len(alerts(p, "calm")) == 2
    clock.advance(hours=2)
    assert p.flush_held() == 1
    flushed = alerts(p, "calm")[0]
    assert flushed["held"] == {"count": 2, "titles": ["Report 3", "Report 4"]}
    assert (flushed["article"]["title"], flushed["created_at"]) == ("Report 4",
                                                                   "2026-11-28T23:00:00Z")
    p.close()


def test_backtest_replays_windows_in_article_time(tmp_path: Path, http_server: Server,
                                                  clock: Clock) -> None:
    from worker.backtest import backtest  # noqa: PLC0415

    for s in range(4):
        feed(http_server, s, [(s, TEXTS[s])])
    p = setup(tmp_path, http_server, clock)
    p.run_once()
    write(tmp_path / "replay.yaml", """\
rules:
  - id: replay-surge
    match: Ain al-Asad
    when: {count: 3, within: 6h, distinct_sources: true}
  - id: replay-throttle
    match: Ain al-Asad
    throttle: 1h
""")
    results = {r.rule_id: r for r in backtest(p.cfg.main, p.db,
                                                  [str(tmp_path / "replay.yaml")])}
    [fired] = results["replay-surge"].hits       # four sources, one window of three
    assert fired.window == 3
    # All at once: one alert, then the three held back, flushed on the last of them.
    first, flushed = results["replay-throttle"].hits
    assert (first.held, flushed.held) == (0, 3)
    p.close()


def test_digest_gathers_alerts_until_its_hour(tmp_path: Path, http_server: Server,
                                              clock: Clock) -> None:
    """A digest channel gets nothing one by one; at its time, one message with every alert
    since the last digest, grouped by rule with story counts. A channel without a digest
    gets each alert as usual."""
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415

    from worker.daemon import Daemon  # noqa: PLC0415

    for s in range(4):
        feed(http_server, s, [(s, TEXTS[s])])
    write(tmp_path / "rules/r.yaml", "rules:\n  - id: asad\n    match: Ain al-Asad\n"
                                     "  - id: coalition\n    match: coalition\n")
    write(tmp_path / "raqib.yaml", yaml.safe_dump({
        "database": f"sqlite:///{tmp_path}/raqib.db", "rules": [str(tmp_path / "rules")],
        "sources": [{"name": f"s{i}", "url": http_server.url(f"/s{i}")} for i in range(4)],
        "channels": {
            "now": {"type": "file", "path": str(tmp_path / "now.jsonl")},
            "daily": {"type": "file", "path": str(tmp_path / "daily.jsonl"),
                      "digest": "daily 08:00 Asia/Baghdad"}},
        "defaults": {"notify": ["now", "daily"]}}))
    cfg = config.load_config(str(tmp_path / "raqib.yaml"), env={})
    db = Database(cfg.main.database)
    db.migrate()
    p = Pipeline(cfg, db, clock=clock)
    p.sync_sources()
    report = p.run_once()
    assert report.alerts == 5 and report.delivery.sent == 5          # "now" only
    assert not (tmp_path / "daily.jsonl").exists()
    assert p.deliverer.digest("daily") == 5
    [digest] = [json.loads(x) for x in (tmp_path / "daily.jsonl").read_text().splitlines()]
    assert digest["schema"] == "raqib.digest/1" and digest["alerts"] == 5
    assert {(r["id"], r["alerts"], r["stories"]) for r in digest["rules"]} == {
        ("asad", 4, 4), ("coalition", 1, 1)}
    assert p.deliverer.digest("daily") == 0                          # nothing twice
    d = Daemon(p, web=False, watch=False)
    d._schedule()
    trigger = d.digest_triggers["daily"]
    assert isinstance(trigger, CronTrigger) and str(trigger.timezone) == "Asia/Baghdad"
    p.close()


def test_a_newest_first_feed_fills_a_window_in_one_pass(tmp_path: Path, http_server: Server,
                                                        clock: Clock) -> None:
    for s in range(4):
        feed(http_server, s, [])
    items = "".join(
        f"<item><title>Report {i}</title><link>https://news.example/{i}</link>"
        f"<pubDate>Sat, 28 Nov 2026 {20 - i}:00:00 GMT</pubDate>"
        f"<description>{TEXTS[i]}</description></item>" for i in range(3))
    http_server.routes["/s0"] = Response(200, (
        f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>").encode())
    p = setup(tmp_path, http_server, clock)
    p.run_once()
    assert len(alerts(p, "stories3")) == 1
    p.run_once()
    assert len(alerts(p, "stories3")) == 1
    p.close()


def test_nothing_held_is_lost_when_a_copy_of_an_alerted_story_comes(
        tmp_path: Path, http_server: Server, clock: Clock) -> None:
    p = setup(tmp_path, http_server, clock)
    feed(http_server, 0, [(0, TEXTS[0])])
    p.run_once()                                   # story A alerts
    clock.advance(minutes=5)
    feed(http_server, 1, [(1, TEXTS[1])])
    p.run_once()                                   # story B held
    clock.advance(minutes=61)
    feed(http_server, 2, [(7, TEXTS[0].replace("Saturday", "Sunday"))])
    p.run_once()                                   # a copy of A: joins A, raises nothing
    calm = alerts(p, "calm")
    assert len(calm) == 2                          # B was flushed, not lost
    assert calm[0]["held"]["titles"] == ["Report 1"]
    p.close()


def test_a_story_takes_copies_for_three_days(tmp_path: Path, http_server: Server,
                                             clock: Clock) -> None:
    from worker.stories import HORIZON  # noqa: PLC0415

    p = setup(tmp_path, http_server, clock)
    feed(http_server, 0, [(0, TEXTS[0])])
    p.run_once()
    clock.advance(hours=1)
    feed(http_server, 1, [(1, TEXTS[0])])          # a copy an hour later: same story
    p.run_once()
    [story] = p.db.listings.stories()
    assert story["sources"] == ["s0", "s1"]       # another source's copy is stored in it
    clock.advance(seconds=HORIZON.total_seconds() + 3600)
    feed(http_server, 2, [(2, TEXTS[0])])          # the same text days later: news again
    p.run_once()
    assert len(p.db.listings.stories()) == 2
    p.close()
