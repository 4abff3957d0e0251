"""The alert policy: pure decisions with their reasons (table tests), and one fixture driven
through live ingest and through backtest with the same results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from worker import config
from worker.alerts import policy
from worker.alerts.ledger import MemoryLedger
from worker.alerts.policy import Reason, Target
from worker.alerts.raising import flush_held, raise_alerts
from worker.backtest import backtest
from worker.db import Database
from worker.dedupe import prepare
from worker.domain import AlertSpec, Article, Candidate, HeldRecord, HitRecord
from worker.pipeline import Pipeline

from conftest import Clock, write

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
CUR = Target(9, 90, "current", None)


def hit(story: int, source: int, minutes: int = 0) -> HitRecord:
    return HitRecord("w", story * 10, story, source, T0 + timedelta(minutes=minutes),
                     f"story {story}")


@pytest.mark.parametrize(("alerted", "reason"), [
    (False, Reason.FIRE), (True, Reason.ALREADY_ALERTED)])
def test_plain(alerted: bool, reason: Reason) -> None:
    d = policy.plain(alerted, CUR)
    assert d.reason is reason and d.fire is (reason is Reason.FIRE)


@pytest.mark.parametrize(("count", "distinct", "hits", "alerted", "reason", "target_story"), [
    (2, False, [hit(90, 1)], set(), Reason.WINDOW_NOT_FULL, None),
    (2, False, [hit(90, 1), hit(1, 1)], set(), Reason.WINDOW_FILLED, 90),
    (2, True, [hit(90, 1), hit(1, 1)], set(), Reason.WINDOW_NOT_FULL, None),   # one source
    (2, True, [hit(90, 1), hit(1, 2)], set(), Reason.WINDOW_FILLED, 90),
    # the current story has alerted: the newest story of the window that has not
    (2, False, [hit(90, 1), hit(2, 1, -1), hit(1, 1, -2)], {90}, Reason.WINDOW_FILLED, 2),
    # four sources of one story: full, but its story has alerted
    (2, True, [hit(90, 3), hit(90, 4)], {90}, Reason.WINDOW_SPENT, None),
])
def test_window(count: int, distinct: bool, hits: list[HitRecord], alerted: set[int],
                reason: Reason, target_story: int | None) -> None:
    d = policy.window((count, 6 * H, distinct), hits, alerted, CUR)
    assert d.reason is reason
    assert (d.target.story_id if d.target else None) == target_story
    if d.fire:
        assert d.detail is not None and d.detail["window"]["count"] >= count


@pytest.mark.parametrize(("last", "now", "reason"), [
    (None, T0, Reason.THROTTLE_OPEN),
    (T0, T0 + timedelta(minutes=59), Reason.HELD),
    (T0, T0 + H, Reason.THROTTLE_OPEN),
])
def test_throttle(last: datetime | None, now: datetime, reason: Reason) -> None:
    assert policy.throttle(H, last, now) is reason


def held(story: int) -> HeldRecord:
    return HeldRecord("t", story * 10, story, f"held {story}", None, T0)


@pytest.mark.parametrize(("now", "items", "alerted", "reason", "target_story"), [
    (T0 + timedelta(minutes=30), [held(1)], set(), Reason.FLUSH_NOT_DUE, None),
    (T0 + H, [held(1), held(2)], set(), Reason.FLUSH, 2),
    (T0 + H, [held(1), held(2)], {2}, Reason.FLUSH, 1),
    (T0 + H, [held(1)], {1}, Reason.FLUSH_NOTHING, None),
])
def test_flush(now: datetime, items: list[HeldRecord], alerted: set[int], reason: Reason,
               target_story: int | None) -> None:
    d = policy.flush(H, T0, items, alerted, now)
    assert d.reason is reason
    assert (d.target.story_id if d.target else None) == target_story
    if d.fire:
        assert d.detail == {"held": {"count": len(items), "titles": [i.title for i in items]}}


def test_raise_alerts_throttle_holds_then_folds() -> None:
    spec = AlertSpec("t", "T", "high", ("log",), throttle=H)
    ledger = MemoryLedger()

    def cand(story: int, minutes: int) -> Candidate:
        return Candidate(spec, story * 10, story, 1, f"s{story}", None,
                         T0 + timedelta(minutes=minutes))

    out = raise_alerts([cand(1, 0), cand(2, 10), cand(3, 20), cand(3, 25)], ledger)
    assert [o.decision.reason for o in out] == [Reason.FIRE, Reason.HELD, Reason.HELD,
                                                Reason.HELD]
    [folded] = [o for o in raise_alerts([cand(4, 61)], ledger) if o.alert]
    assert folded.alert is not None and folded.alert.detail == {
        "held": {"count": 2, "titles": ["s2", "s3"]}}
    raise_alerts([cand(5, 70)], ledger)
    assert [o.decision.reason for o in flush_held({"t": spec}, ledger, T0 + timedelta(minutes=121))] == [
        Reason.FLUSH]


# -- live and backtest agree -----------------------------------------------------------------

RULES = """\
entities:
  ain-al-asad: {names: ["Ain al-Asad", "عين الأسد"]}
rules:
  - id: plain
    title: Plain
    match: "@ain-al-asad"
  - id: corroborated
    title: Two outlets
    match: "@ain-al-asad"
    when: {count: 2, within: 6h, distinct_sources: true}
  - id: busy
    title: Three stories in two hours
    match: "@ain-al-asad"
    when: {count: 3, within: 2h}
  - id: throttled
    title: At most hourly
    match: "@ain-al-asad"
    throttle: 1h
"""

TEXTS = [
    "Drones struck Ain al-Asad air base in Anbar overnight, officials said on Tuesday.",
    "Rocket sirens sounded at Ain al-Asad as the coalition prepared its handover of the base.",
    "Iraqi forces took over a hangar at Ain al-Asad in a ceremony attended by commanders.",
    "A convoy left Ain al-Asad for the Syrian border, according to local residents today.",
    "Parliament debated the budget again without a vote, leaving ministries unfunded.",
]


def stream() -> list[tuple[int, str, int, str]]:
    """(minute, source, text index, variant): one story carried by four outlets ten minutes
    apart, then other stories, some within a throttle window, some after."""
    out = [(10 * i, f"outlet{i}", 0, "") for i in range(4)]
    out += [(45, "outlet1", 1, ""), (50, "outlet2", 2, ""), (55, "outlet0", 4, ""),
            (130, "outlet3", 3, ""), (135, "outlet0", 1, " Updated with new details.")]
    return out


def test_live_and_backtest_raise_the_same_alerts(tmp_path: Path, db_url: str) -> None:
    rules = write(tmp_path / "rules.yaml", RULES)
    cfg_path = write(tmp_path / "raqib.yaml", f"database: {db_url}\nrules: [{rules}]\n"
                     "sources:\n" + "".join(f"  - {{name: outlet{i}, url: "
                                            f"'https://o{i}.example/feed'}}\n"
                                            for i in range(4)))
    cfg = config.load_config(str(cfg_path))
    clock = Clock(T0)
    db = Database(db_url)
    db.migrate()
    pipe = Pipeline(cfg, db, clock=clock)
    pipe.sync_sources()
    for minute, source, idx, variant in stream():
        clock.now = T0 + timedelta(minutes=minute)
        pipe.flush_held()
        n = TEXTS.index(TEXTS[idx])
        pipe._store(source, [prepare(Article(source=source, title=f"Report {n}",
                                             body=TEXTS[idx] + variant,
                                             url=f"https://{source}.example/{n}{variant[:3]}",
                                             guid=f"{source}-{n}{variant[:3]}"))])
    clock.now = T0 + timedelta(hours=6)
    pipe.flush_held()
    live = sorted((a["rule"]["id"], a["article"]["id"], a.get("window", {}).get("count"),
                   a.get("held", {}).get("count", 0))
                  for a in db.listings.alert_payloads())
    results = backtest(cfg.main, db, [str(rules)], clock=clock)
    replayed = sorted((r.rule_id, h.article_id, h.window, h.held)
                      for r in results for h in r.hits)
    assert live == replayed
    # one story, four outlets: one alert per (rule, story), however many sources fill windows
    pairs = [(r.rule_id, h.story_id) for r in results for h in r.hits]
    assert len(pairs) == len(set(pairs))
    by_rule = {r.rule_id: list(r.hits) for r in results}
    first_story = by_rule["plain"][0].story_id
    assert [h.story_id for h in by_rule["corroborated"]].count(first_story) == 1
    assert any(h.held for h in by_rule["throttled"])   # the throttle held some back
    pipe.close()
