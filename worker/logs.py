"""Logging: structlog everywhere, JSON lines when stderr is not a terminal, readable console
output when it is. Standard-library loggers (APScheduler, Alembic) render the same way.
Times are ISO 8601 in every field (UTC with a Z, as listings print them), durations ISO 8601
durations, never Python reprs."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import structlog

from worker import redact


def iso(value: datetime | date | time) -> str:
    """ISO 8601: an aware time in UTC with a Z (a naive one as it is), a date, a time of day."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def iso_duration(value: timedelta) -> str:
    """An ISO 8601 duration: ``PT30S``, ``PT1H30M``, ``P1DT2H``, ``-PT5M``."""
    sign, value = ("-", -value) if value < timedelta(0) else ("", value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    second = f"{seconds}.{value.microseconds:06d}".rstrip("0") if value.microseconds \
        else str(seconds)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if seconds or value.microseconds or not (clock or value.days):
        clock += f"{second}S"
    return sign + "P" + (f"{value.days}D" if value.days else "") + (f"T{clock}" if clock else "")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return iso(value)
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def iso_times(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: every time, date and duration in the event (nested too) as ISO
    8601 text."""
    for key, value in event.items():
        event[key] = _plain(value)
    return event


def _json_default(value: Any) -> Any:
    """What json cannot write: an object's ``__structlog__()`` or its repr, secrets masked."""
    method = getattr(value, "__structlog__", None)
    return method() if callable(method) else redact.scrub(repr(value))

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
_LAST: list[Any] = [structlog.processors.StackInfoRenderer(),
                    structlog.processors.format_exc_info, iso_times, redact.processor]


def configure(*, json: bool | None = None, level: str = "INFO") -> None:
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False, default=_json_default) if json
        else structlog.dev.ConsoleRenderer())
    structlog.configure(
        processors=[*_SHARED, *_LAST, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*_SHARED, *_LAST]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    scheduler = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkippedRun) for f in scheduler.filters):
        scheduler.addFilter(_SkippedRun())


class _SkippedRun(logging.Filter):
    """Drops APScheduler's "skipped: maximum number of running instances reached": the
    daemon's jobs run one at a time by design and are woken early when work arrives, so a
    wake-up while the job runs is expected, not a warning (the running job sees the work)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()
