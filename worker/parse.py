"""Parsing: feed bytes (feedparser) and seed documents into Articles.

A title is stored exactly as feedparser reads it by default (it may hold markup when its feed
says it is HTML; matching reads its text). Summaries and bodies are stored as plain text, so
feedparser runs without its sanitizer and relative-URI resolution, which would be thrown away
(less than half the parse time); the few HTML titles get the same two steps afterwards, through
feedparser's own functions. tests/test_feedparser_suite.py holds the titles to feedparser's
default reading over its whole test suite.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
from bs4 import BeautifulSoup
from feedparser.sanitizer import _sanitize_html as sanitize_html
from feedparser.urls import resolve_relative_uris

from worker.errors import ParseError
from worker.htmltext import clean_space, html_to_text, strip_control
from worker.items import Article

# What feedparser flags about a document it read anyway: no reason to call a feed broken.
BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}
SEED_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm"}


def _text(value: str, detail: Mapping[str, Any] | None) -> str:
    kind = (detail or {}).get("type", "text/plain")
    return html_to_text(value) if kind in HTML_TYPES else clean_space(value)


def _when(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        st = entry.get(key)
        if st:
            try:
                return datetime.fromtimestamp(calendar.timegm(st), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _web_url(link: str | None) -> str | None:
    """The entry's link when it is an absolute web URL (feedparser also offers a permalink
    GUID such as "g1" as the link)."""
    return link if link and link.startswith(("http://", "https://")) else None


def _default_title(entry: Mapping[str, Any], encoding: str) -> str:
    """The title as feedparser's default parse gives it: an HTML title has its relative URIs
    resolved and its markup sanitized, as feedparser's ``pop`` does for titles."""
    title: str = entry.get("title", "")
    detail = entry.get("title_detail") or {}
    kind = detail.get("type", "text/plain")
    if not title or kind not in HTML_TYPES:
        return title
    title = resolve_relative_uris(title, detail.get("base", ""), encoding, kind)
    return str(sanitize_html(title, encoding, kind))


def parse_feed(data: bytes, *, source: str, headers: Mapping[str, str] | None = None,
               tags: tuple[str, ...] = ()) -> list[Article]:
    """Articles of a feed document. Raises ParseError when the bytes hold no feed at all; a feed
    with minor errors (feedparser's "bozo") still gives what it could read."""
    parsed = feedparser.parse(data, response_headers=dict(headers or {}),
                              sanitize_html=False, resolve_relative_uris=False)
    if not parsed.entries:
        problem = parsed.get("bozo_exception")
        if not parsed.get("version") or (parsed.bozo and not isinstance(problem, BENIGN)):
            raise ParseError(f"parse: not a readable feed: "
                             f"{problem or 'no feed entries and no feed format'}")
    feed_lang = parsed.feed.get("language") or (headers or {}).get("content-language")
    out = []
    for entry in parsed.entries:
        title = strip_control(_default_title(entry, parsed.get("encoding") or "utf-8"))
        summary = _text(entry.get("summary", ""), entry.get("summary_detail"))
        body = ""
        for content in entry.get("content", []):
            body = _text(content.get("value", ""), content)
            if body:
                break
        if body == summary:
            summary = ""   # many feeds repeat the body as the summary
        out.append(Article(
            source=source, title=title, summary=summary, body=body,
            url=_web_url(entry.get("link")), guid=entry.get("id") or None,
            published=_when(entry), tags=tags,
            feed_language=entry.get("language") or feed_lang,
        ))
    return out


def main_text(page: bytes, url: str) -> str | None:
    """The main text of an article's web page (trafilatura), or None when it finds none."""
    import trafilatura  # noqa: PLC0415 (loaded only by sources with full_text: true)

    text = trafilatura.extract(page, url=url, favor_precision=True, include_comments=False,
                               include_tables=False)
    return clean_space(text) if text else None


def parse_seed(path: Path, data: bytes, *, source: str, tags: tuple[str, ...] = (),
               guid: str | None = None) -> Article | None:
    """A seed document (title line, lede line, a line '-', then the body; the first body line
    may be a caption) or any text, Markdown or HTML file, titled with its file name. None for
    a file with no text at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"parse: {path}: not UTF-8 text (byte {exc.start})") from exc
    if not text.strip():
        return None
    url = path.resolve().as_uri()
    lines = text.replace("\r\n", "\n").split("\n")
    suffix = path.suffix.lower()
    if suffix in {".html", ".htm"}:
        soup = BeautifulSoup(text, "html.parser")
        title_tag = clean_space(soup.title.get_text(" ")) if soup.title else ""
        return Article(source=source, title=title_tag or path.name, body=html_to_text(text),
                       url=url, guid=guid, tags=tags)
    if len(lines) >= 3 and lines[2].strip() == "-" and lines[0].strip():
        return Article(source=source, title=clean_space(lines[0]), summary=clean_space(lines[1]),
                       body=clean_space("\n".join(lines[3:])), url=url, guid=guid, tags=tags)
    return Article(source=source, title=path.name, body=clean_space(text), url=url, guid=guid,
                   tags=tags)
