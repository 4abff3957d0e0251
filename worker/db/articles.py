"""Articles and their identity keys: what a source has shown, and the versions stored.

A source's item is known by the keys in ``item_keys`` (``c:`` text hash, ``g:`` GUID hash,
``u:`` canonical-URL hash). ``g:`` and ``u:`` point at the item's newest version; a key found
shared by different items is marked so and identifies nothing from then on. Keys stay when
their article is pruned (a tombstone: ``article_id`` becomes NULL), so the item is not new
again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from worker.db.engine import insert
from worker.domain import KnownKey
from worker.schema import Alert, Article, HeldAlert, ItemKey, Story

CHUNK = 500   # values per IN (...) look-up


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def known(conn: Connection, source_id: int, keys: Sequence[str]) -> dict[str, KnownKey]:
    """What the database knows of *keys* (``c:…``/``g:…``/``u:…``) of one source."""
    out: dict[str, KnownKey] = {}
    wanted = sorted(set(keys))
    for part in chunks(wanted):
        q = (select(ItemKey.key, ItemKey.article_id, ItemKey.story_id, ItemKey.shared,
                    Article.guid_hash, Article.url_hash, Article.version)
             .outerjoin(Article, Article.id == ItemKey.article_id)
             .where(ItemKey.source_id == source_id, ItemKey.key.in_(part)))
        for key, aid, sid, shared, g, u, version in conn.execute(q):
            out[key] = KnownKey(aid, sid, g, u, bool(shared), version or 1)
    return out


def copies(conn: Connection, content_hashes: Sequence[str], since: datetime) -> dict[str, int]:
    """Stories of articles (any source) stored since *since* with one of these text hashes:
    an exact copy joins its story without a comparison."""
    out: dict[str, int] = {}
    for part in chunks(sorted(set(content_hashes))):
        q = (select(Article.content_hash, func.min(Article.story_id))
             .where(Article.content_hash.in_(part), Article.fetched_at >= since,
                    Article.story_id.is_not(None))
             .group_by(Article.content_hash))
        out.update({c: s for c, s in conn.execute(q) if s is not None})
    return out


def existing_stories(conn: Connection, story_ids: Sequence[int]) -> set[int]:
    """Which of *story_ids* still exist (a tombstone's story may have been pruned)."""
    found: set[int] = set()
    for part in chunks(sorted(set(story_ids))):
        found.update(conn.scalars(select(Story.id).where(Story.id.in_(part))))
    return found


def new_stories(conn: Connection, dialect: str, titles: Sequence[str],
                now: datetime) -> list[int]:
    if not titles:
        return []
    stmt = insert(dialect, Story).returning(Story.id, sort_by_parameter_order=True)
    return list(conn.scalars(stmt, [{"title": t, "created_at": now} for t in titles]))


def delete_stories(conn: Connection, story_ids: Sequence[int]) -> None:
    """Stories created for articles that another worker stored first."""
    for part in chunks(sorted(set(story_ids))):
        conn.execute(delete(Story).where(Story.id.in_(part)))


def insert_articles(conn: Connection, dialect: str,
                    rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert article rows; returns ids by text hash of those inserted (a row whose text the
    source already has — another worker was first — is skipped)."""
    if not rows:
        return {}
    stmt = insert(dialect, Article).on_conflict_do_nothing().returning(Article.id,
                                                                       Article.content_hash)
    return {c: i for i, c in conn.execute(stmt, list(rows))}


def write_keys(conn: Connection, dialect: str, source_id: int,
               rows: Sequence[tuple[str, int, int]], now: datetime) -> None:
    """Point keys (key, article id, story id) at their newest version."""
    if not rows:
        return
    latest = {k: (a, s) for k, a, s in rows}   # one row per key: the newest wins
    stmt = insert(dialect, ItemKey)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source_id", "key"],
        set_={"article_id": stmt.excluded.article_id, "story_id": stmt.excluded.story_id,
              "seen_at": stmt.excluded.seen_at})
    conn.execute(stmt, [{"source_id": source_id, "key": k, "article_id": a, "story_id": s,
                         "shared": False, "seen_at": now}
                        for k, (a, s) in sorted(latest.items())])


def mark_shared(conn: Connection, dialect: str, source_id: int, keys: Sequence[str],
                now: datetime) -> None:
    """Keys that different items of the source share: no identity from now on."""
    if not keys:
        return
    stmt = insert(dialect, ItemKey)
    stmt = stmt.on_conflict_do_update(index_elements=["source_id", "key"],
                                      set_={"shared": True})
    conn.execute(stmt, [{"source_id": source_id, "key": k, "article_id": None,
                         "story_id": None, "shared": True, "seen_at": now}
                        for k in sorted(set(keys))])


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """A stored article as replay and catch-up read it."""

    id: int
    story_id: int | None
    source_id: int
    source: str
    title: str
    summary: str
    body: str
    url: str | None
    guid: str | None
    published: datetime | None
    language: str | None
    fetched_at: datetime


def iter_articles(engine_connect: Any, since: datetime | None = None,
                  batch: int = 1000) -> Iterator[StoredArticle]:
    """Every stored article, oldest first, read in batches (keyset pagination: memory stays
    flat however many there are). *engine_connect* opens a connection per batch."""
    from worker.schema import Source  # noqa: PLC0415 (kept local: only listings need it)

    last = 0
    q = (select(Article.id, Article.story_id, Article.source_id, Source.name, Article.title,
                Article.summary, Article.body, Article.url, Article.guid, Article.published,
                Article.language, Article.fetched_at)
         .join(Source, Source.id == Article.source_id).order_by(Article.id))
    if since is not None:
        q = q.where(Article.fetched_at >= since)
    while True:
        with engine_connect() as conn:
            rows = conn.execute(q.where(Article.id > last).limit(batch)).all()
        if not rows:
            return
        for r in rows:
            yield StoredArticle(*r)
        last = rows[-1][0]


def prune(conn: Connection, before: datetime, batch: int) -> int:
    """Remove up to *batch* articles stored before *before* that no alert points to; their
    keys stay as tombstones. Returns how many went."""
    ids = list(conn.scalars(
        select(Article.id)
        # (NOT IN over a NULL is never true: quiet alerts have no article, so leave them out)
        .where(Article.fetched_at < before,
               Article.id.not_in(select(Alert.article_id)
                                 .where(Alert.article_id.is_not(None))),
               Article.id.not_in(select(HeldAlert.article_id)))
        .limit(batch)))
    if ids:
        conn.execute(update(ItemKey).where(ItemKey.article_id.in_(ids)).values(article_id=None))
        conn.execute(delete(Article).where(Article.id.in_(ids)))
    return len(ids)


def prune_stories(conn: Connection) -> None:
    """Stories left with no article and no alert."""
    conn.execute(delete(Story).where(
        Story.id.not_in(select(Article.story_id).where(Article.story_id.is_not(None))),
        Story.id.not_in(select(Alert.story_id).where(Alert.story_id.is_not(None)))))
