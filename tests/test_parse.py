"""Parsing feeds (as feedparser reads them) and seed documents."""

from __future__ import annotations

import tarfile
from pathlib import Path

import feedparser
import pytest

from worker.errors import ParseError
from worker.htmltext import html_to_text
from worker.parse import parse_feed, parse_seed, read_feed

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
        assert article.title == " ".join(entry.get("title", "").split())
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


@pytest.mark.parametrize(("body", "what"), [
    (b"", "got an empty document"),
    (b" \r\n\t ", "got an empty document"),
    (b"<html><body>Not a feed</body></html>", "got an HTML page"),
    (b"\xef\xbb\xbf<!-- a CMS banner -->\n<!DOCTYPE html>\n<html lang=ar><head>"
     b"<link rel='alternate' type='application/rss+xml' href='/ar/rss.xml'></head></html>",
     "got an HTML page (it names its feed: https://news.example/ar/rss.xml)"),
    (b"<HEAD><TITLE>Moved</TITLE></HEAD><BODY>gone</BODY>", "got an HTML page"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "got a PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "got a JPEG image"),
    (b"GIF89a\x01\x00", "got a GIF image"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "got a WebP image"),
    (b"%PDF-1.7\n", "got a PDF document"),
    (b"PK\x03\x04\x14\x00", "got a ZIP archive"),
    (b"\x1f\x8b\x08\x00\x00\x00", "got gzip-compressed data that no Content-Encoding announced"),
    (b"\x00\x01garbage\x02\x03\x04", "got binary data"),
    (b"Service Unavailable", "got plain text"),
    (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'><g/></svg>",
     "got XML whose root element is <svg>, not a feed"),
    (b"<?xml version='1.0'?><!-- nothing here -->", "got an XML document with no root element"),
    (b'{"version": "x"}', "got JSON that is not a JSON Feed"),
    (b'{"error": "rate limited"}', "got JSON that is not a JSON Feed"),
    (b"<rss version='2.0'><channel><title>t</title>", "no element found"),   # a feed, cut
])
def test_what_is_not_a_feed_is_an_error_that_says_what_it_is(body: bytes, what: str) -> None:
    with pytest.raises(ParseError, match=r"^parse: not a readable feed: ") as err:
        parse_feed(body, source="s", url="https://news.example/ar/")
    assert what in str(err.value)


URL = "https://news.example/ar/feeds/main.xml?edition=iq"


@pytest.mark.parametrize(("link", "expected"), [
    ("/ar/news/1", "https://news.example/ar/news/1"),
    ("news/1", "https://news.example/ar/feeds/news/1"),
    ("./news/1", "https://news.example/ar/feeds/news/1"),
    ("../news/1", "https://news.example/ar/news/1"),
    ("../../../../news/1", "https://news.example/news/1"),
    ("//cdn.example/ar/1", "https://cdn.example/ar/1"),
    ("?id=7", "https://news.example/ar/feeds/main.xml?id=7"),
    ("#item-7", "https://news.example/ar/feeds/main.xml?edition=iq#item-7"),
    ("http://other.example/x", "http://other.example/x"),
    ("  news/1  ", "https://news.example/ar/feeds/news/1"),
    ("mailto:desk@news.example", None),
    ("javascript:alert(1)", None),
])
@pytest.mark.parametrize("shape", ["rss", "atom", "atom-no-rel"])
def test_relative_links_resolve_against_the_documents_url(link: str, expected: str | None,
                                                          shape: str) -> None:
    if shape == "rss":
        xml = (f"<rss version='2.0'><channel><title>t</title><item><title>a</title>"
               f"<link>{link}</link><guid isPermaLink='false'>g</guid></item></channel></rss>")
    else:
        rel = " rel='alternate'" if shape == "atom" else ""
        xml = (f"<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title><entry><title>a"
               f"</title><id>tag:x,2026:1</id><link{rel} href='{link}'/></entry></feed>")
    [article] = parse_feed(xml.encode(), source="s", url=URL)
    assert article.url == expected
    # what feedparser itself gives when told the document's URL
    reference = feedparser.parse(xml.encode(), response_headers={"content-location": URL})
    if expected is not None:
        assert reference.entries[0].link.strip() == expected


@pytest.mark.parametrize(("xml", "expected"), [
    ("<rss version='2.0' xml:base='http://base.example/dir/'><channel><title>t</title><item>"
     "<title>a</title><link>news/1</link></item></channel></rss>",
     "http://base.example/dir/news/1"),
    ("<rss version='2.0'><channel xml:base='/root/'><title>t</title><item xml:base='sub/'>"
     "<title>a</title><link>../news/1</link></item></channel></rss>",
     "https://news.example/root/news/1"),
    ("<feed xmlns='http://www.w3.org/2005/Atom' xml:base='https://blog.example/'><title>t"
     "</title><entry xml:base='2026/'><title>a</title><id>tag:x,1</id><link href='11/a.html'/>"
     "</entry></feed>", "https://blog.example/2026/11/a.html"),
    ("<feed xmlns='http://www.w3.org/2005/Atom' xml:base='/root/'><title>t</title><entry "
     "xml:base='e/'><title>a</title><id>tag:x,1</id><link href='?q=1'/></entry></feed>",
     "https://news.example/root/e/?q=1"),
])
def test_links_resolve_against_xml_base(xml: str, expected: str) -> None:
    [article] = parse_feed(xml.encode(), source="s", url=URL)
    assert article.url == expected


@pytest.mark.parametrize(("item", "url", "guid"), [
    ("<guid>1234</guid>", None, "1234"),                       # a number is no link
    ("<guid>a-1</guid>", None, "a-1"),
    ("<guid>/ar/news/1234</guid>", "https://news.example/ar/news/1234", "/ar/news/1234"),
    ("<guid>https://news.example/a/1</guid>", "https://news.example/a/1",
     "https://news.example/a/1"),
    ("<guid isPermaLink='false'>/ar/news/1234</guid>", None, "/ar/news/1234"),
    ("<guid>1234</guid><link>story/1234</link>", "https://news.example/ar/feeds/story/1234",
     "1234"),
])
def test_guids_are_kept_as_written(item: str, url: str | None, guid: str) -> None:
    """A GUID is the item's identity key: never rewritten into a URL, whatever the base."""
    xml = f"<rss version='2.0'><channel><title>t</title><item><title>a</title>{item}</item>" \
          "</channel></rss>"
    [article] = parse_feed(xml.encode(), source="s", url=URL)
    assert (article.url, article.guid) == (url, guid)


def test_without_a_url_relative_links_are_none() -> None:
    xml = b"<rss version='2.0'><channel><item><title>a</title><link>/x</link></item></channel></rss>"
    assert parse_feed(xml, source="s")[0].url is None


@pytest.mark.parametrize(("title", "expected"), [
    ("<title type='html'>Q&amp;A session</title>", "Q&A session"),
    ("<title type='html'>Q&amp;amp;A</title>", "Q&A"),
    ("<title type='html'>&lt;b&gt;Rockets&lt;/b&gt; hit &lt;i&gt;Ain al-Asad&lt;/i&gt;</title>",
     "Rockets hit Ain al-Asad"),
    ("<title type='html'><![CDATA[Erbil &amp; <em>Duhok</em>]]></title>", "Erbil & Duhok"),
    ("<title type='html'>&#1593;&#1610;&#1606; &amp;nbsp;</title>", "عين"),
    ("<title type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'>Q&amp;A <b>now</b></div>"
     "</title>", "Q&A now"),
    ("<title type='text'>AT&amp;T &lt;3 Q&amp;A</title>", "AT&T <3 Q&A"),
    ("<title>  Multi\n   line\ttitle  </title>", "Multi line title"),
    ("<title type='html'>Talk&lt;script&gt;alert(1)&lt;/script&gt;</title>", "Talk"),
])
def test_titles_are_plain_text(title: str, expected: str) -> None:
    xml = (f"<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title><entry>{title}"
           "<id>tag:x,1</id></entry></feed>")
    [article] = parse_feed(xml.encode(), source="s")
    assert article.title == expected


@pytest.mark.parametrize(("title", "expected"), [
    ("Q&amp;A &lt;b&gt;session&lt;/b&gt;", "Q&A session"),   # escaped markup: HTML
    ("Fish &amp; Chips", "Fish & Chips"),
    ("<![CDATA[Rockets <b>hit</b> Erbil]]>", "Rockets hit Erbil"),
])
def test_rss_titles_are_plain_text(title: str, expected: str) -> None:
    xml = (f"<rss version='2.0'><channel><title>t</title><item><title>{title}</title>"
           "<guid>1</guid></item></channel></rss>")
    assert parse_feed(xml.encode(), source="s")[0].title == expected


def test_feedparser_suite_qna_title_is_text() -> None:
    with tarfile.open(DATA / "feedparser-6.0.14.tar.gz") as tar:
        member = tar.extractfile("feedparser-6.0.14/tests/wellformed/atom10/qna.xml")
        assert member is not None
        data = member.read()
    [article] = read_feed(data, source="s").articles
    assert article.title == "Q&A session"


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
