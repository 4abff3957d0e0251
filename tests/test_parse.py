"""Parsing feeds (as feedparser reads them) and seed documents."""

from __future__ import annotations

from pathlib import Path

import feedparser
import pytest

from worker.errors import ParseError
from worker.htmltext import html_to_text
from worker.parse import parse_feed, parse_seed

from conftest import DATA, ROOT

FEEDS = sorted((DATA / "feeds").glob("*.xml"))


@pytest.mark.parametrize("path", FEEDS, ids=lambda p: p.name[:50])
def test_feeds_read_as_feedparser_reads_them(path: Path) -> None:
    data = path.read_bytes()
    reference = feedparser.parse(data)
    if not reference.entries and reference.bozo:
        with pytest.raises(ParseError):   # nothing readable: an error, not an empty success
            parse_feed(data, source="s")
        return
    articles = parse_feed(data, source="s")
    assert len(articles) == len(reference.entries)
    for article, entry in zip(articles, reference.entries, strict=True):
        assert article.title == entry.get("title", "")
        link = entry.get("link") or ""
        assert article.url == (link if link.startswith(("http://", "https://")) else None)
        assert article.guid == (entry.get("id") or None)


def test_urdu_feed_keeps_right_to_left_text() -> None:
    articles = parse_feed((DATA / "feeds/miniflux__internal_reader_parser_testdata_urdu_UTF8.xml")
                          .read_bytes(), source="bbc-urdu")
    assert any("پاکستان" in a.title + a.summary for a in articles)


@pytest.mark.parametrize("encoding", ["windows-1256", "iso-8859-6", "utf-16"])
def test_arabic_encodings_decode(encoding: str) -> None:
    title = "انسحاب قوات التحالف من قاعدة عين الأسد"
    xml = (f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
           f"<title>t</title><item><title>{title}</title><link>http://x/1</link></item>"
           "</channel></rss>")
    [article] = parse_feed(xml.encode(encoding), source="s")
    assert article.title == title


def test_html_in_feed_becomes_text() -> None:
    xml = b"""<rss version="2.0"><channel><title>t</title><item><title>A &amp; B</title>
    <description>&lt;p&gt;Rockets hit &lt;b&gt;Erbil&lt;/b&gt;&lt;script&gt;x()&lt;/script&gt;
    &lt;/p&gt;</description><guid>g1</guid></item></channel></rss>"""
    [a] = parse_feed(xml, source="s")
    # feedparser takes a permalink guid for the link; "g1" is no URL, so there is none
    assert (a.title, a.summary, a.guid, a.url) == ("A & B", "Rockets hit Erbil", "g1", None)


@pytest.mark.parametrize("body", [b"", b"<html><body>Not a feed</body></html>",
                                  b"\x00\x01garbage", b'{"version": "x"}'])
def test_what_is_not_a_feed_is_an_error(body: bytes) -> None:
    with pytest.raises(ParseError, match=r"^parse: not a readable feed"):
        parse_feed(body, source="s")


def test_seed_document_shape() -> None:
    seed = next((ROOT / "seeds").glob("*.txt"))
    a = parse_seed(seed, seed.read_bytes(), source="seeds")
    assert a.title.startswith("العراق: اكتمال إخلاء قواعد التحالف الدولي")
    assert a.summary.startswith("اللجنة العسكرية العليا")
    assert a.body.startswith("قوات التحالف الدولي في العراق\n")   # the caption line
    assert "عين الأسد" in a.body
    assert a.url == seed.resolve().as_uri()


@pytest.mark.parametrize(("name", "content", "title", "body"), [
    ("note.md", "# Heading\n\nErbil airport reopened.", "note.md", "# Heading\n\nErbil airport reopened."),
    ("plain.txt", "just one line about Erbil", "plain.txt", "just one line about Erbil"),
    ("page.html", "<html><head><title>Page title</title></head><body><p>Erbil</p></body></html>",
     "Page title", "Page title Erbil"),
    ("bare.htm", "<p>Only <i>text</i></p>", "bare.htm", "Only text"),
])
def test_other_seed_files(tmp_path: Path, name: str, content: str, title: str, body: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    a = parse_seed(path, path.read_bytes(), source="seeds")
    assert (a.title, a.body) == (title, body)


def test_seed_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("عين الأسد".encode("windows-1256"))
    with pytest.raises(ParseError, match=r"legacy\.txt: not UTF-8"):
        parse_seed(path, path.read_bytes(), source="seeds")


@pytest.mark.parametrize("html", [
    "<p>Rockets hit <b>Ain al-Asad</b> &amp; Erbil</p><p>Second&nbsp;paragraph</p>",
    "<a href='x>y' title=\"a<b\">link</a> text",
    "<div><img src=x.jpg alt='a'>caption<br/>next</div>",
    "plain &lt;not a tag&gt; &#1593;&#1610;&#1606;",
    "<ul><li>one</li><li>two</li></ul>",
    "<p>قصف <strong>عين الأسد</strong></p>",
])
def test_html_fast_path_reads_as_beautifulsoup(html: str) -> None:
    from bs4 import BeautifulSoup  # noqa: PLC0415

    from worker.htmltext import clean_space  # noqa: PLC0415

    assert html_to_text(html) == clean_space(BeautifulSoup(html, "html.parser").get_text(" "))
