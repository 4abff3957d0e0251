"""The story index: locality-sensitive hashing bands of stored articles, one row per
(band, story), in the database so it survives restarts and is shared by every worker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from worker.db.articles import chunks
from worker.db.engine import insert
from worker.schema import Article, StoryIndex


def candidates(conn: Connection, bands: Sequence[int],
               since: datetime) -> list[tuple[int, int, int]]:
    """(band, story id, article id) of the stories open since *since* sharing any of
    *bands*."""
    out: list[tuple[int, int, int]] = []
    for part in chunks(sorted(set(bands))):
        q = (select(StoryIndex.band, StoryIndex.story_id, StoryIndex.article_id)
             .where(StoryIndex.band.in_(part), StoryIndex.at >= since))
        out.extend((b, s, a) for b, s, a in conn.execute(q))
    return out


def signatures(conn: Connection, article_ids: Sequence[int]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for part in chunks(sorted(set(article_ids))):
        q = select(Article.id, Article.signature).where(Article.id.in_(part),
                                                        Article.signature.is_not(None))
        out.update({a: sig for a, sig in conn.execute(q) if sig is not None})
    return out


def add(conn: Connection, dialect: str, rows: Sequence[tuple[int, int, int]],
        now: datetime) -> None:
    """Index (band, story id, article id) rows: a (band, story) already indexed keeps its
    article and is marked open as of *now*."""
    if not rows:
        return
    unique = {(b, s): a for b, s, a in reversed(rows)}   # the first article of each pair
    stmt = insert(dialect, StoryIndex)
    stmt = stmt.on_conflict_do_update(index_elements=["band", "story_id"],
                                      set_={"at": stmt.excluded.at})
    conn.execute(stmt, [{"band": b, "story_id": s, "article_id": a, "at": now}
                        for (b, s), a in sorted(unique.items())])
