"""What a feed carries is never lost, and live alerting agrees with itself: the cases of the
rebuilt ingest core, each on SQLite and PostgreSQL, fed over a real HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker import config
from worker.backtest import backtest
from worker.db import Database
from worker.pipeline import Pipeline

from conftest import DATA, Clock, Response, Server, write

CASES = DATA / "cases"


def setup(tmp_path: Path, db_url: str, rules: str, sources: list[tuple[str, str, list[str]]],
          clock: Clock, extra: str = "") -> tuple[Pipeline, Database]:
    """A pipeline on *sources* ((name, url, tags)) with *rules*, a file channel, one clock."""
    rules_path = write(tmp_path / "rules.yaml", rules)
    lines = [f"database: {db_url}", f"rules: [{rules_path}]", "sources:"]
    lines += [f"  - {{name: {n}, url: '{u}', tags: [{', '.join(t)}]}}" for n, u, t in sources]
    lines += ["channels:", "  out: {type: file, path: " + str(tmp_path / "alerts.jsonl") + "}",
              "defaults: {notify: [out]}", extra]
    cfg = config.load_config(str(write(tmp_path / "raqib.yaml", "\n".join(lines) + "\n")))
    db = Database(db_url)
    db.migrate()
    pipe = Pipeline(cfg, db, clock=clock)
    pipe.sync_sources()
    return pipe, db


def serve(server: Server, case: str, path: str, name: str) -> None:
    server.routes[path] = Response(200, (CASES / case / name).read_bytes(),
                                   {"Content-Type": "application/rss+xml"})


def rule_ids(db: Database) -> list[str]:
    return sorted(a["rule"]["id"] for a in db.listings.alert_payloads())


def test_a_guid_every_item_shares_hides_no_item(tmp_path: Path, db_url: str,
                                                http_server: Server, clock: Clock) -> None:
    case = "05-same-guid-every-item"
    serve(http_server, case, "/feed.xml", "feed.xml")
    pipe, db = setup(tmp_path, db_url, (CASES / case / "rules.yaml").read_text(),
                     [("bulletins", http_server.url("/feed.xml"), [])], clock)
    report = pipe.run_once()
    assert (report.new, report.alerts) == (3, 3)
    assert b"raqib_ingest_lock_held_seconds_count 1.0" in pipe.metrics.exposition()
    clock.advance(minutes=15)
    assert pipe.run_once().alerts == 0        # a re-poll alerts for nothing again
    assert len(db.listings.articles()) == 3
    pipe.close()


def test_an_exact_copy_from_another_source_joins_the_story(tmp_path: Path, db_url: str,
                                                           http_server: Server,
                                                           clock: Clock) -> None:
    case = "07-cross-source-exact-copy"
    serve(http_server, case, "/aggregator.xml", "aggregator.xml")
    serve(http_server, case, "/official.xml", "official_empty.xml")
    pipe, db = setup(tmp_path, db_url, (CASES / case / "rules.yaml").read_text(), [
        ("aggregator", http_server.url("/aggregator.xml"), ["aggregator"]),
        ("ministry", http_server.url("/official.xml"), ["official"])], clock)
    pipe.run_once()
    assert rule_ids(db) == []
    clock.advance(minutes=20)
    serve(http_server, case, "/official.xml", "official.xml")
    pipe.run_once()
    assert rule_ids(db) == ["corroborated", "official-statements"]
    window = next(a for a in db.listings.alert_payloads() if a["rule"]["id"] == "corroborated")
    assert (window["kind"], window["count"], window["article"]["source"]) == ("window", 2,
                                                                             "ministry")
    [story] = db.listings.stories()
    assert story["sources"] == ["aggregator", "ministry"]
    pipe.close()


def test_an_item_updated_in_place_is_matched_again(tmp_path: Path, db_url: str,
                                                   http_server: Server, clock: Clock) -> None:
    case = "10-updated-item-never-rematched"
    serve(http_server, case, "/feed.xml", "v1.xml")
    pipe, db = setup(tmp_path, db_url, (CASES / case / "rules.yaml").read_text(),
                     [("agency", http_server.url("/feed.xml"), [])], clock)
    pipe.run_once()
    assert rule_ids(db) == []
    clock.advance(minutes=15)
    serve(http_server, case, "/feed.xml", "v2.xml")
    pipe.run_once()
    assert rule_ids(db) == ["base-watch"]
    latest, stub = db.listings.articles()
    assert (latest["version"], stub["version"]) == (2, 1)
    assert latest["story"] == stub["story"] and latest["title"] != stub["title"]
    clock.advance(minutes=15)
    pipe.run_once()                                   # the update again: a duplicate now
    assert rule_ids(db) == ["base-watch"] and len(db.listings.articles()) == 2
    pipe.close()


@pytest.mark.parametrize("order", ["abc", "bac", "acb", "cab"])
def test_placement_compares_every_kind_of_copy(tmp_path: Path, db_url: str,
                                               http_server: Server, clock: Clock,
                                               order: str) -> None:
    """Full wire text (a), abridged top (b) and bottom (c): in any order where a copy that
    bridges the others comes before the second abridged one, one story, one alert."""
    case = "11-story-split-by-newest-representative"
    names = {"a": "a-wire", "b": "b-daily", "c": "c-weekly"}
    for key in "abc":
        serve(http_server, case, f"/{key}.xml", "empty.xml")
    pipe, db = setup(tmp_path, db_url, (CASES / case / "rules.yaml").read_text(),
                     [(names[k], http_server.url(f"/{k}.xml"), []) for k in "abc"], clock)
    for key in order:
        serve(http_server, case, f"/{key}.xml", f"{key}.xml")
        clock.advance(minutes=20)
        pipe.run_once()
    [story] = db.listings.stories()
    assert story["sources"] == sorted(names.values())
    assert rule_ids(db) == ["base-watch"]
    pipe.close()


ASAD_WINDOW = """\
entities:
  ain-al-asad: {names: ["Ain al-Asad", "عين الأسد"]}
rules:
  - id: two-outlets
    title: Two outlets on Ain al-Asad
    match: "@ain-al-asad"
    when: {count: 2, within: 1h, distinct_sources: true}
"""


@pytest.mark.parametrize("run", range(6))
def test_a_window_counts_hits_stored_side_by_side(tmp_path: Path, db_url: str, clock: Clock,
                                                  run: int) -> None:
    """Two sources polled at once, one article each: the window of two distinct sources
    fills every time, and backtest agrees."""
    feeds = []
    for i, (title, body) in enumerate([
            ("Drones hit Ain al-Asad", "Drones struck the Ain al-Asad air base overnight."),
            ("قصف عين الأسد", "سقطت صواريخ على قاعدة عين الأسد الجوية في الأنبار فجر اليوم.")]):
        feeds.append(write(tmp_path / f"feed{i}.xml", f"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>f{i}</title>
<item><title>{title}</title><link>https://f{i}.example/{run}</link><guid>g{i}</guid>
<description>{body}</description></item></channel></rss>"""))
    pipe, db = setup(tmp_path, db_url, ASAD_WINDOW,
                     [(f"src{i}", f.as_uri(), []) for i, f in enumerate(feeds)], clock)
    pipe.run_once()
    assert rule_ids(db) == ["two-outlets"]
    [result] = backtest(pipe.cfg.main, db, [str(tmp_path / "rules.yaml")], clock=clock)
    assert len(result.hits) == 1
    pipe.close()


def test_a_channel_rate_holds_across_a_reload(tmp_path: Path, db_url: str,
                                              http_server: Server, clock: Clock) -> None:
    case = "05-same-guid-every-item"
    serve(http_server, case, "/feed.xml", "feed.xml")
    rules = (CASES / case / "rules.yaml").read_text()
    pipe, _ = setup(tmp_path, db_url, rules, [("bulletins", http_server.url("/feed.xml"), [])],
                    clock)
    text = (tmp_path / "raqib.yaml").read_text().replace(
        "path: " + str(tmp_path / "alerts.jsonl") + "}",
        "path: " + str(tmp_path / "alerts.jsonl") + ", rate: 1/hour}")
    cfg = config.load_config(str(write(tmp_path / "raqib.yaml", text)))
    pipe.apply(cfg)
    report = pipe.run_once()
    assert (report.alerts, report.delivery.sent, report.delivery.held) == (3, 1, 2)
    pipe.apply(config.load_config(str(tmp_path / "raqib.yaml")))   # an unchanged reload
    assert pipe.deliver().sent == 0
    second = Pipeline(pipe.cfg, Database(db_url), clock=clock)       # another worker
    assert second.deliver().sent == 0
    clock.advance(minutes=61)
    assert pipe.deliver().sent == 1
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 2 and len({json.loads(x)["id"] for x in lines}) == 2
    second.close()
    pipe.close()
