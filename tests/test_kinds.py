"""Beyond keywords: spikes, first sightings and quiet sources over generated article streams,
with an injected clock, on SQLite and PostgreSQL; restarts in the middle; backtest agreeing
with live alerting. The pure decisions are table-tested first."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker import config
from worker.alerts import policy
from worker.alerts.policy import Reason, Target
from worker.backtest import backtest
from worker.db import Database
from worker.domain import Article, FirstSeenSpec, HitRecord, SpikeSpec, merge_spans
from worker.errors import ConfigError
from worker.pipeline import Pipeline

from conftest import Clock, write

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)

# -- the pure decisions ------------------------------------------------------------------------

SPIKE = SpikeSpec(within=H, baseline=timedelta(days=1), factor=3.0, min_count=3)
CURRENT = Target(10, 100, "now", None)


@pytest.mark.parametrize(("baseline_stories", "mean", "threshold"), [
    (0, 1 / 24, 3.0),       # an empty baseline counts as one story per baseline
    (1, 1 / 24, 3.0),
    (24, 1.0, 3.0),         # min_count wins over factor x mean
    (96, 4.0, 12.0),        # factor x mean wins
])
def test_spike_threshold(baseline_stories: int, mean: float, threshold: float) -> None:
    level = policy.spike_level(SPIKE, 5, baseline_stories)
    assert level.mean == pytest.approx(mean)
    assert level.threshold == pytest.approx(threshold)


def _lvl(count: int, baseline: int = 24) -> policy.SpikeLevel:
    return policy.spike_level(SPIKE, count, baseline)


HIT = [HitRecord("r", 9, 99, 1, T0, "older", None)]


@pytest.mark.parametrize(("now", "spiking", "alerted", "reason", "after"), [
    (_lvl(2), False, set(), Reason.SPIKE_BELOW, False),
    (_lvl(3), False, set(), Reason.SPIKE_FIRED, True),
    (_lvl(4), True, set(), Reason.SPIKE_ONGOING, True),           # once per spike
    (_lvl(2), True, set(), Reason.SPIKE_BELOW, False),            # fallen back: over
    (_lvl(12, 96), False, set(), Reason.SPIKE_FIRED, True),
    (_lvl(11, 96), False, set(), Reason.SPIKE_BELOW, False),      # a high but usual rate
    (_lvl(3), False, {100, 99}, Reason.SPIKE_SPENT, True),
])
def test_spike_decisions(now: policy.SpikeLevel, spiking: bool, alerted: set[int],
                         reason: Reason, after: bool) -> None:
    decision, still = policy.spike(SPIKE, now, spiking=spiking, hits=HIT, alerted=alerted,
                                   current=CURRENT)
    assert (decision.reason, still) == (reason, after)
    if decision.fire:
        assert decision.detail is not None
        assert decision.detail["count"] == now.count
        assert decision.detail["spike"]["threshold"] == now.threshold


def test_a_spike_on_an_alerted_story_goes_to_another_story_of_the_window() -> None:
    decision, _ = policy.spike(SPIKE, _lvl(3), spiking=False, hits=HIT, alerted={100},
                               current=CURRENT)
    assert decision.target is not None and decision.target.story_id == 99


FIRST = FirstSeenSpec("entity", timedelta(days=30))


@pytest.mark.parametrize(("keys", "seen", "alerted", "reason", "new"), [
    (("erbil",), {}, False, Reason.FIRST_SEEN, ["erbil"]),
    (("erbil",), {"erbil": T0 - timedelta(days=29)}, False, Reason.SEEN_BEFORE, None),
    (("erbil",), {"erbil": T0 - timedelta(days=30)}, False, Reason.FIRST_SEEN, ["erbil"]),
    (("erbil", "harir"), {"erbil": T0 - H}, False, Reason.FIRST_SEEN, ["harir"]),
    (("erbil",), {}, True, Reason.ALREADY_ALERTED, None),
    ((), {}, False, Reason.NOTHING_TO_SEE, None),
])
def test_first_seen_decisions(keys: tuple[str, ...], seen: dict[str, datetime], alerted: bool,
                              reason: Reason, new: list[str] | None) -> None:
    decision = policy.first_seen(FIRST, keys, seen, at=T0, story_alerted=alerted,
                                 current=CURRENT, labels={"erbil": "Erbil"})
    assert decision.reason == reason
    if new is not None:
        assert decision.detail is not None
        assert [n["key"] for n in decision.detail["first_seen"]["new"]] == new
        assert decision.detail["first_seen"]["new"][0]["label"] in ("Erbil", "harir")


@pytest.mark.parametrize(("spans", "since", "expected"), [
    ([(T0, T0 + 10 * H)], T0 + H, T0 + 7 * H),
    ([(T0, T0 + 5 * H)], T0 + H, None),                                   # not running long enough
    ([(T0, T0 + 3 * H), (T0 + 12 * H, T0 + 20 * H)], T0 + H, T0 + 16 * H),  # a night off
    ([(T0, T0 + 4 * H), (T0 + 2 * H, T0 + 9 * H)], T0 + H, T0 + 7 * H),   # two workers overlap
])
def test_quiet_counts_running_time_only(spans: list[tuple[datetime, datetime]], since: datetime,
                                        expected: datetime | None) -> None:
    assert policy.quiet_at(merge_spans(spans), since, 6 * H) == expected


def test_quiet_events_once_per_spell_and_resolved() -> None:
    spans = [(T0, T0 + 40 * H)]
    events, last, open_spell = policy.quiet(6 * H, spans, T0, open_spell=False,
                                            news=[T0 + H, T0 + 10 * H, T0 + 12 * H], now=T0 + 30 * H)
    assert [(e.at, e.resolved) for e in events] == [
        (T0 + 7 * H, False), (T0 + 10 * H, True), (T0 + 18 * H, False)]
    assert (last, open_spell) == (T0 + 12 * H, True)
    # the same watch checked again later: the open spell does not fire twice
    again, _, still = policy.quiet(6 * H, spans, last, open_spell=True, news=[], now=T0 + 35 * H)
    assert (again, still) == ([], True)


# -- streams through the pipeline ----------------------------------------------------------------

RULES = """\
entities:
  ain-al-asad: {label: Ain al-Asad Air Base, names: ["Ain al-Asad", "عين الأسد"]}
  erbil: {label: Erbil, names: [Erbil, أربيل]}
  harir: {label: Harir Air Base, names: [Harir]}
rules:
  - id: asad-spike
    title: Ain al-Asad coverage spiking
    match: "@ain-al-asad"
    spike: {within: 1h, baseline: 1d, factor: 3, min_count: 3}
  - id: flat-spike
    match: "@erbil"
    spike: {within: 1h, baseline: 1d, factor: 3, min_count: 3}
  - id: base-first
    title: A base named for the first time in a month
    match: {any: ["@ain-al-asad", "@erbil", "@harir"]}
    first_seen: {by: entity, within: 30d}
  - id: term-first
    match: {any: ["withdraw*", "handover"]}
    first_seen: {by: term, within: 7d}
  - id: quiet-arabic
    title: An Arabic source has gone quiet
    quiet: {sources: ["tag:arabic"], within: 6h}
  - id: quiet-any
    quiet: {within: 3h}
    throttle: 12h
"""
SOURCES = [("s-ar", ["arabic"]), ("s-ar2", ["arabic"]), ("s-en", []), ("s-wire", [])]


def words(rng: random.Random, n: int) -> str:
    return " ".join(f"w{rng.randrange(20_000)}" for _ in range(n))


@dataclass
class Desk:
    """One raqib over a database, driven by hand: articles ingested at the clock's time."""

    tmp: Path
    url: str
    clock: Clock
    pipe: Pipeline | None = None

    def start(self) -> Desk:
        path = self.tmp / "raqib.yaml"
        if not path.exists():
            write(self.tmp / "rules.yaml", RULES)
            write(path, yaml.safe_dump({
                "database": self.url, "rules": [str(self.tmp / "rules.yaml")],
                "sources": [{"name": n, "url": f"https://feeds.example/{n}", "tags": t}
                            for n, t in SOURCES],
                "channels": {"log": {"type": "file", "path": str(self.tmp / "alerts.jsonl")}},
                "defaults": {"notify": ["log"]},
                # the streams check quiet rules every 30 minutes of their clock: heartbeats
                # further apart than the lease would be gaps in raqib's running time
                "workers": {"lease": "1h", "heartbeat": "10m"}}))
        cfg = config.load_config(str(path), env={})
        db = Database(self.url)
        db.migrate()
        self.pipe = Pipeline(cfg, db, clock=self.clock)
        self.pipe.sync_sources()
        OPEN.append(self)
        return self

    @property
    def p(self) -> Pipeline:
        assert self.pipe is not None
        return self.pipe

    def stop(self) -> None:
        self.p.fleet.stop()
        self.p.close()
        self.pipe = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def article(self, source: str, text: str, n: int) -> None:
        rng = random.Random(n)
        self.p.ingest(source, [Article(source=source, title=f"Report {n}: {words(rng, 4)}",
                                       body=f"{words(rng, 40)} {text} {words(rng, 40)}",
                                       url=f"https://news.example/{source}/{n}", guid=str(n),
                                       tags=tuple(dict(SOURCES)[source]))])

    def alerts(self, rule: str) -> list[dict[str, Any]]:
        found = [a for a in self.p.db.listings.alert_payloads() if a["rule"]["id"] == rule]
        return sorted(found, key=lambda a: (a["created_at"], a["id"]))


OPEN: list[Desk] = []


@pytest.fixture(autouse=True)
def _close_desks() -> Iterator[None]:
    yield
    while OPEN:
        desk = OPEN.pop()
        if desk.pipe is not None:
            desk.stop()


def key(a: dict[str, Any]) -> tuple[Any, ...]:
    """What must agree between two runs of one stream (ids differ)."""
    if a["kind"] == "quiet":
        return (a["kind"], a["created_at"], a["source"]["name"], a["resolved"])
    return (a["kind"], a["created_at"], a["article"]["url"], a.get("count"),
            tuple(n["key"] for n in (a.get("first_seen") or {}).get("new", ())))


# A stream: (hours after T0, source, text). Ain al-Asad: one story every 2 hours, then a burst
# of 5 in 40 minutes (one spike), back to the slow rate, then another burst (the second spike).
# Erbil: 4 stories an hour, every hour (a flat high rate). First sightings of bases and terms.
def spike_stream() -> list[tuple[float, str, str]]:
    ev: list[tuple[float, str, str]] = []
    ev += [(h, "s-wire", "at Ain al-Asad today") for h in range(0, 30, 2)]
    ev += [(30 + m / 60, "s-wire", "rockets at Ain al-Asad") for m in (0, 10, 20, 30, 40)]
    ev += [(h, "s-wire", "عين الأسد") for h in range(32, 40, 2)]
    ev += [(40 + m / 60, "s-en", "Ain al-Asad again") for m in (0, 15, 30)]
    ev += [(h + q / 4, "s-en", "in Erbil") for h in range(0, 48) for q in range(4)]
    return sorted(ev)


def first_stream() -> list[tuple[float, str, str]]:
    d = 24.0
    return [(0.5, "s-wire", "Harir base handover"), (1.5, "s-wire", "Harir again"),
            (5 * d, "s-wire", "Harir and Ain al-Asad withdrawal talks"),
            (9 * d, "s-wire", "handover at Harir"),
            (40 * d, "s-wire", "Harir handover resumes"), (41 * d, "s-wire", "Harir news")]


def run(desk: Desk, stream: list[tuple[float, str, str]], restart_at: float | None = None,
        quiet_every: float | None = None) -> None:
    done_restart = False
    for n, (hours, source, text) in enumerate(stream):
        at = T0 + timedelta(hours=hours)
        if restart_at is not None and not done_restart and hours >= restart_at:
            desk.clock.now = T0 + timedelta(hours=restart_at)
            desk.restart()
            done_restart = True
        desk.clock.now = at
        desk.article(source, text, n)


def spike_desk(tmp: Path, url: str, restart_at: float | None = None) -> Desk:
    desk = Desk(tmp, url, Clock(T0)).start()
    run(desk, spike_stream(), restart_at)
    return desk


def test_a_spike_fires_once_per_spike_and_a_flat_rate_never(tmp_path: Path, db_url: str) -> None:
    desk = spike_desk(tmp_path, db_url)
    spikes = desk.alerts("asad-spike")
    # the first burst (hour 30) and the second (hour 40), nothing for the slow rate between
    assert [a["created_at"] for a in spikes] == ["2026-12-02T06:20:00Z",
                                                 "2026-12-02T16:30:00Z"]
    first = spikes[0]
    assert first["kind"] == "spike" and first["count"] == 3
    assert first["baseline"] == 0.5   # 12 stories in the day before the last hour
    assert first["spike"]["threshold"] == 3.0
    assert first["silenced_by"] is None
    # Erbil's 4 an hour: with no history the first stories fill the empty baseline's spike
    # (rules.md: an empty baseline counts as one story); once the baseline has the rate,
    # a day and more of the same rate never fires
    flat = desk.alerts("flat-spike")
    assert [a["created_at"] for a in flat] == ["2026-12-01T00:30:00Z"]
    assert not (tmp_path / "alerts.jsonl").exists()   # delivery is a step of its own
    desk.p.deliver(until_done=True)
    delivered = [yaml.safe_load(line) for line in
                 (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert {d["kind"] for d in delivered if d["rule"]["id"] == "asad-spike"} == {"spike"}


def test_first_sightings_once_per_entity_and_term_per_window(tmp_path: Path,
                                                             db_url: str) -> None:
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    run(desk, first_stream())
    bases = [(a["created_at"], [n["label"] for n in a["first_seen"]["new"]])
             for a in desk.alerts("base-first")]
    assert bases == [("2026-12-01T00:30:00Z", ["Harir Air Base"]),
                     ("2026-12-06T00:00:00Z", ["Ain al-Asad Air Base"]),   # Harir seen: not new
                     ("2027-01-10T00:00:00Z", ["Harir Air Base"])]         # 31 days after
    terms = [(a["created_at"], [n["key"] for n in a["first_seen"]["new"]])
             for a in desk.alerts("term-first")]
    assert terms == [("2026-12-01T00:30:00Z", ["handover"]),
                     ("2026-12-06T00:00:00Z", ["withdraw*"]),
                     ("2026-12-10T00:00:00Z", ["handover"]),   # 9 days after: new again (7d)
                     ("2027-01-10T00:00:00Z", ["handover"])]


@pytest.mark.parametrize("stream", ["spike", "first"])
def test_a_restart_in_the_middle_changes_nothing(tmp_path: Path, db_url: str,
                                                 stream: str) -> None:
    events = spike_stream() if stream == "spike" else first_stream()
    straight = Desk(tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", Clock(T0)).start()
    run(straight, events)
    restarted = Desk(tmp_path / "b", db_url, Clock(T0)).start()
    run(restarted, events, restart_at=events[len(events) // 2][0])
    for rule in ("asad-spike", "flat-spike", "base-first", "term-first"):
        assert [key(a) for a in restarted.alerts(rule)] == [key(a) for a in
                                                            straight.alerts(rule)], rule


def quiet_run(desk: Desk, *, night: bool = True, restart_at: float | None = None) -> None:
    """s-ar: news at hour 1 and 10, then nothing; s-ar2 and s-en: news every hour. raqib checks
    every 30 minutes; it is stopped from hour 11 to hour 23 (a night) when *night*."""
    n = 0
    minutes = 0
    while minutes <= 40 * 60:
        hours = minutes / 60
        desk.clock.now = T0 + timedelta(minutes=minutes)
        off = night and 11 <= hours < 23
        if restart_at is not None and hours == restart_at:
            desk.restart()
        if night and hours == 11:
            desk.stop()
        if night and hours == 23:
            desk.start()
        if not off:
            if minutes % 60 == 0 and hours in (1, 10):
                desk.article("s-ar", "خبر عاجل", n := n + 1)
            if minutes % 60 == 0 and hours >= 1:
                desk.article("s-ar2", "أخبار", n := n + 1)
                desk.article("s-en", "news", n := n + 1)
            desk.p.check_quiet()
        minutes += 30


def test_a_quiet_source_fires_once_per_spell_and_resolves(tmp_path: Path, db_url: str) -> None:
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    quiet_run(desk)
    got = [(a["created_at"], a["source"]["name"], a["resolved"]) for a in
           desk.alerts("quiet-arabic")]
    # quiet 6 h after its news at hour 1; news again at hour 10; stopped for the night (11 to
    # 23), which does not count: quiet again 6 running hours after hour 10, at hour 28
    assert got == [("2026-12-01T07:00:00Z", "s-ar", False),
                   ("2026-12-01T10:00:00Z", "s-ar", True),
                   ("2026-12-02T04:00:00Z", "s-ar", False)]
    quiet, resolved = desk.alerts("quiet-arabic")[:2]
    assert "article" not in quiet and "story" not in quiet
    assert quiet["quiet"]["since"] == "2026-12-01T01:00:00Z"
    assert quiet["quiet"]["within_seconds"] == 6 * 3600
    assert quiet["source"]["tags"] == ["arabic"]
    assert resolved["resolves"] == quiet["id"]
    assert resolved["quiet"]["article"]["url"].startswith("https://news.example/s-ar/")
    desk.p.deliver(until_done=True)
    lines = [yaml.safe_load(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [(x["kind"], x["resolved"]) for x in lines if x["rule"]["id"] == "quiet-arabic"] == [
        ("quiet", False), ("quiet", True), ("quiet", False)]
    # retention still prunes: a quiet alert points to no article (and holds none back)
    assert desk.p.db.prune(desk.clock.now) > 0


def test_quiet_restart_in_the_middle_changes_nothing(tmp_path: Path, db_url: str) -> None:
    straight = Desk(tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", Clock(T0)).start()
    quiet_run(straight, night=False)
    restarted = Desk(tmp_path / "b", db_url, Clock(T0)).start()
    quiet_run(restarted, night=False, restart_at=5.0)
    assert [key(a) for a in restarted.alerts("quiet-arabic")] == \
        [key(a) for a in straight.alerts("quiet-arabic")]
    assert len(straight.alerts("quiet-arabic")) == 3   # quiet at 7, resolved at 10, quiet at 16


def test_a_throttled_quiet_rule_holds_sources_and_folds_them_into_one_alert(
        tmp_path: Path, db_url: str) -> None:
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    quiet_run(desk, night=False)
    got = [(a["created_at"], a["source"]["name"], a.get("held")) for a in desk.alerts("quiet-any")]
    # s-wire never has news: quiet 3 h after the start. s-ar is quiet at hour 4 (held: the
    # throttle allows one alert in 12 h), has news at 10 (that held spell ends unsent), is
    # quiet again at 13 (held) and still quiet when the throttle opens at 15: one alert.
    assert got == [("2026-12-01T03:00:00Z", "s-wire", None),
                   ("2026-12-01T15:00:00Z", "s-ar", {"count": 1, "titles": ["s-ar"]})]
    assert replayed(desk, tmp_path)["quiet-any"] == [key(a) for a in desk.alerts("quiet-any")]


def replayed(desk: Desk, tmp: Path,
             since: datetime | None = None) -> dict[str, list[tuple[Any, ...]]]:
    results = backtest(desk.p.cfg.main, desk.p.db, [str(tmp / "rules.yaml")], clock=desk.clock,
                       since=since)
    out = {}
    for r in results:
        rows = []
        for h in r.hits:
            d = r.as_dict()["alerts"][len(rows)]
            if h.kind == "quiet":
                rows.append((h.kind, d["created_at"], h.source, d["resolved"]))
            else:
                rows.append((h.kind, d["created_at"], h.url, d.get("count"),
                             tuple(n["key"] for n in (d.get("first_seen") or {}).get("new", ()))))
        out[r.rule_id] = rows
    return out


def test_backtest_gives_the_same_alerts_as_live(tmp_path: Path, db_url: str) -> None:
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    run(desk, spike_stream() + [(h + 48, s, t) for h, s, t in first_stream()])
    quiet_run_from = desk.clock.now
    assert quiet_run_from > T0
    got = replayed(desk, tmp_path)
    for rule in ("asad-spike", "flat-spike", "base-first", "term-first"):
        live = [key(a) for a in desk.alerts(rule)]
        assert live, rule
        assert got[rule] == live, rule
    # from --since, the replay remembers what came before (the spike's baseline, sightings)
    since = T0 + timedelta(hours=29)
    got = replayed(desk, tmp_path, since=since)
    for rule in ("asad-spike", "flat-spike", "base-first", "term-first"):
        live = [key(a) for a in desk.alerts(rule)
                if datetime.fromisoformat(a["created_at"]) >= since]
        assert got[rule] == live, rule


def test_backtest_replays_quiet_spells(tmp_path: Path, db_url: str) -> None:
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    quiet_run(desk)
    got = replayed(desk, tmp_path)
    assert got["quiet-arabic"] == [key(a) for a in desk.alerts("quiet-arabic")]
    assert len(got["quiet-arabic"]) == 3


@pytest.mark.parametrize(("rule", "message"), [
    ("{id: x, match: a, spike: {within: 1h}, when: {count: 2, within: 1h}}",
     "cannot go together"),
    ("{id: x, quiet: {within: 1h}, match: a}", "a quiet rule watches sources"),
    ("{id: x, spike: {within: 1h}}", "needs match"),
    ("{id: x, match: a, spike: {within: 2d, baseline: 1d}}", "baseline must be at least"),
    ("{id: x, match: a, first_seen: {by: entity, within: 30d}}", "needs an @entity"),
    ("{id: x, match: a, first_seen: {by: place, within: 30d}}", "first_seen.by"),
    ("{id: x, match: a, spike: {within: 1h, factor: 0.5}}", "factor"),
    ("{id: x, match: a, spike: {within: 99999999999d}}", "too long"),
])
def test_bad_rules_of_the_new_kinds_name_file_and_line(tmp_path: Path, rule: str,
                                                       message: str) -> None:
    write(tmp_path / "rules.yaml", f"rules:\n  - id: ok\n    match: fine\n  - {rule}\n")
    write(tmp_path / "raqib.yaml", yaml.safe_dump({"rules": [str(tmp_path / "rules.yaml")]}))
    with pytest.raises(ConfigError) as err:
        config.load_config(str(tmp_path / "raqib.yaml"), env={})
    text = "\n".join(str(p) for p in err.value.problems)
    assert f"{tmp_path / 'rules.yaml'}:4" in text
    assert message in text


def test_a_quiet_rule_watching_a_tag_no_source_has_is_warned_about(tmp_path: Path) -> None:
    write(tmp_path / "rules.yaml", "rules:\n  - id: q\n    quiet: {sources: [tag:arabc, "
                                   "rudaw], within: 1h}\n")
    write(tmp_path / "raqib.yaml", yaml.safe_dump({
        "rules": [str(tmp_path / "rules.yaml")],
        "sources": [{"name": "rudaw-ar", "url": "https://feeds.example/r", "tags": ["arabic"]}]}))
    cfg = config.load_config(str(tmp_path / "raqib.yaml"), env={})
    warnings = [str(w) for w in cfg.warnings]
    assert any("no configured source has the tag 'arabc' (did you mean 'arabic'?)" in w
               for w in warnings), warnings
    assert any("no configured source is named 'rudaw' (did you mean 'rudaw-ar'?)" in w
               for w in warnings), warnings


def test_a_suspended_worker_is_not_running(tmp_path: Path, db_url: str) -> None:
    """A worker whose heartbeats stop for longer than a lease (its machine suspended, its
    process stopped) was not running then: that time makes no source quiet."""
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    n = 0
    for minutes in [*range(0, 3 * 60 + 1, 30), *range(8 * 60, 14 * 60 + 1, 30)]:
        desk.clock.now = T0 + timedelta(minutes=minutes)   # nothing runs from 3:00 to 8:00
        if minutes == 60:
            desk.article("s-ar", "خبر", n := n + 1)
        if minutes % 60 == 0:
            desk.article("s-ar2", "أخبار", n := n + 1)
        desk.p.check_quiet()
    got = [(a["created_at"], a["source"]["name"]) for a in desk.alerts("quiet-arabic")]
    # 6 running hours after s-ar's news at 1:00: 2 before the gap, 4 after it
    assert got == [("2026-12-01T12:00:00Z", "s-ar")]


def test_a_base_first_named_in_an_update_of_an_alerted_story_is_new_next_time(
        tmp_path: Path, db_url: str) -> None:
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    first = Article(source="s-wire", title="Rockets near Erbil", body="Rockets fell near Erbil.",
                    url="https://news.example/r", guid="r1")
    desk.p.ingest("s-wire", [first])
    desk.clock.advance(hours=1)
    desk.p.ingest("s-wire", [Article(source="s-wire", title="Rockets near Erbil",
                                     body="Rockets fell near Erbil and the Harir base.",
                                     url="https://news.example/r", guid="r1")])
    desk.clock.advance(days=2)
    desk.article("s-en", "a convoy left Harir", 7)
    got = [[n["key"] for n in a["first_seen"]["new"]] for a in desk.alerts("base-first")]
    assert got == [["erbil"], ["harir"]]   # the update's story had alerted: Harir waits


def test_a_quiet_rule_back_after_a_while_does_not_page_for_spells_that_came_and_went(
        tmp_path: Path, db_url: str) -> None:
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    rules = tmp_path / "rules.yaml"
    with_quiet = rules.read_text()
    n = 0
    for hours in range(0, 40):
        desk.clock.now = T0 + timedelta(hours=hours)
        if hours in (1, 20, 25, 30, 35):              # s-ar: quiet from 1 to 20 only
            desk.article("s-ar", "خبر", n := n + 1)
        desk.article("s-ar2", "أخبار", n := n + 1)
        if hours == 2:                                # the quiet rule goes away …
            rules.write_text(with_quiet.replace("quiet-arabic", "quiet-arabic-away"))
            desk.p.apply(config.load_config(str(tmp_path / "raqib.yaml"), env={}))
        if hours == 25:                               # … and comes back
            rules.write_text(with_quiet)
            desk.p.apply(config.load_config(str(tmp_path / "raqib.yaml"), env={}))
        desk.p.check_quiet()
    # s-ar was quiet from 7:00 to 20:00 while the rule was away: nothing about that spell
    assert [a["source"]["name"] for a in desk.alerts("quiet-arabic")] == []
