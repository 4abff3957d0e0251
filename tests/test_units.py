"""Units: durations, sizes, rates and digest schedules, parsed once into typed values."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from worker import units


@pytest.mark.parametrize(("text", "rate"), [
    ("30/min", units.Rate(30, timedelta(minutes=1))),
    (" 500 / hour ", units.Rate(500, timedelta(hours=1))),
    ("2/s", units.Rate(2, timedelta(seconds=1))),
    ("1/day", units.Rate(1, timedelta(days=1))),
])
def test_rates(text: str, rate: units.Rate) -> None:
    assert units.parse_rate(text) == rate
    assert units.parse_rate(rate) is rate          # a parsed value passes as it is
    assert rate.seconds == rate.per.total_seconds()


@pytest.mark.parametrize("text", ["0/min", "30/fortnight", "30", "", "-1/min"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        units.parse_rate(text)


@pytest.mark.parametrize(("text", "schedule"), [
    ("hourly", units.DigestSchedule("hourly")),
    ("daily 08:00", units.DigestSchedule("daily", 8, 0, "UTC")),
    ("daily 7:30 Asia/Baghdad", units.DigestSchedule("daily", 7, 30, "Asia/Baghdad")),
])
def test_digest_schedules(text: str, schedule: units.DigestSchedule) -> None:
    assert units.parse_digest(text) == schedule
    assert units.parse_digest(schedule) is schedule
    assert schedule.tzinfo == ZoneInfo(schedule.zone)


@pytest.mark.parametrize(("text", "message"), [
    ("weekly", "not a digest schedule"), ("daily", "not a digest schedule"),
    ("daily 24:00", "not a time of day"), ("daily 08:60", "not a time of day"),
    ("daily 08:00 Nowhere/Town", "unknown time zone"),
])
def test_bad_digest_schedules(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        units.parse_digest(text)


def test_durations_and_sizes() -> None:
    assert units.parse_duration("1h30m") == timedelta(minutes=90)
    assert units.parse_duration(45) == timedelta(seconds=45)
    assert units.parse_positive_duration("2d") == timedelta(days=2)
    with pytest.raises(ValueError, match="longer than zero"):
        units.parse_positive_duration("0s")
    with pytest.raises(ValueError, match="not a duration"):
        units.parse_duration("soon")
    assert units.parse_size("512KiB") == 524288
    with pytest.raises(ValueError, match="not a size"):
        units.parse_size("big")
