"""Beyond keywords: alert kinds (spike, first_seen, quiet alerts without a story), spike
state, first sightings, quiet watches, silences, uptime

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("story_id", existing_type=BigId, nullable=True)
        batch.alter_column("article_id", existing_type=BigId, nullable=True)
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False,
                                   server_default="match"))
        batch.add_column(sa.Column("silenced_by", sa.String(length=26), nullable=True))
        batch.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_alerts_source_id_sources"), "sources",
                                 ["source_id"], ["id"])
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("kind", server_default=None)
    with op.batch_alter_table("rule_state") as batch:
        batch.add_column(sa.Column("spiking", sa.Boolean(), nullable=True))
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("running_since", When, nullable=True))
    op.create_index(op.f("ix_articles_source_id_fetched_at"), "articles",
                    ["source_id", "fetched_at"], unique=False)
    op.create_table(
        "sightings",
        sa.Column("id", BigId, nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=1000), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
        sa.UniqueConstraint("rule_id", "key", name=op.f("uq_sightings_rule_id_key")),
    )
    op.create_table(
        "quiet_watch",
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("since", When, nullable=False),
        sa.Column("quiet_at", When, nullable=True),
        sa.Column("alert_id", sa.String(length=26), nullable=True),
        sa.Column("silenced_by", sa.String(length=26), nullable=True),
        sa.Column("checked_at", When, nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name=op.f("fk_quiet_watch_source_id_sources"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_id", "source_id", name=op.f("pk_quiet_watch")),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=210), nullable=True),
        sa.Column("term", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("starts_at", When, nullable=False),
        sa.Column("ends_at", When, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index(op.f("ix_silences_ends_at"), "silences", ["ends_at"], unique=False)
    op.create_table(
        "uptime",
        sa.Column("id", BigId, nullable=False),
        sa.Column("started_at", When, nullable=False),
        sa.Column("ended_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uptime")),
    )


def downgrade() -> None:
    op.drop_table("uptime")
    op.drop_index(op.f("ix_silences_ends_at"), table_name="silences")
    op.drop_table("silences")
    op.drop_table("quiet_watch")
    op.drop_table("sightings")
    op.drop_index(op.f("ix_articles_source_id_fetched_at"), table_name="articles")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("running_since")
    with op.batch_alter_table("rule_state") as batch:
        batch.drop_column("spiking")
    op.execute("DELETE FROM alerts WHERE story_id IS NULL")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint(op.f("fk_alerts_source_id_sources"), type_="foreignkey")
        batch.drop_column("source_id")
        batch.drop_column("silenced_by")
        batch.drop_column("kind")
        batch.alter_column("article_id", existing_type=BigId, nullable=False)
        batch.alter_column("story_id", existing_type=BigId, nullable=False)
