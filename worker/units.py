"""Units of the configuration, each parsed once into a typed value: durations (``90s``, ``6h``,
``1h30m``), sizes (``10MB``), rates (``30/min``) and digest schedules (``hourly``, ``daily
08:00 Asia/Baghdad``).

The parsers raise ``ValueError`` with a message for the user (pydantic turns it into a
``FILE:LINE`` problem); the ``Annotated`` types at the end plug them into the configuration
models. Nothing here imports the rest of raqib.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
               "gb": 1000**3, "gib": 1024**3}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
               "hour": 3600, "d": 86400, "day": 86400}
_DIGEST = re.compile(r"^\s*(hourly|daily\s+(\d{1,2}):(\d{2})(?:\s+(\S+))?)\s*$")


# Longer than any window a rule needs, and short enough that "now" plus or minus two of them
# stays a date.
MAX_DURATION = timedelta(days=36_500)


def parse_duration(value: object) -> timedelta:
    """``90s``, ``15m``, ``6h``, ``7d``, ``2w``, ``1h30m``; a bare number is seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) > MAX_DURATION.total_seconds():
            raise ValueError(f"too long: {value!r} seconds (at most 100 years)")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("a duration is a string such as 30s, 15m, 6h or 7d")  # noqa: TRY004
    text = value.strip().lower()
    parts = list(_DURATION.finditer(text))
    if not parts or "".join(p.group(0) for p in parts).replace(" ", "") != text.replace(" ", ""):
        raise ValueError(f"not a duration: {value!r} (use 30s, 15m, 6h, 7d …)")
    seconds = sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2)] for p in parts)
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"too long: {value!r} (at most 100 years)")
    return timedelta(seconds=seconds)


def parse_positive_duration(value: object) -> timedelta:
    """A duration longer than zero."""
    td = parse_duration(value)
    if td <= timedelta(0):
        raise ValueError("must be longer than zero")
    return td


def parse_size(value: object) -> int:
    """``10MB``, ``512KiB``, ``2GB``; a bare number is bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (use 512KB, 10MB …)")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])


@dataclass(frozen=True)
class Rate:
    """At most ``count`` messages per ``per``: ``30/min`` is Rate(30, timedelta(minutes=1))."""

    count: int
    per: timedelta

    @property
    def seconds(self) -> float:
        """The length of ``per`` in seconds."""
        return self.per.total_seconds()


def parse_rate(value: object) -> Rate:
    """``30/min`` -> Rate(30, 1 minute); units s, min, hour, day (and their spellings)."""
    if isinstance(value, Rate):
        return value
    m = _RATE.match(value) if isinstance(value, str) else None
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"not a rate: {value!r} (use 30/min, 500/hour …)")
    return Rate(int(m.group(1)), timedelta(seconds=_RATE_UNITS[m.group(2)]))


@dataclass(frozen=True)
class DigestSchedule:
    """When a channel's digest goes out: every hour (``kind="hourly"``, on the hour), or every
    day at ``hour:minute`` in the time zone ``zone`` (an IANA name, checked to exist)."""

    kind: Literal["hourly", "daily"]
    hour: int = 0
    minute: int = 0
    zone: str = "UTC"

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


def parse_digest(value: object) -> DigestSchedule:
    """``hourly``, or ``daily HH:MM [Zone/Name]`` (the zone defaults to UTC)."""
    if isinstance(value, DigestSchedule):
        return value
    m = _DIGEST.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"not a digest schedule: {value!r} (use hourly, or daily 08:00 "
                         "with an optional time zone such as Asia/Baghdad)")
    if m.group(1) == "hourly":
        return DigestSchedule("hourly")
    hour, minute, zone = int(m.group(2)), int(m.group(3)), m.group(4) or "UTC"
    if hour > 23 or minute > 59:
        raise ValueError(f"not a time of day: {m.group(2)}:{m.group(3)}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}") from None
    return DigestSchedule("daily", hour, minute, zone)


def _optional(parse: Callable[[object], object]) -> BeforeValidator:
    """A validator passing None (the setting left out) and parsing anything else."""

    def check(value: object) -> object:
        return None if value is None else parse(value)

    return BeforeValidator(check)


# Field types for the configuration models: the text of the YAML file is parsed on loading.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(parse_positive_duration)]
Size = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
RateSetting = Annotated[Rate | None, _optional(parse_rate)]
DigestSetting = Annotated[DigestSchedule | None, _optional(parse_digest)]

__all__ = ["DigestSchedule", "DigestSetting", "Duration", "PositiveDuration", "Rate",
           "RateSetting", "Size", "parse_digest", "parse_duration", "parse_positive_duration",
           "parse_rate", "parse_size"]
