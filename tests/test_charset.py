"""The encoding of a feed, decided before feedparser guesses: byte-order marks, labels that lie,
undeclared legacy encodings, and bytes that are broken here and there."""

from __future__ import annotations

import codecs
from collections.abc import Callable

import pytest

from worker.charset import decide
from worker.parse import read_feed

from conftest import Response, Server

AR = "انسحاب قوات التحالف الدولي من قاعدة عين الأسد الجوية في محافظة الأنبار"
RU = "Войска коалиции покидают базу Айн аль-Асад в провинции Анбар"
FR = "Le retrait « complet » des forces de la coalition — l’été dernier, déjà"
ZH = "联军撤离阿萨德空军基地"
JA = "連合軍が基地から撤退した"


def feed(title: str, encoding: str | None = None) -> str:
    decl = f"<?xml version='1.0' encoding='{encoding}'?>" if encoding else ""
    return (f"{decl}<rss version='2.0'><channel><title>t</title><item><title>{title}</title>"
            f"<description>{title}. {title}.</description><guid>1</guid></item></channel></rss>")


def title_of(data: bytes, content_type: str | None = None) -> tuple[str, tuple[str, ...]]:
    got = read_feed(data, source="s", headers={"Content-Type": content_type} if content_type
                    else {})
    [article] = got.articles
    return article.title, got.warnings


def cut(text: str | bytes, word: str) -> bytes:
    """*text* in UTF-8 with the last letter of *word* cut in half (a byte-based truncation)."""
    data = text.encode() if isinstance(text, str) else text
    return data.replace(word.encode(), word.encode()[:-1], 1)


Case = tuple[str, bytes, str | None, str, bool]
CASES: list[Case] = [
    # (name, bytes, Content-Type, title read, a warning)
    ("utf-8", feed(AR).encode(), None, AR, False),
    ("undeclared windows-1256", feed(AR).encode("cp1256"), None, AR, False),
    ("undeclared iso-8859-6", feed(AR).encode("iso-8859-6"), None, AR, False),
    ("undeclared koi8-r", feed(RU).encode("koi8-r"), None, RU, False),
    ("header windows-1256", feed(AR).encode("cp1256"), "text/xml; charset=windows-1256", AR,
     False),
    ("declared iso-8859-6", feed(AR, "iso-8859-6").encode("iso-8859-6"), None, AR, False),
    ("declared windows-1252", feed(FR, "windows-1252").encode("cp1252"), None, FR, False),
    ("declared gb18030", feed(ZH, "gb18030").encode("gb18030"), None, ZH, False),
    ("header shift_jis", feed(JA).encode("shift_jis"), "application/xml; charset=Shift_JIS",
     JA, False),
    # byte-order marks beat every label
    ("utf-8 BOM, header windows-1256", codecs.BOM_UTF8 + feed(AR).encode(),
     "text/xml; charset=windows-1256", AR, False),
    ("utf-16 LE BOM, header utf-8", codecs.BOM_UTF16_LE + feed(AR).encode("utf-16-le"),
     "application/rss+xml; charset=utf-8", AR, False),
    ("utf-16 BE BOM", codecs.BOM_UTF16_BE + feed(AR, "utf-16").encode("utf-16-be"), None, AR,
     False),
    ("utf-32 BOM", feed(AR, "utf-32").encode("utf-32"), None, AR, False),
    # UTF-16 without a BOM, told by its first character
    ("utf-16 LE, no BOM", feed(AR, "utf-16").encode("utf-16-le"), None, AR, False),
    ("utf-16 BE, no BOM", feed(AR, "utf-16").encode("utf-16-be"), None, AR, False),
    # labels that lie
    ("valid utf-8 labelled iso-8859-1", feed(AR).encode(), "text/xml; charset=iso-8859-1", AR,
     False),
    ("valid utf-8 declared windows-1256", feed(AR, "windows-1256").encode(), None, AR, False),
    ("windows-1256 labelled utf-8", feed(AR).encode("cp1256"), "text/xml; charset=utf-8", AR,
     True),
    ("windows-1256 declared utf-8", feed(AR, "utf-8").encode("cp1256"), None, AR, True),
    ("header utf-8, declared windows-1256", feed(AR, "windows-1256").encode("cp1256"),
     "application/rss+xml; charset=utf-8", AR, False),
    ("unknown labels", feed(AR, "x-bogus").encode("cp1256"), "text/xml; charset=foo", AR, True),
]

BROKEN: list[tuple[str, bytes, str | None, str]] = [
    # (name, bytes, Content-Type, a word of the title that must survive)
    ("utf-8, a letter cut in half", cut(feed(AR), "قاعدة"), "text/xml; charset=utf-8",
     "عين الأسد"),
    ("utf-8, a lone 0xFF", feed(AR).encode().replace(b"</title>", b"\xff</title>", 1), None,
     "عين الأسد"),
    ("utf-8, an overlong slash", feed(AR).encode().replace(b"<item>", b"<item>\xc0\xaf", 1),
     None, "عين الأسد"),
    ("utf-8, a stray continuation byte", feed(AR).encode().replace(" من ".encode(),
                                                                   b" \x80 ", 1), None,
     "قاعدة عين الأسد"),
    ("utf-8 BOM, a letter cut in half", codecs.BOM_UTF8 + cut(feed(AR), "الأسد"),
     "text/xml; charset=windows-1256", "قاعدة"),
    ("utf-8, two letters cut", cut(cut(feed(AR).replace("</channel>", "<item><title>ب</title>"
                                                       "<description>الأنبار</description>"
                                                       "<guid>2</guid></item></channel>"),
                                       "محافظة"), "الأنبار"), None, "عين الأسد"),
    ("iso-8859-6, an unassigned byte", feed(AR, "iso-8859-6").encode("iso-8859-6")
     .replace(b"<item>", b"<item>\xa1", 1), None, "عين الأسد"),
    ("utf-16, cut at an odd byte", codecs.BOM_UTF16_LE + feed(AR).encode("utf-16-le")[:-1],
     None, "عين الأسد"),
]


@pytest.mark.parametrize(("name", "data", "content_type", "title", "warned"), CASES,
                         ids=[c[0] for c in CASES])
def test_encodings(name: str, data: bytes, content_type: str | None, title: str,
                   warned: bool) -> None:
    got, warnings = title_of(data, content_type)
    assert got == title
    assert bool(warnings) == warned, warnings


@pytest.mark.parametrize(("name", "data", "content_type", "word"), BROKEN,
                         ids=[c[0] for c in BROKEN])
def test_one_bad_byte_costs_one_character(name: str, data: bytes, content_type: str | None,
                                          word: str) -> None:
    articles = read_feed(data, source="s",
                         headers={"Content-Type": content_type} if content_type else {})
    first = articles.articles[0]
    assert word in first.title
    assert first.title.count("\ufffd") <= 2   # at most the two letters cut
    [warning] = articles.warnings
    assert warning.startswith("parse: ") and "U+FFFD" in warning


def test_the_warning_says_what_and_where() -> None:
    got = decide(cut(feed(AR), "قاعدة"), "application/rss+xml; charset=utf-8")
    assert (got.encoding, got.how) == ("utf-8", "the HTTP header")
    assert got.warning == ("parse: 1 undecodable byte sequence(s) in utf-8 (as the HTTP header "
                           "says), each read as U+FFFD")
    lied = decide(feed(AR).encode("cp1256"), "text/xml; charset=utf-8")
    assert lied.how == "detected"
    assert lied.warning == ("parse: declared utf-8 by the HTTP header, but it is not: read as "
                            "cp1256 (detected)")


def test_valid_utf8_is_handed_over_untouched() -> None:
    data = feed(AR).encode()
    got = decide(data, "text/xml; charset=windows-1256")
    assert got.utf8(data) is data


@pytest.mark.parametrize(("charset", "encode"), [
    ("windows-1256", lambda s: s.encode("cp1256")),
    ("iso-8859-6", lambda s: s.encode("iso-8859-6")),
    ("utf-8", lambda s: cut(s, "قاعدة")),
])
def test_over_http(http_server: Server, charset: str,
                   encode: Callable[[str], bytes]) -> None:
    """The header's charset as the fetcher hands it to the parser."""
    from worker.config import Source  # noqa: PLC0415
    from worker.fetch import Fetcher  # noqa: PLC0415

    http_server.routes["/f"] = Response(200, encode(feed(AR)), {
        "Content-Type": f"application/rss+xml; charset={charset}"})
    fetcher = Fetcher()
    try:
        got = fetcher.fetch(Source.model_validate({"name": "s", "url": http_server.url("/f")}))
    finally:
        fetcher.close()
    [article] = read_feed(got.body or b"", source="s", url=got.url, headers=got.headers).articles
    assert "عين الأسد" in article.title
