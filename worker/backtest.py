"""Backtest: replay rule files over stored articles and report what would have alerted.

Nothing is written and nothing is sent. The rule files may use the entities of the configured
rule files (and define or redefine their own); only their own rules run. The decisions are
live alerting's own (``worker.alerts.policy``), over an in-memory ledger.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker import config
from worker.alerts.ledger import MemoryLedger
from worker.alerts.raising import flush_held, next_flush, raise_alerts
from worker.db import Database
from worker.domain import AlertSpec, Article, Candidate, Explanation
from worker.errors import ConfigError
from worker.payload import iso
from worker.rules import compile_rules


@dataclass(frozen=True, slots=True)
class Hit:
    article_id: int
    story_id: int | None
    source: str
    title: str
    url: str | None
    published: datetime | None
    explanations: tuple[Explanation, ...]
    window: int | None = None     # a `when:` rule: what its window counted when it fired
    held: int = 0                 # a throttled rule: alerts held back before this one


@dataclass
class RuleResult:
    rule_id: str
    title: str
    severity: str
    hits: list[Hit] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": {"id": self.rule_id, "title": self.title, "severity": self.severity},
                "alerts": [{"article": {"id": h.article_id, "url": h.url, "title": h.title,
                                        "source": h.source, "published": iso(h.published)},
                            "story": {"id": None if h.story_id is None else str(h.story_id)},
                            "matches": [e.as_dict() for e in h.explanations],
                            **({"window": {"count": h.window}} if h.window else {}),
                            **({"held": {"count": h.held}} if h.held else {})}
                           for h in self.hits]}


def load_replayed(main: config.MainConfig, paths: list[str]) -> Any:
    """The rules of *paths*, compiled with the configured entities available to them."""
    with config.paused_gc():
        base, problems = config.load_rules(list(main.rules))
        replay, found = config.load_rules(paths)
        problems += found
        entities = {**base.entities, **replay.entities}
        ruleset, found = compile_rules(config.LoadedRules(replay.rules, entities, replay.files))
        problems += found
    if problems:
        raise ConfigError(problems)
    return ruleset


def _bar(done: int, total: int, width: int = 30) -> None:
    share = done / total if total else 1.0
    filled = int(share * width)
    print(f"\rbacktest [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} articles "
          f"({share:.0%})", end="", file=sys.stderr, flush=True)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def backtest(main: config.MainConfig, db: Database, paths: list[str], *,
             since: datetime | None = None, progress: bool = False,
             clock: Callable[[], datetime] = _utcnow) -> list[RuleResult]:
    """What the rules of *paths* would have alerted on, replayed in the articles' stored order
    and time through the same policy as live alerting (``worker.alerts.raising`` over an
    in-memory ledger): once per story; a `when:` rule when its window fills; a throttled rule
    at most once per throttle window, with what it held back counted in the next alert or
    flushed once the window passed (as the daemon does, up to *clock*'s now)."""
    ruleset = load_replayed(main, paths)
    tags = main.source_tags()
    rules = {cr.rule.id: cr.rule for cr in ruleset.rules}
    specs = {rid: AlertSpec(rid, r.display_title, r.severity, (),
                            (r.when.count, r.when.within, r.when.distinct_sources)
                            if r.when is not None else None, r.throttle)
             for rid, r in rules.items()}
    ledger = MemoryLedger()
    about: dict[int, tuple[str, datetime | None]] = {}
    explained: dict[tuple[str, int], tuple[Explanation, ...]] = {}
    total = db.listings.count_articles(since) if progress else 0

    def flush_until(when: datetime) -> None:
        while (due := next_flush(specs, ledger)) is not None and due <= when:
            flush_held(specs, ledger, due)

    n = 0
    for n, stored in enumerate(db.iter_articles(since), 1):
        flush_until(stored.fetched_at)
        article = Article(source=stored.source, title=stored.title, summary=stored.summary,
                          body=stored.body, url=stored.url, guid=stored.guid,
                          published=stored.published, language=stored.language,
                          tags=tags.get(stored.source, ()))
        story = stored.story_id if stored.story_id is not None else -stored.id
        candidates = []
        for m in ruleset.match(article):
            candidates.append(Candidate(specs[m.rule_id], stored.id, story, stored.source_id,
                                        stored.title, stored.url, stored.fetched_at,
                                        m.explanations))
            explained[(m.rule_id, stored.id)] = m.explanations
        if candidates:
            about[stored.id] = (stored.source, stored.published)
            raise_alerts(candidates, ledger)
        if progress and (n % 500 == 0 or n == total):
            _bar(n, total)
    if progress:
        print(file=sys.stderr)
    flush_until(clock())
    results = {rid: RuleResult(rid, r.display_title, r.severity) for rid, r in rules.items()}
    for a in ledger.alerts:
        source, published = about.get(a.article_id, ("", None))
        detail = a.detail or {}
        results[a.rule_id].hits.append(Hit(
            a.article_id, a.story_id if a.story_id >= 0 else None, source, a.title, a.url,
            published, a.explanations or explained.get((a.rule_id, a.article_id), ()),
            window=(detail.get("window") or {}).get("count"),
            held=(detail.get("held") or {}).get("count", 0)))
    return list(results.values())
