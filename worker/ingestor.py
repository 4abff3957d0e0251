"""Ingest: one fetched feed (or seed pass) from keys to stored articles, stories and alerts.

Decide outside the lock, write inside it. With no lock held: each item's keys, which of them
this fetch shows to be shared, what the source already has (duplicate, update or new), then
language, rule matching and the MinHash signature of what is fresh. Then one short unit of
work (``Units.ingest_unit``) checks the keys again (another worker may have stored an item
meanwhile), places each fresh article in a story, inserts articles, keys and index rows, and
lets the alert policy decide over the SQL ledger. N threads or workers ingest side by side;
they only take turns for that last step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from sqlalchemy import Connection

from worker import dedupe, stories
from worker.alerts.raising import Outcome, Silencer, raise_alerts
from worker.alerts.raising import check_quiet as raise_check_quiet
from worker.db import Database, articles, story_index
from worker.db.ledger import SqlLedger
from worker.db.quiet import SqlQuietFacts, running_spans
from worker.db.sources import SeedFileUpdate, record_seed_files
from worker.db.uow import UnitOfWork
from worker.dedupe import Kind, Prepared, Verdict
from worker.domain import AlertRecord, AlertSpec, Article, Candidate, Explanation, KnownKey


class RuleHit(NamedTuple):
    """A rule an article matched: its alert spec, why, and what a first_seen rule looks for
    as new in it (see ``Candidate.keys``)."""

    spec: AlertSpec
    explanations: tuple[Explanation, ...]
    keys: tuple[str, ...] = ()


# Detects each fresh article's language (setting it) and returns the rules each matches.
Decide = Callable[[list[Article]], list[list[RuleHit]]]
# The silencer of a unit of work on a connection at a time, with that unit's articles by id.
SilencerFor = Callable[[Connection, datetime, Mapping[int, Article]], Silencer | None]


def _candidates(hits: Sequence[tuple[AlertSpec, tuple[Explanation, ...]] | RuleHit], *,
                article_id: int, story_id: int, source_id: int, title: str, url: str | None,
                at: datetime) -> list[Candidate]:
    return [Candidate(h[0], article_id, story_id, source_id, title, url, at, h[1],
                      h[2] if len(h) > 2 else ())
            for h in hits]


@dataclass(slots=True)
class IngestResult:
    """What one ingest stored and raised."""

    new: int = 0
    updates: int = 0
    duplicates: int = 0
    stories: int = 0
    alerts: list[AlertRecord] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


class Ingest(Protocol):
    """What the pipeline needs from storage to ingest: ``Ingestor`` is the implementation over
    ``worker.db.Database``; a test or another backend may bring its own."""

    def ingest(self, source_id: int, batch: list[Prepared], decide: Decide,
               seed_files: Sequence[SeedFileUpdate] = ()) -> IngestResult: ...


def _raw_keys(batch: Sequence[Prepared]) -> list[str]:
    keys: list[str] = []
    for p in batch:
        keys.append("c:" + p.content_hash)
        if p.guid_hash:
            keys.append("g:" + p.guid_hash)
        if p.url_hash:
            keys.append("u:" + p.url_hash)
    return keys


def _verdicts(batch: Sequence[Prepared], known: Mapping[str, KnownKey],
              fetch_shared: set[str]) -> list[Verdict]:
    """Each item's verdict, duplicates within the batch included."""
    shared = fetch_shared | {k for k, v in known.items() if v.shared}
    dedupe.identify(batch, shared)
    seen: set[str] = set()
    out = []
    for p in batch:
        if p.content_hash in seen:
            out.append(Verdict(Kind.DUPLICATE))
            continue
        seen.add(p.content_hash)
        out.append(dedupe.classify(p.keys, known))
    return out


class Ingestor:
    """Stores batches of one source at a time; safe to call from many threads."""

    def __init__(self, db: Database, silencer_for: SilencerFor | None = None) -> None:
        self.db = db
        self.silencer_for = silencer_for

    def fresh(self, source_id: int, batch: list[Prepared]) -> list[Prepared]:
        """The items of *batch* the source does not have yet, new or updated (a read-only
        look, for work such as fetching full text that must not happen inside ingest)."""
        with self.db.units.read(f"look up keys of source {source_id}") as conn:
            known = articles.known(conn, source_id, _raw_keys(batch))
        verdicts = _verdicts(batch, known, dedupe.shared_in_fetch(batch))
        return [p for p, v in zip(batch, verdicts, strict=True) if v.kind is not Kind.DUPLICATE]

    def ingest(self, source_id: int, batch: list[Prepared], decide: Decide,
               seed_files: Sequence[SeedFileUpdate] = ()) -> IngestResult:
        """Store what is new or updated in *batch* and the alerts its matches raise, with
        *seed_files* recorded as read, in one unit of work."""
        result = IngestResult()
        fetch_shared = dedupe.shared_in_fetch(batch)
        keys = _raw_keys(batch)
        with self.db.units.read(f"look up keys of source {source_id}") as conn:
            known = articles.known(conn, source_id, keys)
        verdicts = _verdicts(batch, known, fetch_shared)
        fresh = [p for p, v in zip(batch, verdicts, strict=True) if v.kind is not Kind.DUPLICATE]
        result.duplicates = len(batch) - len(fresh)
        if not fresh and not seed_files and not fetch_shared:
            return result
        hits = decide([p.article for p in fresh]) if fresh else []
        matched = {id(p): h for p, h in zip(fresh, hits, strict=True)}
        for p in fresh:
            _ = p.signature   # computed here, outside the lock
        with self.db.units.ingest_unit(f"ingest into source {source_id}") as uow:
            self._write(uow, source_id, fresh, matched=matched, fetch_shared=fetch_shared,
                        result=result)
            record_seed_files(uow.conn, uow.dialect, source_id, seed_files, uow.now)
        return result

    def _write(self, uow: UnitOfWork, source_id: int, fresh: list[Prepared], *,
               matched: dict[int, list[RuleHit]], fetch_shared: set[str],
               result: IngestResult) -> None:
        conn, now = uow.conn, uow.now
        known = articles.known(conn, source_id, _raw_keys(fresh))   # again, under the lock
        verdicts = _verdicts(fresh, known, fetch_shared)
        newly_shared = set(fetch_shared)
        items: list[tuple[Prepared, Verdict]] = []
        for p, v in zip(fresh, verdicts, strict=True):
            newly_shared.update(v.shared)
            if v.kind is Kind.DUPLICATE:
                result.duplicates += 1   # another worker stored it meanwhile
            else:
                items.append((p, v))
        articles.mark_shared(conn, uow.dialect, source_id,
                             sorted(k for k in newly_shared
                                    if k not in known or not known[k].shared), now)
        if not items:
            return
        placed = self._place(uow, items)
        story_ids, new_titles = placed
        real = articles.new_stories(conn, uow.dialect, new_titles, now)
        story_of = [real[-s - 1] if s < 0 else s for s in story_ids]
        rows = [{
            "source_id": source_id, "story_id": sid, "guid": p.article.guid,
            "guid_hash": p.guid_hash, "url": p.url, "url_hash": p.url_hash,
            "content_hash": p.content_hash,
            "version": v.previous.version + 1 if v.kind is Kind.UPDATE and v.previous else 1,
            "title": p.article.title, "summary": p.article.summary, "body": p.article.body,
            "language": p.article.language, "published": p.article.published,
            "fetched_at": now, "signature": p.signature.to_bytes(),
        } for (p, v), sid in zip(items, story_of, strict=True)]
        inserted = articles.insert_articles(conn, uow.dialect, rows)
        keys: list[tuple[str, int, int]] = []
        bands: list[tuple[int, int, int]] = []
        candidates: list[Candidate] = []
        stored: dict[int, Article] = {}
        used: set[int] = set()
        for (p, v), sid in zip(items, story_of, strict=True):
            aid = inserted.get(p.content_hash)
            if aid is None:
                result.duplicates += 1
                continue
            used.add(sid)
            if v.kind is Kind.UPDATE:
                result.updates += 1
            else:
                result.new += 1
            keys += [(k, aid, sid) for k in p.keys.all()]
            bands += [(b, sid, aid) for b in p.signature.bands()]
            found = matched.get(id(p), ())
            if found:
                stored[aid] = p.article
                candidates += _candidates(found, article_id=aid, story_id=sid,
                                          source_id=source_id, title=p.article.title,
                                          url=p.url, at=now)
        articles.write_keys(conn, uow.dialect, source_id, keys, now)
        story_index.add(conn, uow.dialect, bands, now)
        lost = sorted(set(real) - used)
        if lost:
            articles.delete_stories(conn, lost)
        result.stories = len(set(real) & used)
        silencer = self.silencer_for(conn, now, stored) \
            if self.silencer_for is not None and candidates else None
        result.outcomes = raise_alerts(candidates, SqlLedger(uow), silencer=silencer)
        result.alerts = [o.alert for o in result.outcomes if o.alert is not None]

    def _place(self, uow: UnitOfWork,
               items: list[tuple[Prepared, Verdict]]) -> tuple[list[int], list[str]]:
        """A story for each item: an update's own story; else the story of an exact copy
        (any source); else of a near copy (stored, or earlier in this batch); else a new one.
        Returns story ids (negative: the k-th new story, -1 first) and the new stories'
        titles."""
        conn, since = uow.conn, uow.now - stories.HORIZON
        previous = [v.previous.story_id for _, v in items
                    if v.kind is Kind.UPDATE and v.previous and v.previous.story_id]
        alive = articles.existing_stories(conn, previous) if previous else set()
        exact = articles.copies(conn, [p.content_hash for p, _ in items], since)
        stored = story_index.candidates(conn, [b for p, _ in items for b in p.signature.bands()],
                                        since)
        by_band: dict[int, list[tuple[int, int]]] = {}
        for band, sid, aid in stored:
            by_band.setdefault(band, []).append((sid, aid))
        wanted = {aid for p, _ in items for _, reps in stories.rank(
            [r for b in p.signature.bands() for r in by_band.get(b, ())]) for aid in reps}
        sigs: dict[int, stories.Signature] = {
            aid: stories.Signature.from_bytes(raw)
            for aid, raw in story_index.signatures(conn, sorted(wanted)).items()}
        out: list[int] = []
        titles: list[str] = []
        local_exact: dict[str, int] = {}
        for i, (p, v) in enumerate(items):
            story: int | None = None
            if v.kind is Kind.UPDATE and v.previous and v.previous.story_id in alive:
                story = v.previous.story_id
            if story is None:
                story = exact.get(p.content_hash, local_exact.get(p.content_hash))
            if story is None:
                rows = [r for b in p.signature.bands() for r in by_band.get(b, ())]
                story, _ = stories.choose(p.signature, stories.rank(rows), sigs.get)
            if story is None:
                titles.append(p.article.title)
                story = -len(titles)
            out.append(story)
            local_exact.setdefault(p.content_hash, story)
            local_id = -(i + 1) - 1_000_000_000   # this batch's article, before it has an id
            sigs[local_id] = p.signature
            for b in p.signature.bands():
                by_band.setdefault(b, []).append((story, local_id))
        return out, titles


def catch_up_candidates(stored: Sequence[tuple[articles.StoredArticle, list[RuleHit]]],
                        ) -> list[Candidate]:
    """Candidates for stored articles that rules added by a reload match (at the time each
    was stored)."""
    return [c for a, hits in stored if a.story_id is not None
            for c in _candidates(hits, article_id=a.id, story_id=a.story_id,
                                 source_id=a.source_id, title=a.title, url=a.url,
                                 at=a.fetched_at)]


def raise_for_stored(db: Database, candidates: list[Candidate],
                     silencer_for: SilencerFor | None = None) -> list[Outcome]:
    """Decide *candidates* (stored articles) in the ingest unit of work."""
    with db.units.ingest_unit("raise alerts for stored articles") as uow:
        silencer = silencer_for(uow.conn, uow.now, {}) if silencer_for and candidates else None
        return raise_alerts(candidates, SqlLedger(uow), silencer=silencer)


def flush_held(db: Database, specs: Mapping[str, AlertSpec],
               silencer_for: SilencerFor | None = None) -> list[Outcome]:
    """Throttles whose window has passed: their held stories flushed (see
    ``worker.alerts.raising.flush_held``)."""
    from worker.alerts.raising import flush_held as flush  # noqa: PLC0415

    with db.units.ingest_unit("flush held alerts") as uow:
        silencer = silencer_for(uow.conn, uow.now, {}) if silencer_for else None
        return flush(specs, SqlLedger(uow), uow.now, silencer=silencer)


def check_quiet(db: Database, specs: Sequence[tuple[AlertSpec, Sequence[int]]],
                lease: timedelta, silencer_for: SilencerFor | None = None) -> list[Outcome]:
    """Quiet rules (each with the ids of the sources it watches) up to now, in the ingest
    unit of work, over the running spans of the fleet (see
    ``worker.alerts.raising.check_quiet``)."""
    out: list[Outcome] = []
    with db.units.ingest_unit("check quiet sources") as uow:
        facts = SqlQuietFacts(uow.conn)
        known = facts.sources()
        spans = running_spans(uow.conn, uow.now, lease)
        silencer = silencer_for(uow.conn, uow.now, {}) if silencer_for else None
        ledger = SqlLedger(uow)
        for spec, source_ids in specs:
            out += raise_check_quiet(spec, {s: known[s] for s in source_ids if s in known},
                                     facts, spans=spans, ledger=ledger, now=uow.now,
                                     silencer=silencer)
    return out


__all__ = ["Decide", "Ingest", "IngestResult", "Ingestor", "RuleHit", "SilencerFor",
           "catch_up_candidates", "check_quiet", "flush_held", "raise_for_stored"]
