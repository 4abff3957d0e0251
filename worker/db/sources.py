"""Sources and their health; seed files as last read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

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
        with self.units.unit(f"record poll of source {source_id}") as uow:
            uow.conn.execute(update(Source).where(Source.id == source_id).values(**values))

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
