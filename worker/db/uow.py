"""Units of work: the one place that opens write transactions, and the only one that locks.

``Database.unit(...)`` is a plain transaction; ``Database.ingest_unit(...)`` is the critical
section of ingest, taken in turns by every thread (a lock in this process) and every worker (a
PostgreSQL transaction-level advisory lock), so two copies of one story stored at once from two
sources still find each other and a window counts every hit. (On SQLite the unit begins with
``BEGIN IMMEDIATE``, which does the same across processes.) It is meant to be short: keys,
language, matching and signatures are computed before it is entered; inside it the keys are
checked again, stories placed, rows inserted and alerts decided. The clock is read once the
lock is held, so the time a hit is stored at is the order in which hits are counted.

Every database error leaving a unit becomes a ``StorageError`` naming what was being done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from worker.errors import StorageError

INGEST_LOCK = 0x72616B6962 + 1   # the advisory lock ingest units take turns under


@dataclass(slots=True)
class UnitOfWork:
    """An open transaction (``conn``) and the time it began under its lock (``now``)."""

    conn: Connection
    now: datetime
    dialect: str


def storage_error(what: str, exc: SQLAlchemyError) -> StorageError:
    """A short message for *exc*: the driver's first line, no SQL, no parameters."""
    orig: Any = exc.orig if isinstance(exc, DBAPIError) else None
    reason = str(orig) if orig is not None else type(exc).__name__
    reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
    if len(reason) > 200:
        reason = reason[:200] + "…"
    err = StorageError(f"storage: {what}: {type(orig or exc).__name__}: {reason}")
    err.__cause__ = exc
    return err


@contextmanager
def wrapped(what: str) -> Iterator[None]:
    """Turn database errors raised inside into ``StorageError`` about *what*."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise storage_error(what, exc) from exc


class Units:
    """Opens units of work on one engine."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.clock = clock
        self._lock = threading.Lock()
        # Told (seconds waited, seconds held) after each ingest unit: for metrics.
        self.on_ingest: Callable[[float, float], None] | None = None

    @contextmanager
    def unit(self, what: str) -> Iterator[UnitOfWork]:
        """A write transaction, committed on success, rolled back on error."""
        with wrapped(what), self.engine.begin() as conn:
            yield UnitOfWork(conn, self.clock(), self.dialect)

    @contextmanager
    def claim_unit(self, what: str) -> Iterator[UnitOfWork]:
        """A write transaction for claiming leases. On PostgreSQL the claim's rows are taken
        with ``FOR UPDATE SKIP LOCKED``; SQLite has no row locks, so the unit begins with
        ``BEGIN IMMEDIATE`` and claims are taken in turns."""
        with wrapped(what), self.engine.begin() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield UnitOfWork(conn, self.clock(), self.dialect)

    @contextmanager
    def ingest_unit(self, what: str) -> Iterator[UnitOfWork]:
        """The ingest critical section (see the module's docstring)."""
        asked = time.perf_counter()
        got = asked
        try:
            with self._lock, wrapped(what), self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INGEST_LOCK})
                elif self.dialect == "sqlite":
                    # Take SQLite's write lock before the first read, so what the unit reads
                    # is what it writes over, whichever process or connection wrote last.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                got = time.perf_counter()
                yield UnitOfWork(conn, self.clock(), self.dialect)
        finally:
            if self.on_ingest is not None:
                done = time.perf_counter()
                self.on_ingest(got - asked, done - got)

    @contextmanager
    def read(self, what: str) -> Iterator[Connection]:
        """A read-only connection."""
        with wrapped(what), self.engine.connect() as conn:
            yield conn
