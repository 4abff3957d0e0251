"""The composition root: the one place that builds raqib's parts and wires them together.

``build_app(cfg)`` opens the database (migrating it when asked), makes the pipeline with its
fetcher, ingestor, deliverer and metrics on one clock, and registers the sources. The command
line, the daemon and tests start here; everything below receives its collaborators through
constructors and never builds its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from worker import config
from worker.db import Database
from worker.fetch import Fetcher
from worker.pipeline import Pipeline

log = structlog.get_logger("raqib.app")


@dataclass
class App:
    """A configured raqib: its database and pipeline (which holds the rest)."""

    cfg: config.Config
    db: Database
    pipeline: Pipeline

    def close(self) -> None:
        self.pipeline.close()   # closes the fetcher, the webhooks' client and the database


def open_database(cfg: config.Config, *, migrate: bool,
                  clock: Callable[[], datetime] | None = None) -> Database:
    """The database of *cfg*. The embedded SQLite database is migrated on any use; with
    *migrate* a PostgreSQL one is too (workers starting together take turns under an
    advisory lock), while listings leave a shared database as it is."""
    db = Database(cfg.main.database) if clock is None else Database(cfg.main.database, clock)
    if migrate or db.dialect == "sqlite":
        db.migrate()
    return db


def build_app(cfg: config.Config, *, clock: Callable[[], datetime] | None = None,
              fetcher: Fetcher | None = None, migrate: bool = True) -> App:
    """Everything ``run`` and ``once`` need, built on one clock."""
    for warning in cfg.warnings:
        log.warning("configuration", problem=str(warning))
    db = open_database(cfg, migrate=migrate, clock=clock)
    pipeline = Pipeline(cfg, db, fetcher=fetcher)
    pipeline.sync_sources()
    return App(cfg, db, pipeline)
