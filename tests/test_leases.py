"""Leases, on SQLite and PostgreSQL: what two workers may and may not both hold, what a dead
worker's leases become, and the register of workers. Time is an injected clock; concurrency is
real threads on real connections."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

from worker import schema
from worker.db import Database
from worker.db.leases import Claim, WorkerInfo, differences
from worker.fleet import Fleet

from conftest import Clock, write

LEASE = timedelta(seconds=30)
MINUTE = timedelta(minutes=1)


def database(url: str, clock: Clock, sources: int = 0) -> Database:
    db = Database(url, clock=clock)
    db.migrate()
    db.sources.sync([(f"s{i}", f"https://feed{i % 3}.example/{i}", "feed")
                     for i in range(sources)], clock())
    return db


def add_alert(db: Database, clock: Clock, n: int, channels: list[str]) -> None:
    """*n* alerts, each with a pending delivery per channel."""
    sid = db.sources.sync([("x", "file:///x", "feed")], clock())["x"]
    with db.units.unit("test rows") as uow:
        story = uow.conn.execute(insert(schema.Story).values(title="t", created_at=clock())
                                 .returning(schema.Story.id)).scalar_one()
        for i in range(n):
            art = uow.conn.execute(insert(schema.Article).values(
                source_id=sid, story_id=story, content_hash=f"h{i}", version=1, title="t",
                summary="", body="", fetched_at=clock()).returning(schema.Article.id)).scalar_one()
            uow.conn.execute(insert(schema.Alert).values(
                id=f"A{i:025d}", rule_id=f"r{i}", rule_title="r", severity="low",
                story_id=story, article_id=art, created_at=clock()))
            for c in channels:
                uow.conn.execute(insert(schema.Delivery).values(
                    alert_id=f"A{i:025d}", channel=c, status="pending", attempts=0,
                    next_attempt=clock(), created_at=clock()))


def test_due_sources_go_to_one_worker_and_a_dead_ones_come_back(db_url: str,
                                                                clock: Clock) -> None:
    db = database(db_url, clock, sources=6)
    every = {f"s{i}": MINUTE for i in range(6)}
    a = db.sources.claim_due("A", LEASE, every, limit=4)
    b = db.sources.claim_due("B", LEASE, every, limit=4)
    assert len(a) == 4 and len(b) == 2 and not set(a) & set(b)
    assert db.sources.claim_due("C", LEASE, every, limit=10) == []   # all held
    assert db.sources.claim_due("C", LEASE, every, limit=10, force=True) == []
    # The claim moved each source's next poll one interval and one lease on.
    assert {s.next_poll for s in db.sources.all()} == {clock() + MINUTE + LEASE}
    # B finishes its polls; A is killed. Nobody may take A's before its lease ends …
    for s in db.sources.all():
        if s.name in b:
            assert db.sources.record_poll(s.id, now=clock(), error=None,
                                          next_poll=clock() + MINUTE, holder="B")
    clock.advance(seconds=29)
    assert db.sources.claim_due("C", LEASE, every, limit=10) == []
    assert sorted(db.sources.claim_due("C", LEASE, {n: every[n] for n in a}, limit=10,
                                       force=True)) == []
    # … nor poll them sooner than their interval after A's claim, even once it has ended.
    clock.advance(seconds=2)
    assert db.sources.claim_due("C", LEASE, every, limit=10) == []
    clock.advance(seconds=30)
    assert sorted(db.sources.claim_due("C", LEASE, every, limit=10)) == sorted(b)
    clock.advance(seconds=30)
    assert sorted(db.sources.claim_due("C", LEASE, every, limit=10)) == sorted(a)
    # A comes back from the dead: its record is refused, C's poll is the one that counts.
    s0 = next(s for s in db.sources.all() if s.name == a[0])
    assert not db.sources.record_poll(s0.id, now=clock(), error="late", next_poll=None,
                                      holder="A")
    assert db.sources.state(s0.id).last_error is None
    db.close()


def test_concurrent_claims_never_share_a_source(db_url: str, clock: Clock) -> None:
    db = database(db_url, clock, sources=60)
    every = {f"s{i}": MINUTE for i in range(60)}
    got: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(holder: str) -> None:
        start.wait()
        while names := db.sources.claim_due(holder, LEASE, every, limit=3):
            with lock:
                got.update(names)

    threads = [threading.Thread(target=worker, args=(f"W{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(got) == set(every) and set(got.values()) == {1}
    db.close()


def test_deliveries_are_claimed_once_and_a_rate_holds_for_every_worker(
        db_url: str, clock: Clock) -> None:
    db = database(db_url, clock)
    add_alert(db, clock, 10, ["hook", "slow"])
    rates = {"slow": (3, timedelta(hours=1))}
    a, _ = db.outbox.claim("A", LEASE, channels=["hook", "slow"], limit=4, rates=rates)
    b, held_b = db.outbox.claim("B", LEASE, channels=["hook", "slow"], limit=100, rates=rates)
    ids_a, ids_b = {d.id for d in a}, {d.id for d in b}
    assert not ids_a & ids_b
    slow = [d for d in a + b if d.channel == "slow"]
    assert len(a) == 4                          # limit counts every channel together
    assert len(slow) == 3                       # 3 an hour, for A and B together
    assert len([d for d in a + b if d.channel == "hook"]) == 10
    assert held_b == 7
    # Sent by both (A's lease ran out mid-send): marked once.
    first = a[0]
    assert db.outbox.delivered(first.id, clock()) == 1
    assert db.outbox.delivered(first.id, clock()) == 0
    assert not db.outbox.failed(first.id, "late failure", None, "B")
    # A dies holding the rest: after its lease they are B's, and the rate still holds (B is
    # sending 3 of "slow" now).
    clock.advance(seconds=20)
    db.leases.renew("B", LEASE)
    clock.advance(seconds=11)
    again, held = db.outbox.claim("B", LEASE, channels=["hook", "slow"], limit=100,
                                  rates=rates)
    assert {d.id for d in again} == ids_a - {first.id}
    assert [d.channel for d in again].count("slow") == 0 and held == 7
    db.close()


def test_a_task_runs_on_one_worker_once_per_round(db_url: str, clock: Clock) -> None:
    db = database(db_url, clock)

    def hourly(last: object, now: object) -> bool:
        return last is None or now - last >= timedelta(hours=1)  # type: ignore[operator]

    # Seen for the first time: its last round counts as done now.
    assert db.leases.claim_task("retention", "A", LEASE, hourly)[0] is Claim.NOT_DUE
    clock.advance(hours=1)
    outcome, at = db.leases.claim_task("retention", "A", LEASE, hourly)
    assert outcome is Claim.WON
    assert db.leases.claim_task("retention", "B", LEASE, hourly)[0] is Claim.LOST
    # A dies mid-round: once its lease is over, B runs the round.
    clock.advance(seconds=31)
    assert db.leases.claim_task("retention", "B", LEASE, hourly)[0] is Claim.WON
    assert not db.leases.finish_task("retention", "A", at)      # A's is gone
    assert db.leases.finish_task("retention", "B", clock())
    assert db.leases.last_done("retention") == clock()
    assert db.leases.claim_task("retention", "A", LEASE, hourly)[0] is Claim.NOT_DUE
    db.close()


def test_a_hosts_slots_are_shared_by_the_fleet(db_url: str, clock: Clock) -> None:
    db = database(db_url, clock)
    a = db.leases.claim_slot("news.example", 2, "A", LEASE)
    b = db.leases.claim_slot("news.example", 2, "B", LEASE)
    assert a and b and a != b
    assert db.leases.claim_slot("news.example", 2, "C", LEASE) is None
    assert db.leases.claim_slot("other.example", 2, "C", LEASE) is not None
    db.leases.release(a, "A")
    assert db.leases.claim_slot("news.example", 2, "C", LEASE) == a
    clock.advance(seconds=31)                     # B died holding its slot
    assert db.leases.claim_slot("news.example", 2, "D", LEASE) in {a, b}
    db.close()


def test_heartbeats_renew_leases_and_a_silent_worker_is_gone(db_url: str, clock: Clock,
                                                            tmp_path: Path) -> None:
    from worker import config  # noqa: PLC0415
    from worker.metrics import Metrics  # noqa: PLC0415

    db = database(db_url, clock, sources=2)
    cfg = config.load_config(str(write(tmp_path / "raqib.yaml", "sources: []\nworkers: {lease: 30s, heartbeat: 10s}\n")),
                             env={})
    fleet = Fleet(db, "A" * 26, cfg, Metrics())
    fleet.register()
    every = {"s0": MINUTE, "s1": MINUTE}
    assert db.sources.claim_due(fleet.id, LEASE, every, limit=1) == ["s0"]
    clock.advance(seconds=20)
    fleet.beat()                                   # renewed: 30 s from now
    clock.advance(seconds=25)
    assert db.sources.claim_due("B", LEASE, every, limit=2) == ["s1"]
    [me] = db.leases.workers()
    assert me.sources == ["s0"] and me.state(clock(), LEASE) == "running"
    clock.advance(seconds=31)
    assert db.leases.workers()[0].state(clock(), LEASE) == "gone"
    clock.advance(seconds=15)   # the claim's interval and lease are over
    assert db.sources.claim_due("B", LEASE, every, limit=2) == ["s0"]
    fleet.stop()
    assert db.leases.workers()[0].state(clock(), LEASE) == "stopped"
    with db.units.read("t") as conn:
        assert conn.scalar(select(schema.Source.lease_holder).where(
            schema.Source.name == "s0")) == "B"   # a stop gives back only its own
    db.close()


def test_a_worker_that_runs_other_rules_is_named() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    now = datetime(2026, 12, 2, tzinfo=UTC)

    def w(wid: str, rules: str, schema_version: str = "0006") -> WorkerInfo:
        return WorkerInfo(wid, "h", 1, "0.1.0", now, now, None, schema_version, rules, "c")

    fleet = [w("a", "r1"), w("b", "r1"), w("c", "r2", "0005")]
    assert differences(fleet[0], fleet, database_schema="0006") == []
    assert differences(fleet[2], fleet, database_schema="0006") == ["rules", "schema"]
    assert differences(fleet[0], fleet[:1], database_schema="0007") == ["schema"]
    # Two that disagree: neither is the fleet's, both are named.
    assert differences(fleet[0], [fleet[0], fleet[2]], database_schema=None) == [
        "rules", "schema"]
