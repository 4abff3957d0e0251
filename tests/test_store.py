"""Storage on real SQLite files and the local PostgreSQL: migrations, dedupe, alerts."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from worker import schema
from worker.dedupe import prepare
from worker.items import Article, Explanation
from worker.store import AlertSpec, Prepared, Store

from conftest import Clock

SPEC = AlertSpec("rule-a", "Rule A", "high",
                 (Explanation("@erbil", "body", "Erbil", "… in Erbil …"),), ("log",))


def decide_all(articles: list[Article]) -> list[list[AlertSpec]]:
    return [[SPEC] for _ in articles]


def article(n: int, **kw: str) -> Prepared:
    fields = {"title": f"Story {n} about Erbil", "body": f"Body number {n} " + "word " * 30,
              "url": f"https://news.example/{n}", "guid": f"guid-{n}"} | kw
    return prepare(Article(source="src", **fields))


def fresh_store(db_url: str, clock: Clock) -> tuple[Store, int]:
    store = Store(db_url)
    store.migrate()
    ids = store.sync_sources([("src", "https://news.example/feed", "feed"),
                              ("other", "https://other.example/feed", "feed")], clock())
    return store, ids["src"]


def test_migration_matches_the_models(db_url: str, clock: Clock) -> None:
    store, _ = fresh_store(db_url, clock)
    store.migrate()   # a second upgrade is a no-op
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        tables = set(inspect(conn).get_table_names())
    assert {"sources", "articles", "stories", "alerts", "matches", "deliveries",
            "seed_files"} <= tables
    store.close()


def test_exact_dedupe_by_guid_url_and_text(db_url: str, clock: Clock) -> None:
    store, sid = fresh_store(db_url, clock)
    first = store.ingest(sid, [article(1), article(2)], decide_all, clock())
    assert (first.new, first.duplicates, len(first.alerts)) == (2, 0, 2)
    again = [
        article(1),                                                    # the same item
        article(3, guid="guid-1"),                                     # same GUID, new text
        article(4, url="https://news.example/2?utm_source=x#frag"),    # same canonical URL
        prepare(Article(source="src", title="STORY 1 ABOUT ERBIL!", url="https://elsewhere/1",
                        body="Body number 1 " + "word " * 30)),        # same normalized text
        article(5), article(5, guid="guid-5b", url="https://news.example/5b"),  # twice in batch
    ]
    second = store.ingest(sid, again, decide_all, clock())
    assert (second.new, second.duplicates) == (1, 5)
    assert store.count(schema.Article) == 3
    assert store.count(schema.Alert) == 3
    store.close()


def test_guids_are_per_source(db_url: str, clock: Clock) -> None:
    store, sid = fresh_store(db_url, clock)
    other = store.sync_sources([], clock())["other"]
    store.ingest(sid, [article(1)], decide_all, clock())
    r = store.ingest(other, [article(9, guid="guid-1")], decide_all, clock())
    assert r.new == 1
    store.close()


def test_alert_payload_and_outbox(db_url: str, clock: Clock) -> None:
    store, sid = fresh_store(db_url, clock)
    [raised] = store.ingest(sid, [article(1)], decide_all, clock()).alerts
    [payload] = store.alert_payloads()
    assert payload["id"] == raised.id
    assert payload["schema"] == "raqib.alert/1"
    assert payload["created_at"] == "2026-11-28T21:00:00Z"
    assert payload["rule"] == {"id": "rule-a", "title": "Rule A", "severity": "high"}
    assert payload["article"]["url"] == "https://news.example/1"
    assert payload["article"]["source"] == "src"
    assert payload["story"]["sources"] == 1
    assert payload["matches"] == [{"term": "@erbil", "field": "body", "text": "Erbil",
                                   "snippet": "… in Erbil …"}]
    [due] = store.due_deliveries(clock(), channels=["log"])
    assert (due.alert_id, due.channel) == (raised.id, "log")
    store.delivered(due.id, clock())
    assert store.due_deliveries(clock(), channels=["log"]) == []
    store.close()


def test_failed_ingest_leaves_nothing(db_url: str, clock: Clock) -> None:
    store, sid = fresh_store(db_url, clock)

    def broken(articles: list[Article]) -> list[list[AlertSpec]]:
        raise RuntimeError("matcher blew up")

    with pytest.raises(RuntimeError, match="blew up"):
        store.ingest(sid, [article(1)], broken, clock())
    assert store.count(schema.Article) == 0
    assert store.ingest(sid, [article(1)], decide_all, clock()).new == 1
    store.close()


def test_two_workers_never_alert_twice(db_url: str, clock: Clock) -> None:
    """Several workers on one database ingest the same items at once: each article and each
    alert is stored exactly once."""
    setup, sid = fresh_store(db_url, clock)
    setup.close()
    batch = [article(n) for n in range(60)]
    stores = [Store(db_url) for _ in range(3)]
    barrier = threading.Barrier(len(stores))
    results = []

    def work(store: Store) -> None:
        barrier.wait()
        results.append(store.ingest(sid, list(batch), decide_all, clock()))

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.new for r in results) == 60
    assert sum(len(r.alerts) for r in results) == 60
    assert stores[0].count(schema.Alert) == 60
    assert stores[0].count(schema.Story) == 60   # stories of lost races are removed
    for s in stores:
        s.close()


def test_record_poll_health(db_url: str, clock: Clock) -> None:
    store, sid = fresh_store(db_url, clock)
    later = datetime(2026, 11, 28, 21, 15, tzinfo=clock().tzinfo)
    store.record_poll(sid, now=clock(), error="fetch: HTTP 500", next_poll=later)
    store.record_poll(sid, now=clock(), error="fetch: HTTP 500", next_poll=later)
    s = store.source_state(sid)
    assert (s.failures, s.last_error, s.last_success, s.next_poll) == (2, "fetch: HTTP 500",
                                                                       None, later)
    store.record_poll(sid, now=clock(), error=None, next_poll=later, validators=('"v1"', None))
    s = store.source_state(sid)
    assert (s.failures, s.last_error, s.last_success, s.etag) == (0, None, clock(), '"v1"')
    store.close()
