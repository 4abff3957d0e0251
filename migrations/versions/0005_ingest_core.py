"""The ingest core: identity per source (item_keys, tombstones), versions, a (band, story)
index, held throttle rows, indexes for rates and throttles

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_constraint("uq_articles_content_hash", type_="unique")
        batch.drop_constraint("uq_articles_url_hash", type_="unique")
        batch.drop_constraint("uq_articles_source_id_guid_hash", type_="unique")
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False,
                                   server_default="1"))
        batch.create_unique_constraint(op.f("uq_articles_source_id_content_hash"),
                                       ["source_id", "content_hash"])
        batch.create_index(op.f("ix_articles_content_hash"), ["content_hash"], unique=False)
    with op.batch_alter_table("articles") as batch:
        batch.alter_column("version", server_default=None)

    op.create_table(
        "item_keys",
        sa.Column("id", BigId, nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("article_id", BigId, nullable=True),
        sa.Column("story_id", BigId, nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("seen_at", When, nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"],
                                name=op.f("fk_item_keys_article_id_articles"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name=op.f("fk_item_keys_source_id_sources"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_keys")),
        sa.UniqueConstraint("source_id", "key", name=op.f("uq_item_keys_source_id_key")),
    )
    op.create_index(op.f("ix_item_keys_article_id"), "item_keys", ["article_id"], unique=False)
    false = "false" if op.get_bind().dialect.name == "postgresql" else "0"
    for prefix, column in (("c:", "content_hash"), ("g:", "guid_hash"), ("u:", "url_hash")):
        op.execute(
            f"INSERT INTO item_keys (source_id, key, article_id, story_id, shared, seen_at) "
            f"SELECT source_id, '{prefix}' || {column}, id, story_id, {false}, fetched_at "
            f"FROM articles WHERE {column} IS NOT NULL")

    op.create_table(
        "story_index",
        sa.Column("id", BigId, nullable=False),
        sa.Column("band", sa.BigInteger(), nullable=False),
        sa.Column("story_id", BigId, nullable=False),
        sa.Column("article_id", BigId, nullable=False),
        sa.Column("at", When, nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"],
                                name=op.f("fk_story_index_article_id_articles"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"],
                                name=op.f("fk_story_index_story_id_stories"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_index")),
        sa.UniqueConstraint("band", "story_id", name=op.f("uq_story_index_band_story_id")),
    )
    op.create_index(op.f("ix_story_index_story_id"), "story_index", ["story_id"], unique=False)
    op.create_index(op.f("ix_story_index_article_id"), "story_index", ["article_id"],
                    unique=False)
    op.execute(
        "INSERT INTO story_index (band, story_id, article_id, at) "
        "SELECT b.band, a.story_id, MIN(a.id), MAX(a.fetched_at) FROM story_bands b "
        "JOIN articles a ON a.id = b.article_id WHERE a.story_id IS NOT NULL "
        "GROUP BY b.band, a.story_id")
    op.drop_index(op.f("ix_story_bands_article_id"), table_name="story_bands")
    op.drop_index(op.f("ix_story_bands_band"), table_name="story_bands")
    op.drop_table("story_bands")

    op.create_table(
        "held_alerts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("article_id", BigId, nullable=False),
        sa.Column("story_id", BigId, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("at", When, nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"],
                                name=op.f("fk_held_alerts_article_id_articles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_alerts")),
        sa.UniqueConstraint("rule_id", "story_id", name=op.f("uq_held_alerts_rule_id_story_id")),
    )
    bind = op.get_bind()
    rows = []
    for rule_id, held_json, at in bind.execute(sa.text(
            "SELECT rule_id, held, last_alert_at FROM rule_state "
            "WHERE held IS NOT NULL AND last_alert_at IS NOT NULL")):
        seen = set()
        for item in (json.loads(held_json) or {}).get("items") or []:
            if item["story_id"] in seen:
                continue
            seen.add(item["story_id"])
            rows.append({"rule_id": rule_id, "article_id": item["article_id"],
                         "story_id": item["story_id"], "title": item.get("title") or "",
                         "url": item.get("url"), "at": at})
    if rows:   # the raw values as stored, whatever type the driver gives them
        bind.execute(sa.text(
            "INSERT INTO held_alerts (rule_id, article_id, story_id, title, url, at) "
            "VALUES (:rule_id, :article_id, :story_id, :title, :url, :at)"), rows)
    with op.batch_alter_table("rule_state") as batch:
        batch.drop_column("held")
        batch.drop_column("last_alert_at")
    op.create_index(op.f("ix_alerts_rule_id_created_at"), "alerts", ["rule_id", "created_at"],
                    unique=False)
    op.create_index(op.f("ix_deliveries_channel_sent_at"), "deliveries", ["channel", "sent_at"],
                    unique=False)


def downgrade() -> None:
    raise NotImplementedError("0005 cannot be undone: restore the database from a backup")
