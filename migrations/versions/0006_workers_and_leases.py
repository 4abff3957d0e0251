"""Several workers: poll leases on sources, delivery leases, named leases (tasks, host
slots), the workers' heartbeats

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    for table in ("sources", "deliveries"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("lease_holder", sa.String(length=26), nullable=True))
            batch.add_column(sa.Column("lease_expires", When, nullable=True))
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("started_at", When, nullable=False),
        sa.Column("beat_at", When, nullable=False),
        sa.Column("stopped_at", When, nullable=True),
        sa.Column("schema_version", sa.String(length=40), nullable=False),
        sa.Column("rules_digest", sa.String(length=64), nullable=False),
        sa.Column("config_digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("holder", sa.String(length=26), nullable=True),
        sa.Column("expires_at", When, nullable=True),
        sa.Column("last_done", When, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("workers")
    for table in ("deliveries", "sources"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lease_expires")
            batch.drop_column("lease_holder")
