"""Silences applied: which silence, if any, holds back an alert about to be written.

A silence (rules.md, Silences) names a rule id, a source (``NAME`` or ``tag:NAME``) and/or a
term the alert's article must hold; every part given must hold, at the time the alert is
raised. The silences come from the database inside the unit of work that raises the alert,
so every worker honours one the moment it is added. Terms are compiled with the configured
entities (``@erbil`` works) and the compiled set is kept while the silences do not change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, select

from worker.alerts.raising import Silencer
from worker.db import silences as stored
from worker.domain import AlertRecord, Article, Silence
from worker.rules import RuleSet
from worker.rules.compile import compile_terms
from worker.schema import Article as ArticleRow
from worker.schema import Source

log = structlog.get_logger("raqib.silences")

# Alerts may be dated a little in the past (a flushed throttle, a quiet spell): silences that
# ended up to this long ago are read too, and each is checked at the alert's own time.
LOOKBACK = timedelta(days=7)


def source_matches(selector: str, name: str, tags: Sequence[str]) -> bool:
    """A silence's or rule's source selector: a source name, or ``tag:NAME``."""
    if selector.startswith("tag:"):
        return selector[4:] in tags
    return selector == name


class Silencing:
    """Builds the silencer of one unit of work. *entities*: the configured entities (for
    terms); *tags*: each source's tags by name."""

    def __init__(self, entities: Callable[[], dict[str, object]],
                 tags: Callable[[], Mapping[str, Sequence[str]]]) -> None:
        self.entities = entities
        self.tags = tags
        self._lock = threading.Lock()
        self._terms: tuple[tuple[tuple[str, str], ...], int, RuleSet] | None = None

    def terms(self, silences: Sequence[Silence]) -> RuleSet | None:
        """The silences' terms compiled (cached while they and the entities stay the same).
        A term that no longer compiles (it names an entity since removed from the rules) is
        left out, with a warning: that silence matches nothing, and nothing else fails."""
        wanted = tuple(sorted((s.id, s.term) for s in silences if s.term))
        if not wanted:
            return None
        entities = self.entities()
        with self._lock:
            if self._terms is not None and self._terms[:2] == (wanted, id(entities)):
                return self._terms[2]
            ruleset, problems = compile_terms(dict(wanted), entities,  # type: ignore[arg-type]
                                              origin="silence")
            if problems:
                good = {}
                for sid, term in wanted:
                    if check_term(term, entities):
                        log.warning("silence term does not compile any more; the silence "
                                    "matches nothing", silence=sid, term=term,
                                    problem=check_term(term, entities)[0])
                    else:
                        good[sid] = term
                ruleset, _ = compile_terms(good, entities,  # type: ignore[arg-type]
                                           origin="silence")
            self._terms = (wanted, id(entities), ruleset)
            return ruleset

    def silencer(self, conn: Connection, now: datetime,
                 articles: Mapping[int, Article] | None = None) -> Silencer | None:
        """The silencer for alerts raised in the unit of work on *conn* at *now* (None when
        no silence is in force). *articles*: the articles of this unit by id (others are
        read from the database when a term must be checked)."""
        found = stored.overlapping(conn, now - LOOKBACK, now + timedelta(seconds=1))
        return self.silencer_for(found, conn, articles, now=now) if found else None

    def silencer_for(self, silences: Sequence[Silence], conn: Connection | None,
                     articles: Mapping[int, Article] | None = None, *,
                     now: datetime | None = None) -> Silencer | None:
        """A silencer over *silences* (articles looked up in *articles*, then on *conn*). A
        silence holds an alert back when it is in force at the alert's time, or at *now*,
        when the alert is raised: an alert dated in the past (a rule's catch-up over recent
        articles, a throttle's flush, a quiet spell found by the last check) is held by a
        silence that was added since."""
        if not silences:
            return None
        known = dict(articles or {})
        tags = self.tags()
        ruleset = self.terms(silences)
        names: dict[int, str] = {}

        def article(aid: int) -> Article | None:
            if aid not in known and conn is not None:
                row = conn.execute(
                    select(Source.name, ArticleRow.title, ArticleRow.summary, ArticleRow.body,
                           ArticleRow.language)
                    .join(Source, Source.id == ArticleRow.source_id)
                    .where(ArticleRow.id == aid)).first()
                if row is not None:
                    known[aid] = Article(source=row[0], title=row[1], summary=row[2],
                                         body=row[3], language=row[4],
                                         tags=tuple(tags.get(row[0], ())))
            return known.get(aid)

        def source_name(sid: int) -> str:
            if sid not in names and conn is not None:
                names[sid] = conn.scalar(select(Source.name).where(Source.id == sid)) or ""
            return names.get(sid, "")

        def silencer(record: AlertRecord) -> str | None:
            at = record.created_at
            live = [s for s in silences
                    if (s.active(at) or (now is not None and s.active(now)))
                    and (s.rule_id is None or s.rule_id == record.rule_id)]
            if not live:
                return None
            art = article(record.article_id) if record.article_id is not None else None
            name = art.source if art is not None else (
                source_name(record.source_id) if record.source_id is not None else "")
            source_tags = tags.get(name, ())
            held_terms: set[str] | None = None
            for s in live:
                if s.source is not None and not source_matches(s.source, name, source_tags):
                    continue
                if s.term is not None:
                    if art is None or ruleset is None:
                        continue   # a quiet source has no article to hold the term
                    if held_terms is None:
                        held_terms = {m.rule_id for m in ruleset.match(art)}
                    if s.id not in held_terms:   # (a term that no longer compiles: never)
                        continue
                return s.id
            return None

        return silencer


def check_term(term: str, entities: dict[str, object]) -> list[str]:
    """Problems with a silence's term (empty when it compiles)."""
    _, problems = compile_terms({"silence": term}, entities,  # type: ignore[arg-type]
                                origin="--match")
    return [p.message for p in problems]


__all__ = ["LOOKBACK", "Silencing", "check_term", "source_matches"]
