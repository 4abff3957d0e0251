"""Dates as feeds write them: other languages and formats, missing, misread, in the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.dates import SKEW, DateReader, plausible
from worker.parse import read_feed

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def rss(*dates: tuple[str, str]) -> bytes:
    tags = "".join(f"<{tag}>{value}</{tag}>" for tag, value in dates)
    return (f"<rss version='2.0' xmlns:dc='http://purl.org/dc/elements/1.1/'><channel>"
            f"<title>t</title><item><title>x</title><guid>1</guid>{tags}</item>"
            "</channel></rss>").encode()


def published(*dates: tuple[str, str], now: datetime = NOW) -> datetime | None:
    [article] = read_feed(rss(*dates), source="s", now=now).articles
    return article.published


@pytest.mark.parametrize(("written", "expected"), [
    # what feedparser reads
    ("Sun, 29 Nov 2026 10:30:00 +0300", utc(2026, 11, 29, 7, 30)),
    ("2026-11-29T10:30:00Z", utc(2026, 11, 29, 10, 30)),
    ("29 Nov 2026", utc(2026, 11, 29)),
    # month names in Arabic (Egyptian and Iraqi/Levantine), Persian, French, Turkish
    ("الأحد، 29 نوفمبر 2026 - 10:30", utc(2026, 11, 29, 10, 30)),
    ("29 تشرين الثاني 2026 10:30", utc(2026, 11, 29, 10, 30)),
    ("5 آذار 2026", utc(2026, 3, 5)),
    ("29 نوفمبر 2026 الساعة 10:30 مساءً", utc(2026, 11, 29, 22, 30)),   # "in the evening"
    ("۲۹ نوامبر ۲۰۲۶", utc(2026, 11, 29)),
    ("dim, 29 nov 2026 10:30:00 +0100", utc(2026, 11, 29, 9, 30)),
    ("Pazar, 29 Kasım 2026 10:30", utc(2026, 11, 29, 10, 30)),
    ("Nov 29, 2026 10:30 AM", utc(2026, 11, 29, 10, 30)),
    # numbers feedparser misreads or cannot read
    ("2026/11/29 10:30", utc(2026, 11, 29, 10, 30)),      # feedparser: 1 December
    ("29-11-2026", utc(2026, 11, 29)),                    # feedparser: 2029
    ("29/11/2026 10:30", utc(2026, 11, 29, 10, 30)),
    ("29.11.2026 10:30 +03:00", utc(2026, 11, 29, 7, 30)),
    ("11/28/2026", utc(2026, 11, 28)),                    # month first when it must be
    ("٢٩/١١/٢٠٢٦ ١٠:٣٠", utc(2026, 11, 29, 10, 30)),      # Arabic-Indic digits
    ("1764412200", utc(2025, 11, 29, 10, 30)),            # a Unix timestamp; feedparser: 1764
    # no date at all
    ("", None),
    ("0000-00-00 00:00:00", None),
    ("not a date", None),
    ("منذ ساعتين", None),   # "two hours ago": relative to a moment we do not know
    ("31/02/2026", None),
    # implausible: after the read (a typo of 2099), or an empty timestamp read as 1970
    ("Sun, 29 Nov 2099 10:30:00 GMT", None),
    ("Thu, 01 Jan 1970 00:00:00 +0000", None),
    ("2026-12-01T10:00:00Z", None),
    ("2026-11-30T11:59:00Z", utc(2026, 11, 30, 11, 59)),  # within a day: kept as written
])
def test_dates(written: str, expected: datetime | None) -> None:
    assert published(("pubDate", written)) == expected


def test_an_implausible_date_gives_way_to_the_next() -> None:
    assert published(("pubDate", "Sun, 29 Nov 2099 10:30:00 GMT"),
                     ("dc:date", "2026-11-29T08:00:00Z")) == utc(2026, 11, 29, 8, 0)
    assert published(("pubDate", "garbage"), ("dc:date", "2026-11-29T08:00:00Z")) \
        == utc(2026, 11, 29, 8, 0)


def test_future_is_judged_against_the_time_of_the_read() -> None:
    later = NOW + timedelta(days=30)
    assert published(("pubDate", "2026-12-20T00:00:00Z"), now=later) == utc(2026, 12, 20)
    assert published(("pubDate", "2026-12-20T00:00:00Z")) is None


@pytest.mark.parametrize(("dt", "ok"), [
    (NOW, True), (NOW + SKEW, True), (NOW + SKEW + timedelta(seconds=1), False),
    (utc(1970, 1, 1), False), (utc(1999, 1, 1), True), (None, False),
])
def test_plausible(dt: datetime | None, ok: bool) -> None:
    assert (plausible(dt, NOW) is not None) == ok


def test_a_feed_whose_dates_cannot_be_read_stops_being_tried() -> None:
    reader = DateReader(NOW, "en")
    for _ in range(3):
        assert reader.fallback("quux blorp zim") is None
    assert reader.misses == 3
    # a date dateparser would read is no longer tried in this feed
    assert reader.fallback("29 novembre 2026") is None
    assert DateReader(NOW, "fr").fallback("29 novembre 2026") == utc(2026, 11, 29)


@pytest.mark.parametrize(("written", "expected"), [
    ("2026-11-28T20:55:00Z", utc(2026, 11, 28, 20, 55)),
    ("2026-11-28T20:55:00.5+03:00", datetime(2026, 11, 28, 17, 55, 0, 500000, tzinfo=UTC)),
    ("2026-11-28 20:55", utc(2026, 11, 28, 20, 55)),
    ("Sat, 28 Nov 2026 20:55:00 GMT", utc(2026, 11, 28, 20, 55)),
    ("28 تشرين الثاني 2026", utc(2026, 11, 28)),
    ("", None),
])
def test_text_dates(written: str, expected: datetime | None) -> None:
    """Dates written as text (JSON Feed): ISO 8601 first, then feedparser's, then dateparser."""
    assert DateReader(NOW).text(written, "ar") == expected
