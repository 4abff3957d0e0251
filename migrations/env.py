"""Alembic environment: run by ``raqib db upgrade`` (and by ``run``/``once`` on start) with an
open connection, or by the ``alembic`` command with ``sqlalchemy.url`` set."""

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from worker.schema import metadata

# Workers that start together on one PostgreSQL database migrate one at a time.
MIGRATION_LOCK = 0x72616B6962  # "raqib"


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("alembic: set sqlalchemy.url or use 'raqib db upgrade'")
    with create_engine(url).connect() as conn:
        run(conn)
        conn.commit()
