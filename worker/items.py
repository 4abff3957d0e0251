"""Plain data passed between the stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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
