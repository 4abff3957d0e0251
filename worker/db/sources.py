"""Sources and their health; seed files as last read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from worker.db.engine import insert
from worker.db.uow import Units
from worker.schema import SeedFile, Source


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


class Sources:
    def __init__(self, units: Units) -> None:
        self.units = units

    def sync(self, sources: Iterable[tuple[str, str, str]], now: datetime) -> dict[str, int]:
        """Make sure each (name, url, kind) has a row; return ids by name."""
        rows = [{"name": n, "url": u, "kind": k, "failures": 0, "created_at": now}
                for n, u, k in sources]
        with self.units.unit("sync sources") as uow:
            if rows:
                uow.conn.execute(insert(uow.dialect, Source).on_conflict_do_nothing(), rows)
                for r in rows:
                    uow.conn.execute(update(Source).where(Source.name == r["name"],
                                                          Source.url != r["url"])
                                     .values(url=r["url"], kind=r["kind"]))
            return {name: sid for sid, name in uow.conn.execute(select(Source.id, Source.name))}

    def state(self, source_id: int) -> Source:
        with self.units.read("read source") as conn:
            row = conn.execute(select(Source).where(Source.id == source_id)).one()
            return Source(**row._mapping)

    def all(self) -> list[Source]:
        with self.units.read("list sources") as conn:
            return [Source(**r._mapping) for r in conn.execute(select(Source)
                                                               .order_by(Source.name))]

    def claim_due(self, holder: str, lease: timedelta, intervals: Mapping[str, timedelta], *,
                  limit: int, force: bool = False) -> list[str]:
        """Claim up to *limit* of the sources named in *intervals* whose poll is due (all of
        them with *force*) and that no live worker holds, for *holder*, until *lease* from now.
        Each claimed source's next poll moves one interval and one lease on at once, so a
        worker killed mid-poll (whose request may have waited up to a lease for its host)
        leaves it due no sooner than one interval after that request. Returns the names
        claimed, the most overdue first."""
        if not intervals or limit <= 0:
            return []
        with self.units.claim_unit("claim due sources") as uow:
            now = uow.now
            q = (select(Source.id, Source.name)
                 .where(Source.name.in_(list(intervals)),
                        or_(Source.lease_holder.is_(None), Source.lease_expires < now))
                 .order_by(Source.next_poll.asc().nulls_first(), Source.id)
                 .limit(limit).with_for_update(skip_locked=True))
            if not force:
                q = q.where(or_(Source.next_poll.is_(None), Source.next_poll <= now))
            rows = uow.conn.execute(q).all()
            if rows:
                uow.conn.execute(
                    update(Source).where(Source.id == bindparam("sid")).values(
                        lease_holder=holder, lease_expires=now + lease,
                        next_poll=bindparam("nxt")).execution_options(synchronize_session=False),
                    [{"sid": sid, "nxt": now + intervals[name] + lease}
                     for sid, name in rows])
            return [name for _sid, name in rows]

    def next_due(self, names: Sequence[str]) -> datetime | None:
        """The earliest next poll among *names* that no worker holds: now for a source never
        polled, None when every one is held."""
        with self.units.read("read next poll") as conn:
            now = self.units.clock()
            row = conn.execute(select(Source.next_poll).where(
                Source.name.in_(list(names)),
                or_(Source.lease_holder.is_(None), Source.lease_expires < now))
                .order_by(Source.next_poll.asc().nulls_first()).limit(1)).one_or_none()
            return None if row is None else (row[0] or now)

    def poll_now(self, name: str) -> None:
        """Make source *name* due now (a seed folder that changed)."""
        with self.units.unit(f"make {name} due") as uow:
            uow.conn.execute(update(Source).where(Source.name == name)
                             .values(next_poll=uow.now))

    def record_poll(self, source_id: int, *, now: datetime, error: str | None,
                    next_poll: datetime | None,
                    validators: tuple[str | None, str | None] | None = None,
                    moved_to: str | None = None, holder: str | None = None) -> bool:
        """Record a poll and release its lease. *validators* (ETag, Last-Modified) replace the
        stored ones when given; *moved_to* notes a permanent redirect. The poll is not recorded
        (False) when another live worker holds the source's lease: it polls it now, and its
        record is the one that counts."""
        values: dict[str, Any] = {"last_poll": now, "next_poll": next_poll,
                                  "lease_holder": None, "lease_expires": None}
        if error is None:
            values |= {"last_success": now, "last_error": None, "failures": 0,
                       "moved_to": moved_to}
            if validators is not None:
                values |= {"etag": validators[0], "last_modified": validators[1]}
        else:
            values |= {"last_error": error, "failures": Source.failures + 1}
        with self.units.unit(f"record poll of source {source_id}") as uow:
            mine = or_(Source.lease_holder.is_(None), Source.lease_expires < uow.now)
            if holder is not None:
                mine = or_(mine, Source.lease_holder == holder)
            result = uow.conn.execute(update(Source).where(Source.id == source_id, mine)
                                      .values(**values))
            return bool(result.rowcount)

    def seed_files(self, source_id: int) -> dict[str, SeedFileState]:
        with self.units.read("read seed files") as conn:
            rows = conn.execute(select(SeedFile.path, SeedFile.size, SeedFile.mtime_ns,
                                       SeedFile.digest).where(SeedFile.source_id == source_id))
            return {p: SeedFileState(s, m, d) for p, s, m, d in rows}


def record_seed_files(conn: Connection, dialect: str, source_id: int,
                      files: Sequence[SeedFileUpdate], now: datetime) -> None:
    for f in files:
        values = {"size": f.size, "mtime_ns": f.mtime_ns, "digest": f.digest, "read_at": now}
        stmt = insert(dialect, SeedFile).values(source_id=source_id, path=f.path, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["source_id", "path"],
                                                set_=values))
