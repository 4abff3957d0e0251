"""when: windows and throttle: rule hits, rule state, alert details

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rule_hits",
        sa.Column("id", BigId, nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("article_id", BigId, nullable=False),
        sa.Column("story_id", BigId, nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"],
                                name=op.f("fk_rule_hits_article_id_articles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_hits")),
        sa.UniqueConstraint("rule_id", "article_id", name=op.f("uq_rule_hits_rule_id_article_id")),
    )
    op.create_index(op.f("ix_rule_hits_rule_id_at"), "rule_hits", ["rule_id", "at"], unique=False)
    op.create_table(
        "rule_state",
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_alert_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("held", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_rule_state")),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("detail")
    op.drop_table("rule_state")
    op.drop_index(op.f("ix_rule_hits_rule_id_at"), table_name="rule_hits")
    op.drop_table("rule_hits")
