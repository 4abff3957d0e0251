"""Backtest: replay rule files over stored articles and report what would have alerted.

Nothing is written and nothing is sent. The rule files may use the entities of the configured
rule files (and define or redefine their own); only their own rules run. Like live matching,
a rule alerts once per story.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from worker import config
from worker.alerts.payload import iso
from worker.errors import ConfigError
from worker.items import Explanation
from worker.rules import compile_rules
from worker.store import Store


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


def backtest(main: config.MainConfig, store: Store, paths: list[str], *,
             since: datetime | None = None, progress: bool = False) -> list[RuleResult]:
    """What the rules of *paths* would have alerted on, replayed in the articles' own time:
    once per story; a `when:` rule when its window fills; a throttled rule at most once per
    throttle window, with what it held back counted in the next alert."""
    ruleset = load_replayed(main, paths)
    tags = main.source_tags()
    rules = {cr.rule.id: cr.rule for cr in ruleset.rules}
    matched: dict[str, list[tuple[datetime, Hit]]] = {rid: [] for rid in rules}
    seen: set[tuple[str, int]] = set()
    total = store.count_articles(since) if progress else 0
    for n, (article_id, story_id, article, stored) in enumerate(store.iter_articles(since), 1):
        article.tags = tags.get(article.source, ())
        at = stored   # windows count what raqib stored when, as the daemon does
        for m in ruleset.match(article):
            rule = rules[m.rule_id]
            key = (m.rule_id, story_id if story_id is not None else -article_id)
            if key in seen and not (rule.when and rule.when.distinct_sources):
                continue
            seen.add(key)
            matched[m.rule_id].append((at, Hit(article_id, story_id, article.source,
                                               article.title, article.url, article.published,
                                               m.explanations)))
        if progress and (n % 500 == 0 or n == total):
            _bar(n, total)
    if progress:
        print(file=sys.stderr)
    results = []
    for rid, rule in rules.items():
        hits = sorted(matched[rid], key=lambda item: item[0])
        hits = _windows(hits, rule.when) if rule.when is not None else _once_per_story(hits)
        if rule.throttle is not None:
            hits = _throttled(hits, rule.throttle)
        results.append(RuleResult(rid, rule.display_title, rule.severity,
                                  [hit for _, hit in hits]))
    return results


def _once_per_story(hits: list[tuple[datetime, Hit]]) -> list[tuple[datetime, Hit]]:
    seen: set[int] = set()
    out = []
    for at, hit in hits:
        key = hit.story_id if hit.story_id is not None else -hit.article_id
        if key not in seen:
            seen.add(key)
            out.append((at, hit))
    return out


def _windows(hits: list[tuple[datetime, Hit]], when: config.When) -> list[tuple[datetime, Hit]]:
    """The hits at which a window of `when.within` holds `when.count` stories (or sources)
    not counted by an earlier firing."""
    out = []
    last_fired: datetime | None = None
    for i, (at, hit) in enumerate(hits):
        start = at - when.within
        if last_fired is not None and last_fired > start:
            start = last_fired
        inside = [h for t, h in hits[:i + 1] if start < t <= at]
        distinct = {h.source if when.distinct_sources else h.story_id for h in inside}
        if len(distinct) >= when.count:
            out.append((at, replace(hit, window=len(distinct))))
            last_fired = at
    return out


def _throttled(hits: list[tuple[datetime, Hit]], window: timedelta) -> list[tuple[datetime, Hit]]:
    """At most one alert per window; the next one counts what was held back, and what is still
    held at the end is flushed on its last story, as the daemon does once the window passes."""
    out: list[tuple[datetime, Hit]] = []
    held = 0
    last_held: Hit | None = None
    for at, hit in hits:
        if out and held and at - out[-1][0] >= window and last_held is not None:
            # the daemon flushed what was held as soon as the window was over
            out.append((out[-1][0] + window, replace(last_held, held=held)))
            held, last_held = 0, None
        if out and at - out[-1][0] < window:
            held += 1
            last_held = hit
            continue
        out.append((at, replace(hit, held=held)))
        held = 0
    if held and last_held is not None:
        out.append((out[-1][0] + window, replace(last_held, held=held)))
    return out
