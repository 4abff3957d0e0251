"""JSON Feed 1.0 and 1.1 read into the same Articles, with the same keys, as RSS and Atom."""

from __future__ import annotations

import codecs
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker import dedupe
from worker.errors import ParseError
from worker.parse import read_feed

from conftest import DATA

FILES = DATA / "jsonfeed"
NOW = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)
BASE = "https://news.example/ar/feeds/main.json"


def read(name: str, url: str | None = BASE, **kw: object) -> list[dict[str, object]]:
    feed = read_feed((FILES / name).read_bytes(), source="s", url=url, now=NOW, **kw)  # type: ignore[arg-type]
    assert feed.version == "json"
    return [{"title": a.title, "summary": a.summary, "body": a.body, "url": a.url,
             "guid": a.guid, "published": a.published, "lang": a.feed_language}
            for a in feed.articles]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("name", "expected"), [
    ("spec-1.1.json", [
        {"title": "", "summary": "", "body": "This is a second item.",
         "url": "https://example.org/second-item", "guid": "2",
         "published": utc(2026, 11, 28, 19, 0), "lang": "en"},
        {"title": "", "summary": "", "body": "Hello, world!",
         "url": "https://example.org/initial-post", "guid": "1",
         "published": utc(2026, 11, 27, 14, 30), "lang": "en"},
    ]),
    ("micro-1.0.json", [
        {"title": "", "summary": "",
         "body": "Landed in Erbil after a long night. Rockets reported near Ain al-Asad & "
                 "nothing else.",
         "url": "https://www.manton.org/2026/11/28/erbil.html",
         "guid": "http://manton.micro.blog/2026/11/28/erbil.html",
         "published": utc(2026, 11, 28, 20, 55), "lang": None},
        {"title": "", "summary": "", "body": "",
         "url": "https://www.manton.org/2026/11/27/photo.html",
         "guid": "http://manton.micro.blog/2026/11/27/photo.html",
         "published": utc(2026, 11, 27, 8, 0), "lang": None},
    ]),
    ("arabic-relative-1.1.json", [   # numeric ids, relative links, a date in Arabic, a 2099 typo
        {"title": "انسحاب قوات التحالف من قاعدة عين الأسد",
         "summary": "أعلنت قيادة العمليات المشتركة اكتمال الانسحاب.",
         "body": "أعلنت قيادة العمليات المشتركة اكتمال انسحاب قوات التحالف الدولي من قاعدة "
                 "عين الأسد الجوية.",
         "url": "https://news.example/ar/news/2026/11/28/90417", "guid": "90417",
         "published": utc(2026, 11, 28, 17, 55), "lang": "ar"},
        {"title": "افتتاح جسر جديد في أربيل", "summary": "", "body": "افتتح محافظ أربيل جسرا جديدا.",
         "url": "https://news.example/ar/feeds/news/2026/11/28/90418", "guid": "90418",
         "published": utc(2026, 11, 29, 10, 30), "lang": "ar-IQ"},
        {"title": "رابط خارجي", "summary": "", "body": "نص",
         "url": "https://other.example/story/90419", "guid": "90419",
         "published": utc(2026, 11, 28, 21, 0), "lang": "ar"},
    ]),
    ("npr-style-1.0.json", [   # items that are not objects are skipped; a mailto: is no link
        {"title": "Coalition Hands Over Last Bases In Iraq", "summary": "",
         "body": "The handover of Ain al-Asad completes the withdrawal.",
         "url": "https://www.npr.example/2026/11/28/573520553/coalition-hands-over",
         "guid": "573520553", "published": utc(2026, 11, 28, 18, 5), "lang": None},
        {"title": "Markets", "summary": "", "body": "Stocks rose.", "url": None,
         "guid": "573520554", "published": None, "lang": None},
    ]),
    ("no-version.json", [
        {"title": "Rockets hit Ain al-Asad", "summary": "", "body": "Two rockets.",
         "url": "https://news.example/a/1", "guid": "a-1",
         "published": datetime(2026, 11, 28, 20, 55, 0, 123000, tzinfo=UTC), "lang": None},
    ]),
])
def test_json_feeds(name: str, expected: list[dict[str, object]]) -> None:
    assert read(name) == expected


def test_without_a_document_url_links_resolve_against_feed_url() -> None:
    feed = {"version": "https://jsonfeed.org/version/1.1", "feed_url": "https://x.example/f/",
            "items": [{"id": "1", "url": "a/1", "content_text": "t"}]}
    [a] = read_feed(json.dumps(feed).encode(), source="s", now=NOW).articles
    assert a.url == "https://x.example/f/a/1"


@pytest.mark.parametrize("encode", [
    lambda s: s.encode(),
    lambda s: codecs.BOM_UTF8 + s.encode(),
    lambda s: s.encode("utf-16"),   # with its BOM
    lambda s: s.encode("utf-8").replace("قاعدة".encode(), "قاعدة".encode()[:-1], 1),   # a cut letter
], ids=["utf-8", "utf-8 BOM", "utf-16 BOM", "one bad byte"])
def test_json_feed_bytes(encode: object) -> None:
    text = json.dumps({"version": "https://jsonfeed.org/version/1", "items": [
        {"id": "1", "title": "عين الأسد", "content_text": "قاعدة عين الأسد الجوية"}]},
        ensure_ascii=False)
    feed = read_feed(encode(text), source="s", now=NOW)  # type: ignore[operator]
    [a] = feed.articles
    assert a.title == "عين الأسد"
    assert "عين الأسد الجوية" in a.body


def test_same_keys_as_the_same_item_in_rss() -> None:
    rss = (b"<rss version='2.0'><channel><item><title>Rockets hit Ain al-Asad</title>"
           b"<link>/a/1</link><guid isPermaLink='false'>a-1</guid>"
           b"<description>Two rockets.</description></item></channel></rss>")
    [from_rss] = read_feed(rss, source="s", url="https://news.example/feed.xml").articles
    [from_json] = read_feed((FILES / "no-version.json").read_bytes(), source="s",
                            url="https://news.example/feed.json", now=NOW).articles
    a, b = dedupe.prepare(from_rss), dedupe.prepare(from_json)
    assert (a.guid_hash, a.url_hash) == (b.guid_hash, b.url_hash)
    assert from_rss.body == "" and from_rss.summary == "Two rockets."
    assert from_json.body == "Two rockets."


@pytest.mark.parametrize(("body", "message"), [
    (b"[]", "got JSON that is not a JSON Feed (an array, not an object)"),
    (b' \n [{"id": 1}]', "got JSON that is not a JSON Feed (an array, not an object)"),
    (b'{"version": "x"}', "got JSON that is not a JSON Feed (version 'x')"),
    (b'{"data": {"items": []}}', "got JSON that is not a JSON Feed (no version and no items)"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "title": "t"}',
     "a JSON Feed without a list of items"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": [,]}',
     "got JSON that does not parse"),
])
def test_json_that_is_no_json_feed(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=r"^parse: not a readable feed: ") as err:
        read_feed(body, source="s")
    assert message in str(err.value)


def test_empty_json_feed_is_no_error() -> None:
    feed = read_feed(b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', source="s")
    assert feed.articles == []


@pytest.mark.parametrize("path", sorted(FILES.glob("*.json")), ids=lambda p: p.name)
def test_every_file_is_valid_json(path: Path) -> None:
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
