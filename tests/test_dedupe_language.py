"""Exact dedupe keys and language detection."""

from __future__ import annotations

import pytest

from worker import language
from worker.dedupe import canonical_url, content_key, prepare, prepare_seed
from worker.items import Article


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://Example.org/news/1?utm_source=rss&utm_medium=feed#top",
     "https://example.org/news/1"),
    ("HTTP://example.org:80/a?b=2&a=1&fbclid=xyz", "http://example.org/a?a=1&b=2"),
    ("https://example.org:8443/a?id=5&gclid=1", "https://example.org:8443/a?id=5"),
    ("https://example.org", "https://example.org/"),
])
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


BODY = ("أعلنت اللجنة العسكرية العليا لإنهاء مهمة التحالف الدولي في العراق إكمال عملية إخلاء "
        "القواعد العسكرية والمقار القيادية كافة في المناطق الرسمية الاتحادية في البلاد")


def test_content_key_ignores_marks_case_and_spacing() -> None:
    plain = Article(source="a", title="Coalition leaves", body=BODY)
    marked = Article(source="b", title="COALITION  leaves!", body=BODY.replace("العسكرية",
                                                                                "العَسْكَرِيَّة"))
    assert content_key(plain) == content_key(marked)
    assert content_key(plain) != content_key(Article(source="a", title="x", body=BODY + " جديد"))


def test_short_texts_need_their_url_too() -> None:
    a = Article(source="s", title="Live updates", url="https://x.org/1")
    b = Article(source="s", title="Live updates", url="https://x.org/2")
    assert content_key(a) != content_key(b)


def test_a_zwnj_changes_no_content_key() -> None:
    with_zwnj = Article(source="s", title="پایگاه", body="نیروها خارج می\u200cشوند " * 10)
    without = Article(source="s", title="پایگاه", body="نیروها خارج میشوند " * 10)
    assert content_key(with_zwnj) == content_key(without)


def test_a_link_that_is_no_url_is_no_key() -> None:
    p = prepare(Article(source="s", title="t", body=BODY, url="http://[bogus", guid="g"))
    assert (p.url, p.url_hash, p.guid_hash is not None) == ("http://[bogus", None, True)


def test_prepare_keys() -> None:
    a = Article(source="s", title="t", body=BODY, url="https://x.org/a?utm_campaign=z", guid="g")
    p = prepare(a)
    assert p.url_hash == prepare(Article(source="t", title="other", body="other text",
                                         url="https://x.org/a")).url_hash
    assert p.guid_hash is not None
    seed = prepare_seed(a)
    # a seed version is known by its text and by its path (the GUID): an edit is an update
    assert (seed.url_hash, seed.guid_hash) == (None, p.guid_hash)
    assert seed.content_hash == p.content_hash


@pytest.mark.parametrize(("text", "lang"), [
    (BODY, "ar"),
    ("نیروهای ائتلاف بین‌المللی از پایگاه عین‌الاسد در استان انبار عراق خارج شدند و این پایگاه "
     "به ارتش عراق تحویل داده شد", "fa"),
    ("هێزەکانی هاوپەیمانی نێودەوڵەتی لە بنکەی عەین ئەلئەسەد کشانەوە", "ckb"),
    ("The international coalition has completed its withdrawal from the bases in Iraq, the "
     "committee said on Sunday.", "en"),
    ("La coalition internationale a achevé son retrait des bases en Irak, selon le comité.", "fr"),
    ("", None),
])
def test_language(text: str, lang: str | None) -> None:
    assert language.detect(text) == lang


def test_language_hint_breaks_ties() -> None:
    assert language.detect("12345", "ar-IQ") == "ar"
    assert language.detect("Erbil", "en-GB") == "en"
    assert language.detect("Erbil", None) is None   # one name tells nothing


@pytest.mark.parametrize("headline", [
    "Rockets strike Ain al-Asad", "Drone attack near al-Asad base",
    "Erbil airport drone attack repelled"])
def test_short_english_headlines_with_a_declared_language(headline: str) -> None:
    assert language.detect(headline, "en-US") == "en"
    assert language.detect(headline) in {"en", None}   # never Spanish for "al"


def test_declared_language_that_is_no_code_is_ignored() -> None:
    assert language.detect("2026", "English (United States)") is None
    assert language.detect("2026", "ar-IQ") == "ar"
