"""Dates as feeds write them.

feedparser reads the standard forms (RFC 822, W3C-DTF, ISO 8601) and a few more. This module adds:

- A handler registered with feedparser, tried before its own, for numeric dates it misreads:
  ``29/11/2026``, ``29-11-2026``, ``29.11.2026`` (day first unless the second number cannot be a
  month), ``2026/11/29``, each with an optional time and zone, and Unix timestamps. feedparser
  reads ``2026/11/29`` as 1 December and ``29-11-2026`` as 2029.
- For what feedparser cannot read at all (month names in Arabic — Iraqi and Levantine ``تشرين
  الثاني`` as well as ``نوفمبر`` — Persian, French, Turkish …, Arabic-Indic digits), dateparser,
  with the few locales the text's script and the feed's language call for. Relative dates ("two
  hours ago") are not read: they are relative to a moment we do not know. Results are cached
  (a feed repeats its dates every poll), and a feed whose dates dateparser fails three times is
  not tried further in that read.
- Plausibility: a date more than ``SKEW`` (a day) after the moment the feed was read, or before
  1970-01-02 (an empty timestamp read as zero), is no date and is dropped; the next date of the
  entry (updated, then created) is tried. Within the skew a date is kept as written (most often
  a local time written as UTC); listings order by the earlier of it and the time raqib stored
  the article, so no date keeps an article at the top.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import feedparser

SKEW = timedelta(days=1)
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
GIVE_UP = 3   # dateparser misses after which a feed's remaining dates are not tried

_ZONE = r"(?:\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2}))?"
_TIME = r"(?:[T\s,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
_DAY_FIRST = re.compile(rf"^\s*(\d{{1,2}})([./-])(\d{{1,2}})\2(\d{{4}}){_TIME}{_ZONE}\s*$")
_YEAR_SLASH = re.compile(rf"^\s*(\d{{4}})/(\d{{1,2}})/(\d{{1,2}}){_TIME}{_ZONE}\s*$")
_EPOCH = re.compile(r"^\s*(\d{9,10}|\d{12,13})\s*$")
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LETTERS = re.compile(r"[^\W\d_]")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
# The locales dateparser tries, by the script of the text. ar-IQ reads Iraqi and Levantine month
# names beside the Egyptian ones; ckb is Sorani Kurdish.
ARABIC_SCRIPT = ("ar-IQ", "fa", "ckb", "ur")
LATIN_SCRIPT = ("en", "fr", "de", "es", "it", "pt", "nl", "tr", "id")
CYRILLIC_SCRIPT = ("ru", "uk")
_SETTINGS = {"TIMEZONE": "UTC", "TO_TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": True,
             "DATE_ORDER": "DMY", "PREFER_DATES_FROM": "past",
             "REQUIRE_PARTS": ["day", "month", "year"],
             "PARSERS": ["timestamp", "custom-formats", "absolute-time"]}
_lock = threading.Lock()


def _zone_offset(zone: str | None) -> int:
    if not zone or zone in {"Z", "UTC", "GMT"}:
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)


def _numeric(value: str) -> time.struct_time | None:
    """feedparser date handler: the numeric forms it misreads, as a UTC 9-tuple, or None."""
    m = _EPOCH.match(value)
    if m:
        seconds = int(m.group(1))
        return time.gmtime(seconds / 1000 if seconds > 10**11 else seconds)
    m = _DAY_FIRST.match(value)
    if m:
        first, _sep, second, year, hh, mi, ss, zone = m.groups()
        day, month = int(first), int(second)
        if month > 12 >= day:   # the second number cannot be a month: month first
            day, month = month, day
    else:
        m = _YEAR_SLASH.match(value)
        if not m:
            return None
        year, month_s, day_s, hh, mi, ss, zone = m.groups()
        day, month = int(day_s), int(month_s)
    try:
        dt = datetime(int(year), month, day, int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=UTC)
    except ValueError:
        return None
    return (dt - timedelta(seconds=_zone_offset(zone))).timetuple()


feedparser.registerDateHandler(_numeric)


def from_struct(st: time.struct_time | tuple[int, ...] | None) -> datetime | None:
    if not st:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(st), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def plausible(dt: datetime | None, now: datetime) -> datetime | None:
    """*dt* when it can be a publication date read at *now*, else None."""
    if dt is None or dt < EARLIEST or dt > now + SKEW:
        return None
    return dt


def locales(text: str, language: str | None) -> tuple[str, ...]:
    """The locales dateparser tries for *text*: those of its script, and the feed's language."""
    if _ARABIC.search(text):
        found: tuple[str, ...] = ARABIC_SCRIPT
    elif _CYRILLIC.search(text):
        found = CYRILLIC_SCRIPT
    else:
        found = LATIN_SCRIPT
    lang = (language or "").split("-")[0].split("_")[0].lower()
    if lang and lang not in {f.split("-")[0] for f in found} and _known_locale(lang):
        found = (*found, lang)
    return found


@lru_cache(maxsize=256)
def _known_locale(lang: str) -> bool:
    import dateparser  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        with _lock:
            dateparser.parse("1 1 2000", locales=[lang], settings=_SETTINGS)
    except ValueError:   # "Unknown locale(s)"
        return False
    return True


@lru_cache(maxsize=8192)
def _dateparser(text: str, found: tuple[str, ...]) -> datetime | None:
    import dateparser  # noqa: PLC0415 (loaded only when a feed writes dates feedparser cannot read)

    with _lock:   # dateparser keeps shared caches of its own
        try:
            dt = dateparser.parse(text, locales=list(found), settings=_SETTINGS)
        except (ValueError, OverflowError, TypeError):
            return None
    return dt.astimezone(UTC) if isinstance(dt, datetime) else None


class DateReader:
    """Reads the dates of one feed document, read at *now*, in the feed's *language*."""

    def __init__(self, now: datetime, language: str | None = None) -> None:
        self.now = now
        self.language = language
        self.misses = 0

    def text(self, value: str | None, language: str | None = None) -> datetime | None:
        """A date written as text: ISO 8601 / RFC 3339, feedparser's forms, then dateparser."""
        if not value or not value.strip():
            return None
        value = value.strip()
        dt: datetime | None
        try:
            iso = datetime.fromisoformat(value)
        except ValueError:
            dt = from_struct(feedparser.datetimes._parse_date(value))
        else:
            dt = iso.replace(tzinfo=UTC) if iso.tzinfo is None else iso.astimezone(UTC)
        return dt if dt is not None else self.fallback(value, language)

    def fallback(self, value: str, language: str | None = None) -> datetime | None:
        """What dateparser reads in a date feedparser could not read (None for a text with no
        letters: a malformed number is no date in another language)."""
        ascii_digits = value.translate(_DIGITS)
        if ascii_digits != value:   # Arabic-Indic or Persian digits
            dt = from_struct(feedparser.datetimes._parse_date(ascii_digits))
            if dt is not None:
                return dt
        if self.misses >= GIVE_UP or not _LETTERS.search(value) or len(value) > 100:
            return None
        dt = _dateparser(value, locales(value, language or self.language))
        if dt is None:
            self.misses += 1
        return dt

    def entry(self, entry: dict[str, Any]) -> datetime | None:
        """The first plausible date of a feedparser entry: published, updated, created.
        (Read as a plain dict: feedparser would answer a missing "updated" with "published".)"""
        for key in ("published", "updated", "created"):
            dt = from_struct(dict.get(entry, f"{key}_parsed"))
            raw = dict.get(entry, key)
            if dt is None and raw:
                dt = self.fallback(str(raw), dict.get(entry, "language"))
            dt = plausible(dt, self.now)
            if dt is not None:
                return dt
        return None
