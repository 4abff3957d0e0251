"""stories: article signatures and the LSH band index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("signature", sa.LargeBinary(), nullable=True))
    op.create_table(
        "story_bands",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("band", sa.BigInteger(), nullable=False),
        sa.Column("article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"],
                                name=op.f("fk_story_bands_article_id_articles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_bands")),
    )
    op.create_index(op.f("ix_story_bands_band"), "story_bands", ["band"], unique=False)
    op.create_index(op.f("ix_story_bands_article_id"), "story_bands", ["article_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_story_bands_article_id"), table_name="story_bands")
    op.drop_index(op.f("ix_story_bands_band"), table_name="story_bands")
    op.drop_table("story_bands")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("signature")
