"""The values that cross stages: what a feed item becomes on its way to an alert.

Plain, immutable where they can be, and free of I/O: the parser makes ``Article``; the ingestor
adds ``Keys`` and a ``Signature`` (see ``worker.stories``); the rules produce ``Explanation``; the
alert policy works on ``Candidate``, ``HitRecord``, ``HeldRecord`` and ``AlertRecord`` over a
ledger (SQL live, in memory for ``backtest``). This module imports nothing of ours but the HTML
helper that reads a marked-up title as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from worker.htmltext import MARKUP, html_to_text


@dataclass(slots=True)
class Article:
    """One parsed item from a feed or a seed document, before it is stored."""

    source: str
    title: str
    summary: str = ""
    body: str = ""
    url: str | None = None
    guid: str | None = None
    published: datetime | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    feed_language: str | None = None   # what the feed declared, a hint for detection
    extra: dict[str, str] = field(default_factory=dict)

    def field_text(self, name: str) -> str:
        """The text of a field as matching reads it: a title that holds markup (an HTML title,
        stored as the feed had it) is read as its text."""
        text: str = getattr(self, name)
        if name == "title" and MARKUP.search(text):
            return html_to_text(text)
        return text


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a rule matched: the term as written, where, and the text as it stood."""

    term: str
    field: str
    text: str
    snippet: str

    def as_dict(self) -> dict[str, str]:
        return {"term": self.term, "field": self.field, "text": self.text, "snippet": self.snippet}


@dataclass(frozen=True, slots=True)
class Keys:
    """The identity keys of one item within its source, as 32-hex-digit hashes.

    ``guid`` and ``url`` are ``None`` when the item has none, or when the fetch showed them to
    be no identity (several different items of one feed sharing them). ``content`` is the hash
    of the normalized text and always present."""

    content: str
    guid: str | None = None
    url: str | None = None

    def all(self) -> list[str]:
        """The keys as stored in ``item_keys``: ``c:``, ``g:`` and ``u:`` prefixed."""
        out = ["c:" + self.content]
        if self.guid:
            out.append("g:" + self.guid)
        if self.url:
            out.append("u:" + self.url)
        return out


@dataclass(frozen=True, slots=True)
class KnownKey:
    """What the database knows of one key of a source: the article (None once pruned: a
    tombstone) and story it points to, the GUID and URL hashes of that article, and whether
    the key was found to be shared by different items (then it identifies nothing), and the
    version number of that article."""

    article_id: int | None
    story_id: int | None
    guid: str | None
    url: str | None
    shared: bool = False
    version: int = 1


@dataclass(frozen=True, slots=True)
class SpikeSpec:
    """``spike:``: at least ``min_count`` stories in ``within`` and ``factor`` times the mean
    per ``within`` over the ``baseline`` before."""

    within: timedelta
    baseline: timedelta
    factor: float
    min_count: int


@dataclass(frozen=True, slots=True)
class FirstSeenSpec:
    """``first_seen:``: new when the rule (``by: rule``), an entity or a term matched no story
    in the preceding ``within``."""

    by: str
    within: timedelta


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """What alerting needs of one rule: id, title, severity, channels, and its stateful parts
    (``when``: count, within, distinct_sources; ``spike``; ``first_seen``; ``quiet``: its
    within; ``throttle``). ``labels`` names entities for alerts that show them."""

    rule_id: str
    rule_title: str
    severity: str
    channels: tuple[str, ...]
    when: tuple[int, timedelta, bool] | None = None
    throttle: timedelta | None = None
    spike: SpikeSpec | None = None
    first_seen: FirstSeenSpec | None = None
    quiet: timedelta | None = None
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> str:
        """``match``, ``window``, ``spike``, ``first_seen`` or ``quiet``."""
        if self.when is not None:
            return "window"
        if self.spike is not None:
            return "spike"
        if self.first_seen is not None:
            return "first_seen"
        return "quiet" if self.quiet is not None else "match"

    @property
    def counts_hits(self) -> bool:
        """Whether the rule's decisions count its earlier hits (windows and spikes)."""
        return self.when is not None or self.spike is not None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored article that matched a rule: the input of the alert policy. ``at`` is when
    raqib stored the article (windows and throttles count in that time)."""

    spec: AlertSpec
    article_id: int
    story_id: int
    source_id: int
    title: str
    url: str | None
    at: datetime
    explanations: tuple[Explanation, ...] = ()
    # What a first_seen rule looks for as new: the entity ids or terms of the match (by
    # entity, by term), or the rule itself ("" for by: rule).
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HitRecord:
    """A match of a windowed rule, as the ledger keeps it."""

    rule_id: str
    article_id: int
    story_id: int
    source_id: int
    at: datetime
    title: str = ""
    url: str | None = None


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """A story a throttle held back, to ride on the rule's next alert or be flushed."""

    rule_id: str
    article_id: int
    story_id: int
    title: str
    url: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert to write: with its matches and one outbox row per channel (none when a
    silence holds it: ``silenced_by``). A ``quiet`` alert is about a source (``source_id``)
    and has no story or article."""

    id: str
    rule_id: str
    rule_title: str
    severity: str
    story_id: int | None
    article_id: int | None
    created_at: datetime
    channels: tuple[str, ...]
    explanations: tuple[Explanation, ...] = ()
    detail: dict[str, Any] | None = None
    title: str = ""
    url: str | None = None
    kind: str = "match"
    silenced_by: str | None = None
    source_id: int | None = None


# When raqib was running: (start, end).
Span = tuple[datetime, datetime]


def merge_spans(spans: Sequence[Span]) -> list[Span]:
    """Running spans, overlapping and touching ones merged, in order (empty ones dropped)."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


@dataclass(frozen=True, slots=True)
class News:
    """An article a source stored: when, and what (for a quiet spell's resolved notice)."""

    at: datetime
    article_id: int
    title: str
    url: str | None


@dataclass(frozen=True, slots=True)
class QuietState:
    """Where a quiet rule's watch of one source stands: its last news seen (or when the
    watch began), and the quiet spell open since then, if any (``quiet_at``: when it became
    quiet; ``alert_id``: the alert raised for it)."""

    rule_id: str
    source_id: int
    since: datetime
    quiet_at: datetime | None = None
    alert_id: str | None = None
    silenced_by: str | None = None   # the silence that held the spell's alert back
    checked_at: datetime | None = None   # the last check of the watch


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes alerts from ``starts_at`` to ``ends_at``: those of ``rule_id``, of ``source`` (a
    name or ``tag:NAME``), about an article holding ``term``; every one given must hold."""

    id: str
    starts_at: datetime
    ends_at: datetime
    rule_id: str | None = None
    source: str | None = None
    term: str | None = None
    created_by: str = ""
    comment: str = ""
    created_at: datetime | None = None

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at
