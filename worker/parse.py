"""Parsing: feed bytes (RSS, Atom, RDF through feedparser; JSON Feed) and seed documents into
Articles.

Reading a feed document, in one pass:

1. What it is: an image, an archive, an empty body or an HTML page is refused at once with an
   error that says so (``parse: not a readable feed: got a PNG image``), without parsing.
2. Its characters: ``worker.charset`` decides the encoding (byte-order mark, valid UTF-8, the
   header and the declaration, a detector) and feedparser is handed UTF-8 it need not guess
   about. One bad byte costs one character and a warning, never the feed.
3. JSON (``worker.jsonfeed``) or feedparser, once, without its sanitizer and relative-URI
   resolution inside HTML: every text is stored as plain text, so neither would survive.
4. Articles: titles, summaries and bodies as plain text (an HTML title is turned into its text,
   its entities decoded); links resolved against xml:base, else the document's final URL, as a
   browser does (by feedparser, told the URL, when the document has an xml:base; otherwise
   after parsing, the same result without feedparser's per-element base bookkeeping); dates as
   ``worker.dates`` reads and checks them.

GUIDs are kept as written. feedparser, told a base, would also resolve a permalink GUID
(``<guid>1234</guid>`` becomes ``http://host/feeds/1234``) and so change the identity key of
every item of the many feeds that number their items without ``isPermaLink="false"``; its
parsers are told not to (``can_be_relative_uri`` without ``id``). An item with no link but a
permalink GUID has the GUID for its link only when it is a URL or a path (it holds a "/"),
resolved as a link is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import feedparser.api
from bs4 import BeautifulSoup

from worker import jsonfeed, sniff
from worker.charset import decide
from worker.dates import DateReader
from worker.errors import ParseError
from worker.htmltext import clean_space, html_to_text
from worker.items import Article
from worker.links import web_url

# What feedparser flags about a document it read anyway: no reason to call a feed broken.
BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}
SEED_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm"}
NOT_A_FEED = jsonfeed.NOT_A_FEED
FEED_ROOTS = {"rss", "feed", "rdf:rdf", "rdf", "channel", "item", "entry"}
_FIRST = re.compile(r"\S")
_XML_BASE = re.compile(rb"\sbase\s*=|:base\s*=")

for _parser in (feedparser.api.StrictFeedParser, feedparser.api.LooseFeedParser):
    _parser.can_be_relative_uri = frozenset(_parser.can_be_relative_uri) - {"id"}


@dataclass(frozen=True, slots=True)
class Feed:
    """What a feed document gave: its articles, and the faults read past (``parse: …``)."""

    articles: list[Article]
    warnings: tuple[str, ...] = ()
    version: str = ""            # feedparser's name for the format ("rss20", "atom10" …) or "json"


def _text(value: str, detail: Mapping[str, Any] | None) -> str:
    kind = (detail or {}).get("type", "text/plain")
    return html_to_text(value) if kind in HTML_TYPES else clean_space(value)


def one_line(text: str) -> str:
    """*text* on one line, its runs of white space folded to one space."""
    return " ".join(text.split())


def title_text(entry: Mapping[str, Any]) -> str:
    """The title of a feedparser entry as plain text: an HTML (or XHTML) title is turned into
    its text, entities decoded; a text title is kept, white space folded."""
    return one_line(_text(entry.get("title", ""), entry.get("title_detail")))


def _entry_url(entry: Mapping[str, Any], base: str | None) -> str | None:
    link = entry.get("link")
    if link and not any(lk.get("href") == link for lk in entry.get("links") or ()) \
            and "/" not in link:
        return None   # a permalink GUID taken for the link that is no path: "1234", "a-1"
    return web_url(link, base)


def read_feed(data: bytes, *, source: str, url: str | None = None,
              headers: Mapping[str, str] | None = None, tags: tuple[str, ...] = (),
              now: datetime | None = None) -> Feed:
    """The articles of a feed document read from *url* (its final URL, after redirects: the
    base of its relative links) with the response *headers*, at *now* (what dates after it
    are judged against). Raises ParseError, saying what the document is, when it holds no feed;
    a feed with minor errors (feedparser's "bozo") still gives what it could read."""
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    kind = sniff.binary_kind(data)
    if kind is not None:
        raise ParseError(f"{NOT_A_FEED} {kind}")
    decoded = decide(data, lower.get("content-type"))
    warnings = (decoded.warning,) if decoded.warning else ()
    text = decoded.text
    first = _FIRST.search(text)
    start = first.group() if first else ""
    if not start:
        raise ParseError(f"{NOT_A_FEED} an empty document")
    dates = DateReader(now or datetime.now(UTC), lower.get("content-language"))
    if start in "{[":
        obj = jsonfeed.load(text)
        return Feed(jsonfeed.articles(obj, source=source, base=url, tags=tags, dates=dates,
                                      language=lower.get("content-language")),
                    warnings, "json")
    if sniff.is_html(text):
        link = sniff.feed_link(text, url)
        raise ParseError(f"{NOT_A_FEED} an HTML page" +
                         (f" (it names its feed: {link})" if link else ""))
    # feedparser is told the document is UTF-8, which it now is. Links resolve against the URL
    # the document was read from (not a Content-Location the server sent: browsers ignore it
    # too): by feedparser when the document has an xml:base to combine with it, else after
    # parsing, which is the same and cheaper (told a base, feedparser resolves one at every
    # element of the document).
    told = {"content-type": "application/xml; charset=utf-8"}
    if "content-language" in lower:
        told["content-language"] = lower["content-language"]
    utf8 = decoded.utf8(data)
    if url and _XML_BASE.search(utf8):
        told["content-location"] = url
    parsed = feedparser.parse(utf8, response_headers=told,
                              sanitize_html=False, resolve_relative_uris=False)
    if not parsed.entries:
        _refuse_empty(parsed, text)
    feed_lang = parsed.feed.get("language") or lower.get("content-language")
    dates.language = feed_lang
    out = []
    for entry in parsed.entries:
        summary = _text(entry.get("summary", ""), entry.get("summary_detail"))
        body = ""
        for content in entry.get("content", []):
            body = _text(content.get("value", ""), content)
            if body:
                break
        if body == summary:
            summary = ""   # many feeds repeat the body as the summary
        out.append(Article(
            source=source, title=title_text(entry), summary=summary, body=body,
            url=_entry_url(entry, url), guid=entry.get("id") or None,
            published=dates.entry(entry), tags=tags,
            feed_language=entry.get("language") or feed_lang,
        ))
    return Feed(out, warnings, parsed.get("version") or "")


def _refuse_empty(parsed: feedparser.FeedParserDict, text: str) -> None:
    """Raise ParseError for a document that gave no entries, unless it is a feed that is
    empty (a format, and no error beyond a benign one)."""
    problem = parsed.get("bozo_exception")
    if not parsed.get("version"):
        what = sniff.text_kind(text)
        root = what.split("<", 1)[1].split(">", 1)[0].lower() if "<" in what else ""
        if problem is not None and root in FEED_ROOTS:   # a feed, broken
            raise ParseError(f"parse: not a readable feed: {problem}")
        raise ParseError(f"{NOT_A_FEED} {what}")
    if parsed.bozo and not isinstance(problem, BENIGN):
        raise ParseError(f"parse: not a readable feed: {problem}")


def parse_feed(data: bytes, *, source: str, url: str | None = None,
               headers: Mapping[str, str] | None = None, tags: tuple[str, ...] = (),
               now: datetime | None = None) -> list[Article]:
    """The articles of a feed document (``read_feed`` without its warnings)."""
    return read_feed(data, source=source, url=url, headers=headers, tags=tags,
                     now=now).articles


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
