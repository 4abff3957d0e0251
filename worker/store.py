"""Storage: the only module that talks to the database.

One ``ingest`` call is one transaction for one fetched feed or seed pass: it drops what is already
stored (by GUID, canonical URL or text hash), lets the caller match what is new, and writes the new
articles, their stories, alerts, matches and outbox deliveries together. Inserts are Core
``INSERT … ON CONFLICT DO NOTHING``, so a second worker racing on the same article loses quietly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from ulid import ULID

from worker import stories
from worker.items import Article, Explanation
from worker.schema import (
    Alert,
    Delivery,
    Match,
    RuleHit,
    RuleState,
    SeedFile,
    Source,
    Story,
    StoryBand,
)
from worker.schema import Article as ArticleRow
from worker.stories import Signature

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
CHUNK = 500   # keys per IN (...) look-up
INGEST_LOCK = 0x72616B6962 + 1   # the advisory lock ingests take turns under
MAX_HELD_TITLES = 20
MAX_HELD_TITLES = 20


def database_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver raqib installs)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


@dataclass(slots=True)
class Prepared:
    """An article with its dedupe keys (see worker.dedupe)."""

    article: Article
    guid_hash: str | None
    url: str | None
    url_hash: str | None
    content_hash: str
    continues: str | None = None   # a GUID of this source whose story this article joins
    _signature: Signature | None = None

    @property
    def signature(self) -> Signature:
        """The article's MinHash signature, computed when first needed (new articles only)."""
        if self._signature is None:
            self._signature = stories.signature(self.article)
        return self._signature


@dataclass(frozen=True, slots=True)
class AlertSpec:
    rule_id: str
    rule_title: str
    severity: str
    explanations: tuple[Explanation, ...]
    channels: tuple[str, ...]
    when: tuple[int, timedelta, bool] | None = None   # count, within, distinct_sources
    throttle: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Raise:
    """An alert to raise for a stored article."""

    spec: AlertSpec
    article_id: int
    story_id: int
    title: str
    url: str | None
    source_id: int = 0
    at: datetime | None = None      # the article's time, for windows (published, else now)


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    id: str
    rule_id: str
    severity: str
    article_id: int
    title: str
    url: str | None


@dataclass(slots=True)
class IngestResult:
    new: int = 0
    duplicates: int = 0
    stories: int = 0
    alerts: list[RaisedAlert] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SeedFileState:
    size: int
    mtime_ns: int
    digest: str


@dataclass(frozen=True, slots=True)
class SeedFileUpdate:
    path: str
    size: int
    mtime_ns: int
    digest: str


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    alert_id: str
    channel: str
    attempts: int
    created_at: datetime


# Decides, for the articles not stored yet, which alerts each raises (and may set language).
Decide = Callable[[list[Article]], list[list[AlertSpec]]]


class Store:
    def __init__(self, url: str) -> None:
        self.url = database_url(url)
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self._ingest_lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _insert(self, table: Any) -> Any:
        mod = postgresql if self.dialect == "postgresql" else sqlite
        return mod.insert(table)

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply pending Alembic migrations."""
        from alembic import command  # noqa: PLC0415 (only needed here)
        from alembic.config import Config as AlembicConfig  # noqa: PLC0415

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    # -- sources ------------------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[tuple[str, str, str]],
                     now: datetime) -> dict[str, int]:
        """Make sure each (name, url, kind) has a row; return ids by name."""
        rows = [{"name": n, "url": u, "kind": k, "failures": 0, "created_at": now}
                for n, u, k in sources]
        with self.begin() as conn:
            if rows:
                conn.execute(self._insert(Source).on_conflict_do_nothing(), rows)
                for r in rows:
                    conn.execute(update(Source).where(Source.name == r["name"],
                                                      Source.url != r["url"])
                                 .values(url=r["url"], kind=r["kind"]))
            return {name: sid for sid, name in conn.execute(select(Source.id, Source.name))}

    def source_state(self, source_id: int) -> Source:
        with self.engine.connect() as conn:
            row = conn.execute(select(Source).where(Source.id == source_id)).one()
            return Source(**row._mapping)

    def sources(self) -> list[Source]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Source).order_by(Source.name))
            return [Source(**r._mapping) for r in rows]

    def record_poll(self, source_id: int, *, now: datetime, error: str | None,
                    next_poll: datetime | None,
                    validators: tuple[str | None, str | None] | None = None,
                    moved_to: str | None = None) -> None:
        """Record a poll. *validators* (ETag, Last-Modified) replace the stored ones when
        given; *moved_to* notes a permanent redirect."""
        values: dict[str, Any] = {"last_poll": now, "next_poll": next_poll}
        if error is None:
            values |= {"last_success": now, "last_error": None, "failures": 0,
                       "moved_to": moved_to}
            if validators is not None:
                values |= {"etag": validators[0], "last_modified": validators[1]}
        else:
            values |= {"last_error": error, "failures": Source.failures + 1}
        with self.begin() as conn:
            conn.execute(update(Source).where(Source.id == source_id).values(**values))

    # -- seed files ---------------------------------------------------------------------------

    def seed_files(self, source_id: int) -> dict[str, SeedFileState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(SeedFile.path, SeedFile.size, SeedFile.mtime_ns,
                                       SeedFile.digest).where(SeedFile.source_id == source_id))
            return {p: SeedFileState(s, m, d) for p, s, m, d in rows}

    def _record_seed_files(self, conn: Connection, source_id: int,
                           files: Sequence[SeedFileUpdate], now: datetime) -> None:
        for f in files:
            values = {"size": f.size, "mtime_ns": f.mtime_ns, "digest": f.digest, "read_at": now}
            stmt = self._insert(SeedFile).values(source_id=source_id, path=f.path, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["source_id", "path"],
                                                    set_=values))

    # -- ingest -------------------------------------------------------------------------------

    def unknown(self, source_id: int, batch: list[Prepared]) -> list[Prepared]:
        """The articles of *batch* not stored yet (a read-only look, for work such as fetching
        full text that must not happen inside the ingest transaction)."""
        with self.engine.connect() as conn:
            known = self._known(conn, source_id, batch)
        return [p for p in batch if not any(k in known for k in self._keys(p))]

    def _known(self, conn: Connection, source_id: int, batch: list[Prepared]) -> set[str]:
        """Dedupe keys in *batch* already stored, as 'g:…', 'u:…' and 'c:…' strings."""
        known: set[str] = set()
        for part in _chunks(batch):
            guids = [p.guid_hash for p in part if p.guid_hash]
            urls = [p.url_hash for p in part if p.url_hash]
            contents = [p.content_hash for p in part]
            cond: list[ColumnElement[bool]] = [ArticleRow.content_hash.in_(contents)]
            if urls:
                cond.append(ArticleRow.url_hash.in_(urls))
            if guids:
                cond.append(and_(ArticleRow.source_id == source_id,
                                 ArticleRow.guid_hash.in_(guids)))
            q = select(ArticleRow.source_id, ArticleRow.guid_hash, ArticleRow.url_hash,
                       ArticleRow.content_hash).where(or_(*cond))
            for sid, g, u, c in conn.execute(q):
                if g and sid == source_id:
                    known.add("g:" + g)
                if u:
                    known.add("u:" + u)
                known.add("c:" + c)
        return known

    @staticmethod
    def _keys(p: Prepared) -> list[str]:
        keys = ["c:" + p.content_hash]
        if p.url_hash:
            keys.append("u:" + p.url_hash)
        if p.guid_hash:
            keys.append("g:" + p.guid_hash)
        return keys

    def ingest(self, source_id: int, batch: list[Prepared], decide: Decide, now: datetime,
               seed_files: Sequence[SeedFileUpdate] = ()) -> IngestResult:
        """Store what is new in *batch* and the alerts *decide* raises for it, in one
        transaction (with *seed_files* recorded as read).

        Ingests that store something take turns (a lock in this process, a PostgreSQL advisory
        lock across workers), so two copies of one story arriving at once from two sources
        still find each other; the unique constraints remain the last word on duplicates."""
        result = IngestResult()
        with self.engine.connect() as conn:
            known = self._known(conn, source_id, batch)
        fresh: list[Prepared] = []
        for p in batch:
            keys = self._keys(p)
            if any(k in known for k in keys):
                result.duplicates += 1
                continue
            known.update(keys)   # a copy later in the same batch is a duplicate too
            fresh.append(p)
        if not fresh and not seed_files:
            return result
        with self._ingest_lock, self.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INGEST_LOCK})
            if fresh:
                decisions = decide([p.article for p in fresh])
                self._insert_new(conn, source_id, fresh, decisions, now=now, result=result)
            self._record_seed_files(conn, source_id, seed_files, now)
        return result

    def _stories(self, conn: Connection, source_id: int, fresh: list[Prepared],
                 now: datetime) -> tuple[list[int], set[int]]:
        """A story for each new article: the story of the article it continues (a seed file's
        earlier version), else the story of a near-duplicate (stored or earlier in this
        batch), else a new one. Returns the story ids in order and the ids created."""
        wanted = sorted({p.continues for p in fresh if p.continues})
        known: dict[str, tuple[str, int]] = {}
        for chunk in _chunks(wanted):
            q = (select(ArticleRow.guid, ArticleRow.story_id)
                 .where(ArticleRow.source_id == source_id, ArticleRow.guid.in_(chunk),
                        ArticleRow.story_id.is_not(None))
                 .order_by(ArticleRow.id))
            known.update({g: ("old", s) for g, s in conn.execute(q)
                          if g is not None and s is not None})
        stored = self._band_candidates(conn, [b for p in fresh for b in p.signature.bands()],
                                       since=now - stories.HORIZON)
        # A story per article: ("old", id) for a stored story, ("new", k) for the k-th new one.
        local: dict[int, list[tuple[Signature, tuple[str, int]]]] = {}
        keys: list[tuple[str, int]] = []
        new_count = 0
        for p in fresh:
            key: tuple[str, int] | None = None
            if p.continues and p.continues in known:
                key = known[p.continues]
            else:
                best = 0.0
                candidates = {id(sig): (sig, cand) for band in p.signature.bands()
                              for sig, cand in [*stored.get(band, ()), *local.get(band, ())]}
                for sig, cand in candidates.values():   # each candidate compared once
                    score = p.signature.similarity(sig)
                    if score > best and p.signature.joins(sig):
                        best, key = score, cand
            if key is None:
                key = ("new", new_count)
                new_count += 1
            if p.continues:
                known[p.continues] = key   # a later version in this batch continues it
            keys.append(key)
            for band in p.signature.bands():
                local.setdefault(band, []).append((p.signature, key))
        firsts: dict[int, Prepared] = {}
        for p, key in zip(fresh, keys, strict=True):
            if key[0] == "new":
                firsts.setdefault(key[1], p)
        new_ids = list(conn.scalars(
            self._insert(Story).returning(Story.id, sort_by_parameter_order=True),
            [{"title": firsts[k].article.title, "created_at": now} for k in range(new_count)]
        )) if new_count else []
        return ([new_ids[k] if kind == "new" else k for kind, k in keys], set(new_ids))

    def _band_candidates(self, conn: Connection, bands: list[int], since: datetime
                         ) -> dict[int, list[tuple[Signature, tuple[str, int]]]]:
        """Articles stored since *since* sharing any of *bands*: their signatures and
        stories. A story is open for copies for stories.HORIZON; the same headline weeks
        later is news again."""
        hits: list[tuple[int, int]] = []
        for chunk in _chunks(sorted(set(bands))):
            q = (select(StoryBand.band, ArticleRow.story_id).distinct()
                 .join(ArticleRow, ArticleRow.id == StoryBand.article_id)
                 .where(StoryBand.band.in_(chunk), ArticleRow.story_id.is_not(None),
                        ArticleRow.fetched_at >= since))
            hits += [(b, s) for b, s in conn.execute(q) if s is not None]
        # A story carried by a hundred outlets needs no hundred comparisons: its newest
        # article speaks for it.
        newest: dict[int, int] = {}
        for chunk in _chunks(sorted({s for _, s in hits})):
            q2 = (select(ArticleRow.story_id, func.max(ArticleRow.id))
                  .where(ArticleRow.story_id.in_(chunk), ArticleRow.signature.is_not(None))
                  .group_by(ArticleRow.story_id))
            newest.update({s: a for s, a in conn.execute(q2) if s is not None})
        signatures: dict[int, Signature] = {}
        for chunk in _chunks(sorted(newest.values())):
            q3 = select(ArticleRow.story_id, ArticleRow.signature).where(ArticleRow.id.in_(chunk))
            signatures.update({s: Signature.from_bytes(sig) for s, sig in conn.execute(q3)
                               if s is not None and sig is not None})
        out: dict[int, list[tuple[Signature, tuple[str, int]]]] = {}
        for band, story in hits:
            if story in signatures:
                out.setdefault(band, []).append((signatures[story], ("old", story)))
        return out

    def _insert_new(self, conn: Connection, source_id: int, fresh: list[Prepared],
                    decisions: list[list[AlertSpec]], *, now: datetime,
                    result: IngestResult) -> None:
        story_ids, new_stories = self._stories(conn, source_id, fresh, now)
        rows = [{
            "source_id": source_id, "story_id": sid, "guid": p.article.guid,
            "guid_hash": p.guid_hash, "url": p.url, "url_hash": p.url_hash,
            "content_hash": p.content_hash, "title": p.article.title,
            "summary": p.article.summary, "body": p.article.body,
            "language": p.article.language, "published": p.article.published, "fetched_at": now,
            "signature": p.signature.to_bytes(),
        } for p, sid in zip(fresh, story_ids, strict=True)]
        stmt = self._insert(ArticleRow).on_conflict_do_nothing().returning(
            ArticleRow.id, ArticleRow.content_hash)
        inserted = {c: i for i, c in conn.execute(stmt, rows)}
        bands = [{"band": band, "article_id": inserted[p.content_hash]} for p in fresh
                 if p.content_hash in inserted for band in p.signature.bands()]
        if bands:
            conn.execute(self._insert(StoryBand), bands)
        used = {sid for p, sid in zip(fresh, story_ids, strict=True)
                if p.content_hash in inserted}
        lost = sorted(new_stories - used)
        result.stories = len(new_stories & used)
        if lost:   # another worker stored these first: it raises their alerts
            conn.execute(delete(Story).where(Story.id.in_(lost)))
        result.new = len(inserted)
        result.duplicates += len(fresh) - len(inserted)
        raised = [Raise(spec, inserted[p.content_hash], sid, p.article.title, p.url, source_id,
                        p.article.published)
                  for p, sid, specs in zip(fresh, story_ids, decisions, strict=True)
                  if p.content_hash in inserted for spec in specs]
        result.alerts.extend(self._raise(conn, raised, now))

    def _raise(self, conn: Connection, raised: list[Raise], now: datetime) -> list[RaisedAlert]:
        """Plain rules alert at once (once per story); a `when:` rule when its window fills; a
        throttled rule at most once per throttle window, holding the rest for later. Stateful
        rules are handled one raise at a time, each seeing what the one before it did."""
        out = self._insert_alerts(conn, [(r, None) for r in raised
                                         if r.spec.when is None and r.spec.throttle is None], now)
        for r in raised:
            if r.spec.when is None and r.spec.throttle is None:
                continue
            target, detail = r, None
            if r.spec.when is not None:
                fired = self._window(conn, r, now)
                if fired is None:
                    continue
                target, detail = fired
            elif self._alerted(conn, r.spec.rule_id, [r.story_id]):
                continue   # this story has had its alert
            if r.spec.throttle is not None:
                go, detail = self._throttle(conn, target, now, detail)
                if not go:
                    continue
            created = self._insert_alerts(conn, [(target, detail)], now)
            if created and r.spec.throttle is not None:
                self._set_state(conn, r.spec.rule_id, last_alert_at=now, held=None)
            out += created
        return out

    def _alerted(self, conn: Connection, rule_id: str, story_ids: Iterable[int]) -> set[int]:
        """Which of *story_ids* already have an alert of *rule_id*."""
        ids = sorted(set(story_ids))
        if not ids:
            return set()
        q = select(Alert.story_id).where(Alert.rule_id == rule_id, Alert.story_id.in_(ids))
        return set(conn.scalars(q))

    def _state(self, conn: Connection, rule_id: str) -> RuleState | None:
        row = conn.execute(select(RuleState).where(RuleState.rule_id == rule_id)).first()
        return RuleState(**row._mapping) if row is not None else None

    def _set_state(self, conn: Connection, rule_id: str, **values: Any) -> None:
        stmt = self._insert(RuleState).values(rule_id=rule_id, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["rule_id"], set_=values))

    def _window(self, conn: Connection, r: Raise,
                now: datetime) -> tuple[Raise, dict[str, Any]] | None:
        """Record the hit (at the time raqib stored it, so feed order and late copies do not
        matter); when the window fills — once per window — the alert to raise: for the hit's
        story, or the newest story in the window that has no alert of this rule yet."""
        assert r.spec.when is not None
        count, within, distinct = r.spec.when
        rid = r.spec.rule_id
        conn.execute(self._insert(RuleHit).on_conflict_do_nothing(), [{
            "rule_id": rid, "article_id": r.article_id, "story_id": r.story_id,
            "source_id": r.source_id, "at": now}])
        state = self._state(conn, rid)
        cond = [RuleHit.rule_id == rid, RuleHit.at > now - within, RuleHit.at <= now]
        if state is not None and state.last_fired_at is not None:
            cond.append(RuleHit.at > state.last_fired_at)   # each window fires once
        column = RuleHit.source_id if distinct else RuleHit.story_id
        seen = int(conn.scalar(select(func.count(func.distinct(column))).where(*cond)) or 0)
        if seen < count:
            return None
        hits = conn.execute(select(RuleHit.article_id, RuleHit.story_id).where(*cond)
                            .order_by(RuleHit.at.desc(), RuleHit.id.desc())).all()
        alerted = self._alerted(conn, rid, [sid for _, sid in hits])
        target = r if r.story_id not in alerted else None
        for aid, sid in hits:
            if target is not None:
                break
            if sid not in alerted:
                title, url = conn.execute(select(ArticleRow.title, ArticleRow.url)
                                          .where(ArticleRow.id == aid)).one()
                target = Raise(replace(r.spec, explanations=()), aid, sid, title, url,
                               r.source_id, now)
        if target is None:
            return None   # every story in it has alerted: the window stays open
        self._set_state(conn, rid, last_fired_at=now)
        return target, {"window": {"count": seen, "within_seconds": int(within.total_seconds()),
                                   "distinct_sources": distinct}}

    def _throttle(self, conn: Connection, r: Raise, now: datetime,
                  detail: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
        """Whether the rule may alert now (its state is cleared once the alert exists); if
        not, the story is held, to ride on the next alert or be flushed."""
        assert r.spec.throttle is not None
        state = self._state(conn, r.spec.rule_id)
        held: dict[str, Any] = json.loads(state.held) if state is not None and state.held \
            else {"count": 0, "titles": [], "items": []}
        last = state.last_alert_at if state is not None else None
        if last is not None and now - last < r.spec.throttle:
            if all(item["story_id"] != r.story_id for item in held["items"]):
                held["count"] += 1
                held["titles"] = [*held["titles"], r.title][-MAX_HELD_TITLES:]
                held["items"] = [*held["items"], {"article_id": r.article_id,
                                                  "story_id": r.story_id, "title": r.title,
                                                  "url": r.url}][-MAX_HELD_TITLES:]
            self._set_state(conn, r.spec.rule_id, held=json.dumps(held, ensure_ascii=False))
            return False, detail
        if held["count"]:
            detail = {**(detail or {}), "held": {"count": held["count"],
                                                 "titles": held["titles"]}}
        return True, detail

    def flush_held(self, now: datetime, specs: dict[str, AlertSpec]) -> list[RaisedAlert]:
        """Throttled rules whose window has passed with alerts held back: one alert now, on
        the newest held story that has no alert yet, carrying the count and titles of all."""
        out: list[RaisedAlert] = []
        with self._ingest_lock, self.begin() as conn:
            rows = conn.execute(select(RuleState).where(RuleState.held.is_not(None))).all()
            for row in rows:
                spec = specs.get(row.rule_id)
                if spec is None or spec.throttle is None or row.last_alert_at is None \
                        or now - row.last_alert_at < spec.throttle:
                    continue
                held = json.loads(row.held)
                items = held.get("items") or []
                alerted = self._alerted(conn, row.rule_id, [i["story_id"] for i in items])
                fresh = [i for i in items if i["story_id"] not in alerted]
                if not held.get("count") or not fresh:
                    self._set_state(conn, row.rule_id, held=None)
                    continue
                last = fresh[-1]
                r = Raise(spec, last["article_id"], last["story_id"], last["title"], last["url"])
                detail = {"held": {"count": held["count"], "titles": held["titles"]}}
                created = self._insert_alerts(conn, [(r, detail)], now)
                if created:
                    self._set_state(conn, row.rule_id, last_alert_at=now, held=None)
                out += created
        return out

    def _insert_alerts(self, conn: Connection, raised: list[tuple[Raise, dict[str, Any] | None]],
                       now: datetime) -> list[RaisedAlert]:
        """Alerts with their matches and outbox rows; an alert that exists for its (rule,
        story) is not raised again."""
        if not raised:
            return []
        rows, pending = [], {}
        for r, detail in raised:
            aid = str(ULID.from_datetime(now))
            rows.append({"id": aid, "rule_id": r.spec.rule_id, "rule_title": r.spec.rule_title,
                         "severity": r.spec.severity, "story_id": r.story_id,
                         "article_id": r.article_id, "created_at": now,
                         "detail": json.dumps(detail, ensure_ascii=False) if detail else None})
            pending[aid] = r
        stmt = self._insert(Alert).on_conflict_do_nothing().returning(Alert.id)
        created = list(conn.scalars(stmt, rows))
        matches, deliveries, out = [], [], []
        for aid in created:
            r = pending[aid]
            matches += [{"alert_id": aid, **e.as_dict()} for e in r.spec.explanations]
            deliveries += [{"alert_id": aid, "channel": ch, "status": "pending", "attempts": 0,
                            "next_attempt": now, "created_at": now} for ch in r.spec.channels]
            out.append(RaisedAlert(aid, r.spec.rule_id, r.spec.severity, r.article_id, r.title,
                                   r.url))
        if matches:
            conn.execute(self._insert(Match), matches)
        if deliveries:
            conn.execute(self._insert(Delivery), deliveries)
        return out

    def raise_alerts(self, raised: list[Raise], now: datetime) -> list[RaisedAlert]:
        """Raise alerts for stored articles (rules added while the daemon runs catch up)."""
        with self._ingest_lock, self.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INGEST_LOCK})
            return self._raise(conn, raised, now)

    # -- housekeeping -------------------------------------------------------------------------

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(select(1))

    def prune(self, before: datetime, batch: int = 5_000) -> int:
        """Remove articles stored before *before*, except those an alert points to, and the
        stories left with no article and no alert. Returns how many articles went."""
        removed = 0
        while True:
            with self.begin() as conn:
                ids = list(conn.scalars(
                    select(ArticleRow.id)
                    .where(ArticleRow.fetched_at < before,
                           ArticleRow.id.not_in(select(Alert.article_id)))
                    .limit(batch)))
                if not ids:
                    break
                conn.execute(delete(ArticleRow).where(ArticleRow.id.in_(ids)))
                removed += len(ids)
        with self.begin() as conn:
            conn.execute(delete(Story).where(
                Story.id.not_in(select(ArticleRow.story_id).where(
                    ArticleRow.story_id.is_not(None))),
                Story.id.not_in(select(Alert.story_id))))
        return removed

    def vacuum(self) -> None:
        """Give the space of pruned rows back to the file system (SQLite only)."""
        if self.dialect != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")

    # -- alerts and deliveries ----------------------------------------------------------------

    def alert_payloads(self, *, ids: Sequence[str] | None = None, since: datetime | None = None,
                       limit: int | None = None) -> list[dict[str, Any]]:
        """Alerts as payload dicts (interfaces.md), newest first."""
        from worker.alerts.payload import build_payload  # noqa: PLC0415 (payload imports store types)

        q = (select(Alert, ArticleRow.url, ArticleRow.title, ArticleRow.published,
                    ArticleRow.language, Source.name)
             .join(ArticleRow, ArticleRow.id == Alert.article_id)
             .join(Source, Source.id == ArticleRow.source_id)
             .order_by(Alert.created_at.desc(), Alert.id.desc()))
        if ids is not None:
            q = q.where(Alert.id.in_(list(ids)))
        if since is not None:
            q = q.where(Alert.created_at >= since)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
            alert_ids = [r._mapping["id"] for r in rows]
            matches: dict[str, list[dict[str, str]]] = {a: [] for a in alert_ids}
            story_sources: dict[int, int] = {}
            for part in _chunks(alert_ids):
                q1 = select(Match.alert_id, Match.term, Match.field, Match.text, Match.snippet)
                for aid, term, fname, text, snippet in conn.execute(
                        q1.where(Match.alert_id.in_(part)).order_by(Match.id)):
                    matches[aid].append({"term": term, "field": fname, "text": text,
                                         "snippet": snippet})
            story_ids = {r._mapping["story_id"] for r in rows}
            for chunk in _chunks(sorted(story_ids)):
                q2 = (select(ArticleRow.story_id, func.count(func.distinct(ArticleRow.source_id)))
                      .where(ArticleRow.story_id.in_(chunk)).group_by(ArticleRow.story_id))
                story_sources.update({sid: n for sid, n in conn.execute(q2) if sid is not None})
        out = []
        for r in rows:
            m = r._mapping
            out.append(build_payload(
                alert_id=m["id"], created_at=m["created_at"], rule_id=m["rule_id"],
                rule_title=m["rule_title"], severity=m["severity"], article_id=m["article_id"],
                url=m["url"], title=m["title"], source=m["name"], published=m["published"],
                language=m["language"], story_id=m["story_id"],
                story_sources=story_sources.get(m["story_id"], 1), matches=matches[m["id"]],
                detail=json.loads(m["detail"]) if m["detail"] else None))
        return out

    def due_deliveries(self, now: datetime, *, channels: Sequence[str],
                       limit: int = 500) -> list[DueDelivery]:
        """Pending deliveries of *channels* whose time has come, oldest first."""
        q = (select(Delivery.id, Delivery.alert_id, Delivery.channel, Delivery.attempts,
                    Delivery.created_at)
             .where(Delivery.status == "pending", Delivery.next_attempt <= now,
                    Delivery.channel.in_(list(channels)))
             .order_by(Delivery.next_attempt, Delivery.id).limit(limit))
        with self.engine.connect() as conn:
            return [DueDelivery(*r) for r in conn.execute(q)]

    def pending_deliveries(self, channel: str, limit: int = 5000) -> list[DueDelivery]:
        """Every pending delivery of *channel*, whatever its time (a digest takes them all)."""
        q = (select(Delivery.id, Delivery.alert_id, Delivery.channel, Delivery.attempts,
                    Delivery.created_at)
             .where(Delivery.status == "pending", Delivery.channel == channel)
             .order_by(Delivery.id).limit(limit))
        with self.engine.connect() as conn:
            return [DueDelivery(*r) for r in conn.execute(q)]

    def delivered(self, delivery_id: int, now: datetime) -> None:
        with self.begin() as conn:
            conn.execute(update(Delivery).where(Delivery.id == delivery_id).values(
                status="sent", sent_at=now, attempts=Delivery.attempts + 1, last_error=None))

    def delivery_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: retried at *retry_at*, or dead when it is None."""
        values: dict[str, Any] = {"attempts": Delivery.attempts + 1, "last_error": error}
        values |= {"next_attempt": retry_at} if retry_at is not None else {"status": "dead"}
        with self.begin() as conn:
            conn.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    def retry_alert(self, alert_id: str, now: datetime) -> int:
        """Make an alert's undelivered deliveries (dead or waiting) due now, with a fresh
        24 hours; returns how many."""
        with self.begin() as conn:
            result = conn.execute(
                update(Delivery)
                .where(Delivery.alert_id == alert_id, Delivery.status != "sent")
                .values(status="pending", next_attempt=now, created_at=now))
            return int(result.rowcount or 0)

    def alert_exists(self, alert_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Alert)
                               .where(Alert.id == alert_id)) == 1

    def deliveries_of(self, alert_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {a: [] for a in alert_ids}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(alert_ids)):
                for r in conn.execute(select(Delivery).where(Delivery.alert_id.in_(chunk))
                                      .order_by(Delivery.channel)):
                    out[r.alert_id].append(Delivery(**r._mapping))
        return out

    # -- listings -----------------------------------------------------------------------------

    def articles(self, *, since: datetime | None = None, source: str | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
        q = (select(ArticleRow.id, Source.name.label("source"), ArticleRow.url,
                    ArticleRow.title, ArticleRow.published, ArticleRow.language,
                    ArticleRow.story_id.label("story"), ArticleRow.fetched_at)
             .join(Source, Source.id == ArticleRow.source_id)
             .order_by(func.coalesce(ArticleRow.published, ArticleRow.fetched_at).desc(),
                       ArticleRow.id.desc()))
        if since is not None:
            q = q.where(ArticleRow.fetched_at >= since)
        if source is not None:
            q = q.where(Source.name == source)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def iter_articles(self, since: datetime | None = None,
                      batch: int = 1000) -> Iterator[tuple[int, int | None, Article, datetime]]:
        """Every stored article as (article id, story id, Article, when it was stored), oldest
        first, read in batches (keyset pagination: memory stays flat however many there
        are)."""
        last = 0
        q = (select(ArticleRow.id, ArticleRow.story_id, Source.name, ArticleRow.title,
                    ArticleRow.summary, ArticleRow.body, ArticleRow.url, ArticleRow.guid,
                    ArticleRow.published, ArticleRow.language, ArticleRow.fetched_at)
             .join(Source, Source.id == ArticleRow.source_id).order_by(ArticleRow.id))
        if since is not None:
            q = q.where(ArticleRow.fetched_at >= since)
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(q.where(ArticleRow.id > last).limit(batch)).all()
            if not rows:
                return
            for aid, story, source, title, summary, body, url, guid, published, lang, at in rows:
                yield aid, story, Article(source=source, title=title, summary=summary, body=body,
                                          url=url, guid=guid, published=published,
                                          language=lang), at
            last = rows[-1][0]

    def stories(self, *, since: datetime | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        """Stories with their articles and sources, newest first."""
        q = select(Story.id, Story.title, Story.created_at).order_by(Story.created_at.desc(),
                                                                   Story.id.desc())
        if since is not None:
            q = q.where(Story.created_at >= since)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            stories = [dict(r._mapping) for r in conn.execute(q)]
            members: dict[int, list[dict[str, Any]]] = {s["id"]: [] for s in stories}
            for chunk in _chunks(list(members)):
                rows = conn.execute(
                    select(ArticleRow.story_id, ArticleRow.id, Source.name, ArticleRow.url,
                           ArticleRow.title, ArticleRow.published)
                    .join(Source, Source.id == ArticleRow.source_id)
                    .where(ArticleRow.story_id.in_(chunk)).order_by(ArticleRow.id))
                for sid, aid, source, url, title, published in rows:
                    members[int(sid or 0)].append({"id": aid, "source": source, "url": url,
                                         "title": title, "published": published})
        for s in stories:
            s["articles"] = members[s["id"]]
            s["sources"] = sorted({a["source"] for a in s["articles"]})
        return stories

    def count_articles(self, since: datetime | None = None) -> int:
        q = select(func.count()).select_from(ArticleRow)
        if since is not None:
            q = q.where(ArticleRow.fetched_at >= since)
        with self.engine.connect() as conn:
            return int(conn.scalar(q) or 0)

    def count(self, model: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(model)) or 0)


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]



