"""What quiet rules read: each source's stored news and health, and when raqib was running
(the workers' register, and the merged spans of the workers housekeeping forgot)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select

from worker.db.engine import insert
from worker.domain import News, Span, merge_spans
from worker.schema import Article, Source, Uptime, Worker


class SqlQuietFacts:
    """Sources' news and health in one open transaction (answers
    ``worker.alerts.raising.QuietFacts`` structurally)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def news(self, source_id: int, after: datetime, until: datetime) -> list[News]:
        q = (select(Article.fetched_at, Article.id, Article.title, Article.url)
             .where(Article.source_id == source_id, Article.fetched_at > after,
                    Article.fetched_at <= until)
             .order_by(Article.fetched_at, Article.id))
        return [News(*r) for r in self.conn.execute(q)]

    def last_news(self, source_id: int, until: datetime) -> datetime | None:
        return self.conn.scalar(select(func.max(Article.fetched_at)).where(
            Article.source_id == source_id, Article.fetched_at <= until))

    def failing(self, source_id: int, since: datetime) -> bool:
        row = self.conn.execute(select(Source.last_poll, Source.last_success)
                                .where(Source.id == source_id)).first()
        if row is None or row[0] is None or row[0] <= since:
            return False   # not polled since: nothing failed
        return row[1] is None or row[1] <= since

    def sources(self) -> dict[int, tuple[str, datetime]]:
        """Every source by id: its name and when it was first configured."""
        return {sid: (name, created) for sid, name, created in self.conn.execute(
            select(Source.id, Source.name, Source.created_at))}


def running_spans(conn: Connection, now: datetime, lease: timedelta) -> list[Span]:
    """When raqib was running up to *now*: each registered worker from its start to its last
    heartbeat (to *now* for a worker whose heartbeat is within *lease*: it runs still), and
    the spans kept in ``uptime``: those of forgotten workers, and of a worker's runs before a
    gap in its heartbeats (a suspended machine)."""
    spans: list[Span] = [(s, e) for s, e in conn.execute(
        select(Uptime.started_at, Uptime.ended_at))]
    for started, since, beat, stopped in conn.execute(
            select(Worker.started_at, Worker.running_since, Worker.beat_at, Worker.stopped_at)):
        end = beat if stopped is not None or now - beat > lease else now
        spans.append((since or started, min(end, now)))
    return spans


def keep_spans(conn: Connection, dialect: str, spans: Sequence[Span]) -> None:
    """Record the spans of workers about to be forgotten, merged with those kept already."""
    if not spans:
        return
    kept = [(s, e) for s, e in conn.execute(select(Uptime.started_at, Uptime.ended_at))]
    merged = merge_spans([*kept, *spans])
    conn.execute(delete(Uptime))
    conn.execute(insert(dialect, Uptime), [{"started_at": s, "ended_at": e} for s, e in merged])
