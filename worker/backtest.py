"""Backtest: replay rule files over stored articles and report what would have alerted.

Nothing is written and nothing is sent. The rule files may use the entities of the configured
rule files (and define or redefine their own); only their own rules run. The decisions are
live alerting's own (``worker.alerts.policy`` driven by ``worker.alerts.raising``), over an
in-memory ledger, in the articles' stored order and time: plain and window rules, spikes,
first sightings, throttles, quiet sources (over the running time the workers' register
recorded) and the silences stored in the database.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from worker import config
from worker.alerts.ledger import MemoryLedger
from worker.alerts.raising import Silencer, check_quiet, flush_held, next_flush, raise_alerts
from worker.db import Database
from worker.db.quiet import SqlQuietFacts, running_spans
from worker.domain import (
    AlertRecord,
    AlertSpec,
    Article,
    Candidate,
    Explanation,
    News,
    QuietState,
)
from worker.errors import ConfigError
from worker.payload import iso
from worker.pipeline import alert_spec, sighting_keys
from worker.rules import RuleSet, compile_rules
from worker.silencing import Silencing, source_matches


@dataclass(frozen=True, slots=True)
class Hit:
    """One alert the replay raised. ``detail``: what the kind adds to the payload (a
    window's or spike's count, what is new, a quiet spell)."""

    article_id: int | None
    story_id: int | None
    source: str
    title: str
    url: str | None
    published: datetime | None
    explanations: tuple[Explanation, ...]
    window: int | None = None     # a `when:` rule: what its window counted when it fired
    held: int = 0                 # a throttled rule: alerts held back before this one
    kind: str = "match"
    at: datetime | None = None    # when it would have been raised
    detail: dict[str, Any] = field(default_factory=dict)
    silenced_by: str | None = None
    id: str = ""                  # the replay's own alert id (a resolved notice names it)


@dataclass
class RuleResult:
    rule_id: str
    title: str
    severity: str
    hits: list[Hit] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def one(h: Hit) -> dict[str, Any]:
            out: dict[str, Any] = {"id": h.id, "kind": h.kind, "created_at": iso(h.at),
                                   "silenced_by": h.silenced_by}
            if h.kind == "quiet":
                out["source"] = {"name": h.source}
            else:
                out["article"] = {"id": h.article_id, "url": h.url, "title": h.title,
                                  "source": h.source, "published": iso(h.published)}
                out["story"] = {"id": None if h.story_id is None else str(h.story_id)}
                out["matches"] = [e.as_dict() for e in h.explanations]
            return out | h.detail
        return {"rule": {"id": self.rule_id, "title": self.title, "severity": self.severity},
                "alerts": [one(h) for h in self.hits]}


def load_replayed(main: config.MainConfig, paths: list[str]) -> tuple[RuleSet, dict[str, Any]]:
    """The rules of *paths*, compiled with the configured entities available to them; and
    those entities."""
    with config.paused_gc():
        base, problems = config.load_rules(list(main.rules))
        replay, found = config.load_rules(paths)
        problems += found
        entities = {**base.entities, **replay.entities}
        ruleset, found = compile_rules(config.LoadedRules(replay.rules, entities, replay.files))
        problems += found
    if problems:
        raise ConfigError(problems)
    return ruleset, entities


def _bar(done: int, total: int, width: int = 30) -> None:
    share = done / total if total else 1.0
    filled = int(share * width)
    print(f"\rbacktest [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} articles "
          f"({share:.0%})", end="", file=sys.stderr, flush=True)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Facts:
    """Quiet facts from the replayed articles."""

    def __init__(self, news: dict[int, list[News]]) -> None:
        self._news = news

    def news(self, source_id: int, after: datetime, until: datetime) -> list[News]:
        return [n for n in self._news.get(source_id, ()) if after < n.at <= until]

    def last_news(self, source_id: int, until: datetime) -> datetime | None:
        return max((n.at for n in self._news.get(source_id, ()) if n.at <= until), default=None)

    def failing(self, source_id: int, since: datetime) -> bool:
        return False   # polls are not recorded one by one


def backtest(main: config.MainConfig, db: Database, paths: list[str], *,
             since: datetime | None = None, progress: bool = False,
             clock: Callable[[], datetime] = _utcnow) -> list[RuleResult]:
    """What the rules of *paths* would have alerted on, replayed in the articles' stored order
    and time through the same policy as live alerting (``worker.alerts.raising`` over an
    in-memory ledger): once per story; a `when:` rule when its window fills; a spike once per
    spike; a first sighting once per entity, term or rule in its window; a quiet source once
    per spell (with its resolved notice); a throttled rule at most once per throttle window,
    with what it held back counted in the next alert or flushed once the window passed (as
    the daemon does, up to *clock*'s now). Alerts a stored silence would have held back carry
    its id."""
    ruleset, entities = load_replayed(main, paths)
    now = clock()
    tags = main.source_tags()
    cfg = config.Config("", main, ruleset, paths, [], entities)
    rules = {r.id: r for r in ruleset.all_rules()}
    specs = {rid: alert_spec(cfg, r, ()) for rid, r in rules.items()}
    ledger = MemoryLedger()
    silencing = Silencing(lambda: entities, lambda: tags)
    stored_silences = db.silences.in_range(since or datetime.min.replace(tzinfo=UTC), now)
    about: dict[int, tuple[str, datetime | None]] = {}
    explained: dict[tuple[str, int], tuple[Explanation, ...]] = {}
    news: dict[int, list[News]] = defaultdict(list)
    names: dict[int, str] = {}
    # From --since, the replay starts earlier by the longest memory of any rule (a window,
    # a spike's baseline, a first sighting's window, a throttle), so what it decides from
    # --since on is what live alerting decided; alerts before --since are not reported.
    start = since - warm_up(specs.values()) if since is not None else None
    total = db.listings.count_articles(start) if progress else 0

    with db.units.read("backtest") as conn:
        silencer = silencing.silencer_for(stored_silences, conn)

        def flush_until(when: datetime) -> None:
            while (due := next_flush(specs, ledger)) is not None and due <= when:
                flush_held(specs, ledger, due, silencer=silencer)

        n = 0
        for n, stored in enumerate(db.iter_articles(start), 1):
            flush_until(stored.fetched_at)
            names[stored.source_id] = stored.source
            news[stored.source_id].append(News(stored.fetched_at, stored.id, stored.title,
                                               stored.url))
            article = Article(source=stored.source, title=stored.title, summary=stored.summary,
                              body=stored.body, url=stored.url, guid=stored.guid,
                              published=stored.published, language=stored.language,
                              tags=tags.get(stored.source, ()))
            story = stored.story_id if stored.story_id is not None else -stored.id
            candidates = []
            for m in ruleset.match(article):
                candidates.append(Candidate(specs[m.rule_id], stored.id, story,
                                            stored.source_id, stored.title, stored.url,
                                            stored.fetched_at, m.explanations,
                                            sighting_keys(m.rule.rule, m.terms)))
                explained[(m.rule_id, stored.id)] = m.explanations
            if candidates:
                about[stored.id] = (stored.source, stored.published)
                one = silencing.silencer_for(stored_silences, conn, {stored.id: article})
                raise_alerts(candidates, ledger, silencer=one)
            if progress and (n % 500 == 0 or n == total):
                _bar(n, total)
        if progress:
            print(file=sys.stderr)
        flush_until(now)
        if ruleset.quiet:
            _replay_quiet(db, ruleset, specs, ledger=ledger, facts=_Facts(news), names=names,
                          tags=tags, since=since, now=now, lease=main.workers.lease,
                          silencer=silencer)
    shown = [a for a in ledger.alerts if since is None or a.created_at >= since]
    return _results(rules, shown, about, explained, names)


def warm_up(specs: Iterable[AlertSpec]) -> timedelta:
    """How far back the rules' decisions look: the longest window, spike baseline, first
    sighting window or throttle."""
    longest = timedelta(0)
    for s in specs:
        spans = [s.when[1] if s.when else None, s.throttle,
                 s.spike.within + s.spike.baseline if s.spike else None,
                 s.first_seen.within if s.first_seen else None]
        longest = max([longest, *(x for x in spans if x is not None)])
    return longest


def _replay_quiet(db: Database, ruleset: RuleSet, specs: dict[str, Any], *,
                  ledger: MemoryLedger, facts: _Facts, names: dict[int, str],
                  tags: dict[str, tuple[str, ...]], since: datetime | None, now: datetime,
                  lease: timedelta, silencer: Silencer | None) -> None:
    with db.units.read("backtest quiet sources") as conn:
        spans = running_spans(conn, now, lease)
        sources = db.listings.source_rows()
        # Replayed from --since, a source's watch begins at its last news before then.
        before = SqlQuietFacts(conn)
        last_news = {sid: before.last_news(sid, since) for sid, *_ in sources} \
            if since is not None else {}
    for r in ruleset.quiet:
        assert r.quiet is not None
        watched: dict[int, tuple[str, datetime]] = {}
        for sid, name, kind, created in sources:
            if name not in tags:
                continue   # no longer configured: not watched (as live)
            chosen = (kind == "feed") if r.quiet.sources is None else any(
                source_matches(sel, name, tags.get(name, ())) for sel in r.quiet.sources)
            if chosen:
                names[sid] = name
                began = created if since is None else \
                    last_news.get(sid) or max(created, since)
                watched[sid] = (name, began)
                ledger.set_quiet_state(QuietState(r.id, sid, began))
        check_quiet(specs[r.id], watched, facts, spans=spans, ledger=ledger, now=now,
                    silencer=silencer)


def _results(rules: dict[str, config.Rule], alerts: list[AlertRecord],
             about: dict[int, tuple[str, datetime | None]],
             explained: dict[tuple[str, int], tuple[Explanation, ...]],
             names: dict[int, str]) -> list[RuleResult]:
    results = {rid: RuleResult(rid, r.display_title, r.severity) for rid, r in rules.items()}
    for a in sorted(alerts, key=lambda a: (a.created_at, a.id)):
        detail = dict(a.detail or {})
        if a.kind == "quiet":
            source = names.get(a.source_id or 0, "")
            results[a.rule_id].hits.append(Hit(
                None, None, source, source, None, None, (), kind="quiet", at=a.created_at,
                detail=detail, silenced_by=a.silenced_by, id=a.id))
            continue
        source, published = about.get(a.article_id or 0, ("", None))
        story = a.story_id if a.story_id is not None and a.story_id >= 0 else None
        results[a.rule_id].hits.append(Hit(
            a.article_id, story, source, a.title, a.url, published,
            a.explanations or explained.get((a.rule_id, a.article_id or 0), ()),
            window=(detail.get("window") or {}).get("count"),
            held=(detail.get("held") or {}).get("count", 0), kind=a.kind, at=a.created_at,
            detail=detail, silenced_by=a.silenced_by, id=a.id))
    return list(results.values())
