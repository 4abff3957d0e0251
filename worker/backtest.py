"""Backtest: replay rule files over stored articles and report what would have alerted.

Nothing is written and nothing is sent. The rule files may use the entities of the configured
rule files (and define or redefine their own); only their own rules run. Like live matching,
a rule alerts once per story.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
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
                            "matches": [e.as_dict() for e in h.explanations]}
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
    ruleset = load_replayed(main, paths)
    tags = {s.name: tuple(s.tags) for s in main.sources}
    tags |= {config.seed_source_name(f): ("seed",) for f in main.seeds}
    results = {cr.rule.id: RuleResult(cr.rule.id, cr.rule.display_title, cr.rule.severity)
               for cr in ruleset.rules}
    seen: set[tuple[str, int]] = set()
    total = store.count_articles(since) if progress else 0
    for n, (article_id, story_id, article) in enumerate(store.iter_articles(since), 1):
        article.tags = tags.get(article.source, ())
        for m in ruleset.match(article):
            key = (m.rule_id, story_id if story_id is not None else -article_id)
            if key in seen:
                continue
            seen.add(key)
            results[m.rule_id].hits.append(Hit(article_id, story_id, article.source,
                                               article.title, article.url, article.published,
                                               m.explanations))
        if progress and (n % 500 == 0 or n == total):
            _bar(n, total)
    if progress:
        print(file=sys.stderr)
    return list(results.values())
