"""Silences in the database (rules.md, Silences): every worker reads them at each decision,
so one added or expired takes effect everywhere at once, and they outlive restarts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from worker.db.uow import Units
from worker.domain import Silence
from worker.schema import Alert, SilenceRow

_COLUMNS = (SilenceRow.id, SilenceRow.starts_at, SilenceRow.ends_at, SilenceRow.rule_id,
            SilenceRow.source, SilenceRow.term, SilenceRow.created_by, SilenceRow.comment,
            SilenceRow.created_at)


def active(conn: Connection, at: datetime) -> list[Silence]:
    """The silences in force at *at* (inside a unit of work: what it decides by)."""
    q = (select(*_COLUMNS).where(SilenceRow.starts_at <= at, SilenceRow.ends_at > at)
         .order_by(SilenceRow.starts_at, SilenceRow.id))
    return [Silence(*r) for r in conn.execute(q)]


def overlapping(conn: Connection, start: datetime, end: datetime) -> list[Silence]:
    """The silences in force at some time from *start* to *end*."""
    q = (select(*_COLUMNS).where(SilenceRow.starts_at < end, SilenceRow.ends_at > start)
         .order_by(SilenceRow.starts_at, SilenceRow.id))
    return [Silence(*r) for r in conn.execute(q)]


class Silences:
    def __init__(self, units: Units) -> None:
        self.units = units

    def add(self, silence: Silence) -> None:
        with self.units.unit("add a silence") as uow:
            uow.conn.execute(insert(SilenceRow).values(
                id=silence.id, rule_id=silence.rule_id, source=silence.source,
                term=silence.term, created_by=silence.created_by, comment=silence.comment,
                starts_at=silence.starts_at, ends_at=silence.ends_at,
                created_at=silence.created_at or uow.now))

    def expire(self, silence_id: str) -> Silence | None:
        """End a silence now (one that has not started never will). Returns it as it now
        stands, or None when there is no such silence."""
        with self.units.unit("expire a silence") as uow:
            row = uow.conn.execute(select(*_COLUMNS).where(SilenceRow.id == silence_id)).first()
            if row is None:
                return None
            found = Silence(*row)
            if found.ends_at > uow.now:   # one not started yet ends before it begins
                start = min(found.starts_at, uow.now)
                uow.conn.execute(update(SilenceRow).where(SilenceRow.id == silence_id)
                                 .values(starts_at=start, ends_at=uow.now))
                return Silence(found.id, start, uow.now, *row[3:])
            return found

    def listing(self, *, include_expired: bool = False) -> list[tuple[Silence, int]]:
        """Silences (those not over, or all) with how many alerts each held back, the
        latest to end first."""
        with self.units.read("list silences") as conn:
            now = self.units.clock()
            q = select(*_COLUMNS).order_by(SilenceRow.ends_at.desc(), SilenceRow.id.desc())
            if not include_expired:
                q = q.where(SilenceRow.ends_at > now)
            rows = [Silence(*r) for r in conn.execute(q)]
            counts = dict(conn.execute(
                select(Alert.silenced_by, func.count())
                .where(Alert.silenced_by.in_([s.id for s in rows]))
                .group_by(Alert.silenced_by)).all()) if rows else {}
        return [(s, int(counts.get(s.id, 0))) for s in rows]

    def in_range(self, start: datetime, end: datetime) -> list[Silence]:
        with self.units.read("read silences") as conn:
            return overlapping(conn, start, end)
