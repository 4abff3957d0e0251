"""Parsing: feed bytes (feedparser) and seed documents into Articles.

feedparser is called with sanitizing and relative-URI resolution off: raqib extracts plain text
anyway and every channel escapes what it shows, so the work would be thrown away.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
from bs4 import BeautifulSoup

from worker.errors import ParseError
from worker.items import Article

_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MARKUP = re.compile(r"<[a-zA-Z!/?]|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
# What feedparser flags about a document it read anyway: no reason to call a feed broken.
BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}
SEED_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm"}
TITLE_FROM_TEXT = 120


def clean_space(text: str) -> str:
    """Fold runs of spaces, keep paragraph breaks, drop control characters (a NUL from a
    broken feed would be refused by PostgreSQL)."""
    text = _CONTROL.sub("", text)
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or page; text without markup passes through."""
    if not _MARKUP.search(html):
        return clean_space(html)
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return clean_space(soup.get_text(" "))


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
        title = _text(entry.get("title", ""), entry.get("title_detail"))
        summary = _text(entry.get("summary", ""), entry.get("summary_detail"))
        body = ""
        for content in entry.get("content", []):
            body = _text(content.get("value", ""), content)
            if body:
                break
        if body == summary:
            summary = ""   # many feeds repeat the body as the summary
        if not title:
            title = (summary or body)[:TITLE_FROM_TEXT].split("\n")[0] or "(untitled)"
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
