"""Engines for SQLite and PostgreSQL, and the migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url


def _migrations() -> Path:
    """The Alembic scripts: inside the package as worker/migrations when raqib is installed
    from a wheel, the checkout's top-level migrations/ otherwise (editable installs, tests)."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "migrations"
    return packaged if (packaged / "env.py").is_file() else package.parent / "migrations"


MIGRATIONS = _migrations()


def database_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver raqib installs)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """An engine for *url*; SQLite files get WAL, foreign keys and a 30 s busy timeout."""
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


def insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing`` and ``…_do_update``."""
    mod = postgresql if dialect == "postgresql" else sqlite
    return mod.insert(table)


def migrate(engine: Engine) -> None:
    """Apply pending Alembic migrations (under an advisory lock on PostgreSQL, see
    migrations/env.py)."""
    from alembic import command  # noqa: PLC0415 (only needed here)
    from alembic.config import Config as AlembicConfig  # noqa: PLC0415

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    sqlite_ = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite_:
            # SQLite alters a table by copying it; with foreign keys on, dropping the old copy
            # would cascade into (or be refused by) the tables that point at it.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                if sqlite_:
                    # The driver begins transactions only before INSERT/UPDATE/DELETE, so
                    # CREATE and DROP would each commit alone: a migration killed half-way
                    # would leave a half-copied table. One explicit transaction for all.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            if sqlite_:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
