"""Storage: the only package that talks to the database.

One module per aggregate — ``sources`` (health, seed files), ``articles`` (versions and the
identity keys of each source), ``story_index`` (LSH bands), ``ledger`` (alerts, window hits,
window state, held throttles, spikes, sightings, quiet watches), ``outbox`` (deliveries),
``listings`` (read models), ``silences``, ``quiet`` (what quiet rules read) — and
``uow``, the units of work: the one place that opens write transactions and the only one that
locks. ``Database`` ties them to one engine. Database errors leave as ``StorageError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from sqlalchemy import select

from worker.db import articles
from worker.db.engine import MIGRATIONS, database_url, make_engine, migrate
from worker.db.leases import Leases
from worker.db.listings import Listings
from worker.db.outbox import DueDelivery, Outbox
from worker.db.silences import Silences
from worker.db.sources import SeedFileState, SeedFileUpdate, Sources
from worker.db.uow import UnitOfWork, Units
from worker.errors import StorageError

__all__ = ["Database", "DueDelivery", "SeedFileState", "SeedFileUpdate", "StorageError",
           "UnitOfWork", "database_url"]


def code_schema_version() -> str:
    """The newest migration this code carries (what it expects the database to be at)."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 (only needed here)

    return ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Database:
    """One database: its engine, units of work and aggregates."""

    def __init__(self, url: str, clock: Callable[[], datetime] = _utcnow) -> None:
        self.url = database_url(url)
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self.units = Units(self.engine, clock)
        self.sources = Sources(self.units)
        self.outbox = Outbox(self.units)
        self.listings = Listings(self.units)
        self.leases = Leases(self.units)
        self.silences = Silences(self.units)

    def migrate(self) -> None:
        """Apply pending Alembic migrations."""
        migrate(self.engine)

    def schema_version(self) -> str | None:
        """The migration the database is at (None: not migrated)."""
        with self.units.read("read schema version") as conn:
            try:
                return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            except Exception:
                return None

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.units.read("ping") as conn:
            conn.execute(select(1))

    def iter_articles(self, since: datetime | None = None,
                      batch: int = 1000) -> Iterator[articles.StoredArticle]:
        """Every stored article, oldest first, in batches (flat memory)."""
        return articles.iter_articles(self.engine.connect, since, batch)

    def prune(self, before: datetime, batch: int = 5_000) -> int:
        """Remove articles stored before *before*, except those an alert or a throttle points
        to, and the stories left with no article and no alert; the removed articles' keys stay
        as tombstones. Returns how many articles went."""
        removed = 0
        while True:
            with self.units.unit("prune articles") as uow:
                n = articles.prune(uow.conn, before, batch)
            removed += n
            if n < batch:
                break
        with self.units.unit("prune stories") as uow:
            articles.prune_stories(uow.conn)
        return removed

    def vacuum(self) -> None:
        """Give the space of pruned rows back to the file system (SQLite only)."""
        if self.dialect != "sqlite":
            return
        with self.units.read("vacuum") as conn:
            conn.exec_driver_sql("VACUUM")
