"""The database schema: SQLAlchemy 2 models, portable between SQLite and PostgreSQL.

Identity is per source (rules.md, Alerts): ``item_keys`` holds every GUID, canonical-URL and text
hash a source has shown, pointing at the newest version of its item, and outlives pruning (a
tombstone), so a pruned item is not new again. The same text is stored once per source (a
unique constraint, the last word when two workers race); copies from other sources are
articles of the same story. An alert is unique per (rule, story); a delivery per (alert,
channel).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Explicit constraint names keep migrations identical on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        when: datetime = value
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Source(Base):
    """A feed or a seed folder, with its health."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))           # feed | seed
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_poll: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_poll: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moved_to: Mapped[str | None] = mapped_column(Text)   # a permanent redirect's target
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The poll lease: the worker polling the source now, until when (renewed by heartbeats).
    lease_holder: Mapped[str | None] = mapped_column(String(26))
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SeedFile(Base):
    """A file of a seed folder as last read: re-read only when it changed."""

    __tablename__ = "seed_files"
    __table_args__ = (UniqueConstraint("source_id", "path"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Story(Base):
    """Articles that tell the same news. Alerts are raised per (rule, story)."""

    __tablename__ = "stories"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Article(Base):
    """One version of one item of one source. An item updated in place (same GUID or link,
    new text) gets a new row, ``version`` one higher, in the same story."""

    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("source_id", "content_hash"),
        Index(None, "content_hash"),
        Index(None, "fetched_at"),
        Index(None, "story_id"),
        Index(None, "source_id", "fetched_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"))
    guid: Mapped[str | None] = mapped_column(Text)
    guid_hash: Mapped[str | None] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text)
    url_hash: Mapped[str | None] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    published: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)   # MinHash, for stories


class ItemKey(Base):
    """A key a source has shown (``c:``/``g:``/``u:`` + hash), what it points to, and whether
    it was found shared by different items (then it identifies nothing). Kept when the
    article is pruned."""

    __tablename__ = "item_keys"
    __table_args__ = (UniqueConstraint("source_id", "key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL"), index=True)
    story_id: Mapped[int | None] = mapped_column(BigId)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoryIndex(Base):
    """The locality-sensitive hashing index of stories: one row per (band, story), naming the
    story's first article that carries the band; ``at`` is when the story last took an
    article with it (a story takes copies for ``stories.HORIZON`` after that). A wire flood
    of a hundred copies adds no rows once their bands are known."""

    __tablename__ = "story_index"
    __table_args__ = (UniqueConstraint("band", "story_id"), Index(None, "story_id"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    band: Mapped[int] = mapped_column(BigInteger)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"),
                                            index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Alert(Base):
    """An alert: on a story (unique per rule), or for a ``quiet`` source (no story). Held
    back by a silence (``silenced_by``), it has no deliveries."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("rule_id", "story_id"), Index(None, "created_at"),
                      Index(None, "rule_id", "created_at"))
    id: Mapped[str] = mapped_column(String(26), primary_key=True)       # a ULID
    rule_id: Mapped[str] = mapped_column(String(200))
    rule_title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"))
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[str | None] = mapped_column(Text)   # JSON: a window's count, what a
    #                                                    throttle held back, a spike's …
    kind: Mapped[str] = mapped_column(String(16), default="match")
    silenced_by: Mapped[str | None] = mapped_column(String(26))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))   # quiet alerts


class RuleHit(Base):
    """An article a windowed (`when:`) rule matched, for counting its window."""

    __tablename__ = "rule_hits"
    __table_args__ = (UniqueConstraint("rule_id", "article_id"), Index(None, "rule_id", "at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(200))
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    story_id: Mapped[int] = mapped_column(BigId)
    source_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleState(Base):
    """Per rule: when its window last fired; whether a spike it alerted is still on."""

    __tablename__ = "rule_state"
    rule_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    spiking: Mapped[bool | None] = mapped_column(Boolean)


class Sighting(Base):
    """A first_seen rule's memory: when it last matched a story with this key (an entity
    id, a term as written, or "" for the rule itself)."""

    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("rule_id", "key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(1000))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class QuietWatch(Base):
    """A quiet rule's watch of one source: its last news seen (or when the watch began) and
    the quiet spell open since then, with its alert."""

    __tablename__ = "quiet_watch"
    rule_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"),
                                           primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    quiet_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alert_id: Mapped[str | None] = mapped_column(String(26))
    silenced_by: Mapped[str | None] = mapped_column(String(26))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SilenceRow(Base):
    """A silence (rules.md, Silences): mutes the alerts it matches from start to end."""

    __tablename__ = "silences"
    __table_args__ = (Index(None, "ends_at"),)
    id: Mapped[str] = mapped_column(String(26), primary_key=True)       # a ULID
    rule_id: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(210))   # a name or tag:NAME
    term: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Uptime(Base):
    """When raqib was running, from the rows of workers forgotten by housekeeping (merged
    spans): quiet rules count only running time."""

    __tablename__ = "uptime"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HeldAlert(Base):
    """A story a throttle held back: it rides on the rule's next alert, or is flushed once
    the window has passed."""

    __tablename__ = "held_alerts"
    __table_args__ = (UniqueConstraint("rule_id", "story_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(200))
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    story_id: Mapped[int] = mapped_column(BigId)
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Match(Base):
    """Why an alert was raised: one row per term hit, as the article had it."""

    __tablename__ = "matches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    term: Mapped[str] = mapped_column(Text)
    field: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    snippet: Mapped[str] = mapped_column(Text)


class Delivery(Base):
    """The outbox: one row per (alert, channel), written with the alert, sent by the delivery
    job. Status: pending (to send at next_attempt), sent, or dead (gave up)."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "channel"),
                      Index(None, "status", "next_attempt"), Index(None, "channel", "sent_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The delivery lease: the worker sending it now, until when (renewed by heartbeats).
    lease_holder: Mapped[str | None] = mapped_column(String(26))
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Worker(Base):
    """A raqib process sharing the database: who it is, when it last beat, what it runs."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)      # a ULID
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    schema_version: Mapped[str] = mapped_column(String(40))   # the migration head it expects
    rules_digest: Mapped[str] = mapped_column(String(64))
    config_digest: Mapped[str] = mapped_column(String(64))
    # Since when it has been beating without a gap longer than a lease (a suspended machine,
    # a stopped process): quiet rules count running time from here; gaps go to ``uptime``.
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Lease(Base):
    """A named lease: a recurring task (``digest:<channel>``, ``held``, ``retention``,
    ``vacuum``), with the time of its last round, or a slot of a host's request limit
    (``host:<name>#<n>``)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(26))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_done: Mapped[datetime | None] = mapped_column(UTCDateTime)


metadata = Base.metadata
