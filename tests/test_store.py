"""Storage on real SQLite files and the local PostgreSQL: migrations, identity per source,
versions, tombstones, races between workers, and errors."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from worker import schema
from worker.db import Database, StorageError
from worker.dedupe import Prepared, prepare
from worker.domain import AlertSpec, Article, Explanation
from worker.ingestor import Ingestor, RuleHit

from conftest import Clock

SPEC = AlertSpec("rule-a", "Rule A", "high", ("log",))
WHY = (Explanation("@erbil", "body", "Erbil", "… in Erbil …"),)


def decide_all(articles: list[Article]) -> list[list[RuleHit]]:
    return [[(SPEC, WHY)] for _ in articles]


def article(n: int, source: str = "src", **kw: str) -> Prepared:
    fields = {"title": f"Story {n} about Erbil", "body": f"Body number {n} " + "word " * 30,
              "url": f"https://news.example/{n}", "guid": f"guid-{n}"} | kw
    return prepare(Article(source=source, **fields))


def fresh(db_url: str, clock: Clock) -> tuple[Database, Ingestor, int, int]:
    db = Database(db_url, clock)
    db.migrate()
    ids = db.sources.sync([("src", "https://news.example/feed", "feed"),
                           ("other", "https://other.example/feed", "feed")], clock())
    return db, Ingestor(db), ids["src"], ids["other"]


def test_migration_matches_the_models(db_url: str, clock: Clock) -> None:
    db, *_ = fresh(db_url, clock)
    db.migrate()   # a second upgrade is a no-op
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        tables = set(inspect(conn).get_table_names())
    assert {"sources", "articles", "item_keys", "story_index", "held_alerts", "stories",
            "alerts", "matches", "deliveries", "seed_files"} <= tables
    db.close()


def test_duplicates_are_the_same_item_of_the_same_source(db_url: str, clock: Clock) -> None:
    db, ing, sid, _ = fresh(db_url, clock)
    first = ing.ingest(sid, [article(1), article(2)], decide_all)
    assert (first.new, first.duplicates, len(first.alerts)) == (2, 0, 2)
    again = [
        article(1),                                                       # the same item
        article(2, guid="guid-2b", url="https://news.example/2?utm_source=x#frag"),  # same text
        prepare(Article(source="src", title="STORY 1 ABOUT ERBIL!", url="https://elsewhere/1",
                        body="Body number 1 " + "word " * 30)),           # same normalized text
        article(5), article(5, guid="guid-5b", url="https://news.example/5b"),  # twice in batch
    ]
    second = ing.ingest(sid, again, decide_all)
    assert (second.new, second.updates, second.duplicates) == (1, 0, 4)
    assert db.listings.count(schema.Article) == 3
    assert db.listings.count(schema.Alert) == 3
    db.close()


def test_a_known_guid_with_new_text_is_a_version_in_its_story(db_url: str,
                                                             clock: Clock) -> None:
    db, ing, sid, _ = fresh(db_url, clock)
    ing.ingest(sid, [article(1)], lambda arts: [[] for _ in arts])    # the stub matched nothing
    clock.advance(minutes=5)
    r = ing.ingest(sid, [article(1, body="Full text now " + "other " * 40)], decide_all)
    assert (r.new, r.updates, len(r.alerts)) == (0, 1, 1)
    rows = db.listings.articles()
    assert [a["version"] for a in rows] == [2, 1]
    assert rows[0]["story"] == rows[1]["story"]
    # the same link with new text (no GUID) is a version too; a rule that alerted stays quiet
    r = ing.ingest(sid, [article(1, guid="", body="Third text " + "more " * 40)], decide_all)
    assert (r.updates, len(r.alerts)) == (1, 0)
    db.close()


def test_copies_from_another_source_are_articles_of_the_story(db_url: str,
                                                             clock: Clock) -> None:
    db, ing, sid, other = fresh(db_url, clock)
    ing.ingest(sid, [article(1)], decide_all)
    r = ing.ingest(other, [article(1, source="other")], decide_all)   # verbatim, same URL/GUID
    assert (r.new, r.duplicates, len(r.alerts)) == (1, 0, 0)          # one alert per story
    [story] = db.listings.stories()
    assert story["sources"] == ["other", "src"]
    [payload] = db.listings.alert_payloads()
    assert payload["story"]["sources"] == 2 and payload["story"]["articles"] == 2
    db.close()


def test_a_guid_shared_by_different_items_is_no_identity(db_url: str, clock: Clock) -> None:
    db, ing, sid, _ = fresh(db_url, clock)
    r = ing.ingest(sid, [article(n, guid="N/A") for n in range(3)], decide_all)
    assert (r.new, r.duplicates, len(r.alerts)) == (3, 0, 3)
    # remembered: a later fetch with one new item under the same GUID is new, not an update
    r = ing.ingest(sid, [article(7, guid="N/A")], decide_all)
    assert (r.new, r.updates) == (1, 0)
    # a link every item shares (the home page) is no identity either
    r = ing.ingest(sid, [article(n, guid=f"x{n}", url="https://news.example/")
                         for n in (10, 11)], decide_all)
    assert (r.new, r.updates) == (2, 0)
    db.close()


def test_a_known_guid_with_another_link_is_a_new_item(db_url: str, clock: Clock) -> None:
    db, ing, sid, _ = fresh(db_url, clock)
    ing.ingest(sid, [article(1, guid="same")], decide_all)
    r = ing.ingest(sid, [article(2, guid="same")], decide_all)   # other link, other text
    assert (r.new, r.updates, len(r.alerts)) == (1, 0, 1)
    db.close()


def test_pruned_items_leave_tombstones(db_url: str, clock: Clock) -> None:
    db, ing, sid, _ = fresh(db_url, clock)
    ing.ingest(sid, [article(1), article(2)], lambda arts: [[] for _ in arts])
    clock.advance(days=40)
    assert db.prune(clock() - timedelta(days=30)) == 2
    assert db.listings.count(schema.Article) == 0
    r = ing.ingest(sid, [article(1), article(2)], decide_all)   # still in the feed
    assert (r.new, r.duplicates, len(r.alerts)) == (0, 2, 0)
    r = ing.ingest(sid, [article(2, body="An update after pruning " + "x " * 30)], decide_all)
    assert (r.updates, len(r.alerts)) == (1, 1)
    db.close()


def test_alert_payload_and_outbox(db_url: str, clock: Clock) -> None:
    db, ing, sid, _ = fresh(db_url, clock)
    [raised] = ing.ingest(sid, [article(1)], decide_all).alerts
    [payload] = db.listings.alert_payloads()
    assert payload["id"] == raised.id
    assert payload["schema"] == "raqib.alert/1"
    assert payload["created_at"] == "2026-11-28T21:00:00Z"
    assert payload["rule"] == {"id": "rule-a", "title": "Rule A", "severity": "high"}
    assert payload["article"]["url"] == "https://news.example/1"
    assert payload["article"]["source"] == "src"
    assert payload["story"]["sources"] == 1
    assert (payload["kind"], payload["silenced_by"]) == ("match", None)
    assert payload["matches"] == [{"term": "@erbil", "field": "body", "text": "Erbil",
                                   "snippet": "… in Erbil …"}]
    [due] = db.outbox.due(clock(), channels=["log"])
    assert (due.alert_id, due.channel) == (raised.id, "log")
    db.outbox.delivered(due.id, clock())
    assert db.outbox.due(clock(), channels=["log"]) == []
    assert db.outbox.sent_since("log", clock() - timedelta(hours=1))[0] == 1
    db.close()


def test_failed_ingest_leaves_nothing(db_url: str, clock: Clock) -> None:
    db, ing, sid, _ = fresh(db_url, clock)

    def broken(articles: list[Article]) -> list[list[RuleHit]]:
        raise RuntimeError("matcher blew up")

    with pytest.raises(RuntimeError, match="blew up"):
        ing.ingest(sid, [article(1)], broken)
    assert db.listings.count(schema.Article) == 0
    assert ing.ingest(sid, [article(1)], decide_all).new == 1
    db.close()


def test_database_errors_are_storage_errors_without_sql(db_url: str, clock: Clock) -> None:
    db, ing, sid, _ = fresh(db_url, clock)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE item_keys"))
    with pytest.raises(StorageError) as err:
        ing.ingest(sid, [article(1)], decide_all)
    message = str(err.value)
    assert message.startswith(f"storage: look up keys of source {sid}: ")
    assert "SELECT" not in message and "guid" not in message and len(message) < 300
    db.close()


@pytest.mark.parametrize("threads", [3])
def test_workers_racing_on_one_feed_store_and_alert_once(db_url: str, clock: Clock,
                                                         threads: int) -> None:
    """Several workers (each its own Database, as separate processes have) ingest the same
    items at once: each article and each alert is stored exactly once, no story is left
    empty."""
    setup, _, sid, _ = fresh(db_url, clock)
    setup.close()
    batch = [article(n) for n in range(60)]
    dbs = [Database(db_url, clock) for _ in range(threads)]
    barrier = threading.Barrier(threads)
    results = []

    def work(db: Database) -> None:
        barrier.wait()
        results.append(Ingestor(db).ingest(sid, [prepare(p.article) for p in batch],
                                           decide_all))

    workers = [threading.Thread(target=work, args=(d,)) for d in dbs]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert sum(r.new for r in results) == 60
    assert sum(len(r.alerts) for r in results) == 60
    assert dbs[0].listings.count(schema.Alert) == 60
    assert dbs[0].listings.count(schema.Story) == 60
    for d in dbs:
        d.close()


def test_copies_arriving_at_once_from_two_sources_make_one_story(db_url: str,
                                                                 clock: Clock) -> None:
    setup, _, sid, other = fresh(db_url, clock)
    setup.close()
    dbs = [Database(db_url, clock) for _ in range(2)]
    barrier = threading.Barrier(2)

    def work(db: Database, source_id: int, name: str) -> None:
        barrier.wait()
        Ingestor(db).ingest(source_id, [article(n, source=name, url=f"https://{name}/{n}",
                                                guid=f"{name}-{n}") for n in range(20)],
                            decide_all)

    workers = [threading.Thread(target=work, args=(dbs[0], sid, "src")),
               threading.Thread(target=work, args=(dbs[1], other, "other"))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert dbs[0].listings.count(schema.Article) == 40
    assert dbs[0].listings.count(schema.Story) == 20
    assert dbs[0].listings.count(schema.Alert) == 20
    for d in dbs:
        d.close()


def test_record_poll_health(db_url: str, clock: Clock) -> None:
    db, _, sid, _ = fresh(db_url, clock)
    later = datetime(2026, 11, 28, 21, 15, tzinfo=clock().tzinfo)
    db.sources.record_poll(sid, now=clock(), error="fetch: HTTP 500", next_poll=later)
    db.sources.record_poll(sid, now=clock(), error="fetch: HTTP 500", next_poll=later)
    s = db.sources.state(sid)
    assert (s.failures, s.last_error, s.last_success, s.next_poll) == (2, "fetch: HTTP 500",
                                                                       None, later)
    db.sources.record_poll(sid, now=clock(), error=None, next_poll=later,
                           validators=('"v1"', None))
    s = db.sources.state(sid)
    assert (s.failures, s.last_error, s.last_success, s.etag) == (0, None, clock(), '"v1"')
    db.close()


def test_upgrade_from_0004_keeps_identity_and_stories(tmp_path, clock: Clock) -> None:
    """A database written by the previous schema: its articles' keys become item keys, its
    bands the (band, story) index, its throttle's held JSON rows."""
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config as AlembicConfig  # noqa: PLC0415

    from worker.db.engine import MIGRATIONS  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url, clock)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.execute(text("INSERT INTO sources (id, name, url, kind, failures, created_at) "
                          "VALUES (1, 'src', 'https://news.example/feed', 'feed', 0, "
                          "'2026-11-28 20:00:00')"))
        conn.execute(text("INSERT INTO stories (id, title, created_at) VALUES "
                          "(1, 'Story 1 about Erbil', '2026-11-28 20:00:00')"))
        old = article(1)
        conn.execute(text(
            "INSERT INTO articles (id, source_id, story_id, guid, guid_hash, url, url_hash, "
            "content_hash, title, summary, body, fetched_at, signature) VALUES (1, 1, 1, "
            ":g, :gh, :u, :uh, :c, 'Story 1 about Erbil', '', 'b', '2026-11-28 20:00:00', :s)"),
            {"g": old.article.guid, "gh": old.guid_hash, "u": old.url, "uh": old.url_hash,
             "c": old.content_hash, "s": old.signature.to_bytes()})
        for band in old.signature.bands():
            conn.execute(text("INSERT INTO story_bands (band, article_id) VALUES (:b, 1)"),
                         {"b": band})
        conn.execute(text("INSERT INTO alerts (id, rule_id, rule_title, severity, story_id, "
                          "article_id, created_at) VALUES ('01A', 'a', 'A', 'high', 1, 1, "
                          "'2026-11-28 20:00:00')"))
        conn.execute(text("INSERT INTO rule_hits (rule_id, article_id, story_id, source_id, at) "
                          "VALUES ('w', 1, 1, 1, '2026-11-28 20:00:00')"))
        conn.execute(text(
            "INSERT INTO rule_state (rule_id, last_alert_at, held) VALUES ('r', "
            "'2026-11-28 20:00:00', :h)"),
            {"h": '{"count": 1, "titles": ["Story 1 about Erbil"], "items": [{"article_id": '
                  '1, "story_id": 1, "title": "Story 1 about Erbil", "url": null}]}'})
    db.migrate()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        assert conn.scalar(select(schema.HeldAlert.story_id)) == 1
        assert conn.scalar(text("SELECT count(*) FROM story_index")) == 32
        assert conn.scalar(text("SELECT count(*) FROM rule_hits")) == 1   # nothing cascaded
        assert conn.scalar(text("SELECT count(*) FROM alerts")) == 1
    ing = Ingestor(db)
    assert ing.ingest(1, [article(1)], decide_all).duplicates == 1
    r = ing.ingest(1, [article(1, body="Body number 1 " + "word " * 29 + "extra")], decide_all)
    assert r.updates == 1
    [story] = db.listings.stories()
    assert story["id"] == 1 and len(story["articles"]) == 2
    db.close()


def test_a_failed_sqlite_migration_leaves_the_old_schema_whole(tmp_path, clock: Clock) -> None:
    """A migration that fails half-way (here: a table 0005 creates is in the way, after 0005
    has copied the articles table) is rolled back as a whole, so the next upgrade works."""
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config as AlembicConfig  # noqa: PLC0415

    from worker.db.engine import MIGRATIONS  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url, clock)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.execute(text("CREATE TABLE item_keys (x INTEGER)"))   # in 0005's way
    with pytest.raises(Exception, match="item_keys"):
        db.migrate()
    with db.engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "0004"
        names = set(inspect(conn).get_table_names())
        assert "_alembic_tmp_articles" not in names and "articles" in names
        conn.execute(text("DROP TABLE item_keys"))
        conn.commit()
    db.migrate()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    db.close()
