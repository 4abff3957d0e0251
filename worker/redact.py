"""Keeping secrets out of logs and listings.

Every value the configuration read from the environment (``${VAR}``) and every channel
password or secret is registered here as a secret; a structlog processor replaces any of them
with ``***`` wherever it appears in a log event. URLs shown to users lose the password of
their credentials and the values of query parameters that look like keys or tokens.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET = 4   # shorter values would mask ordinary words
_SENSITIVE_PARAM = re.compile(r"(?i)(token|key|secret|pass(word)?|auth|sig(nature)?|session)")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def add_secrets(values: Iterable[str | None]) -> None:
    """Treat each of *values* as a secret from now on."""
    global _pattern  # noqa: PLW0603 (one registry for the process, as logging is one)
    with _lock:
        before = len(_secrets)
        _secrets.update(v for v in values if v and len(v) >= MIN_SECRET)
        if len(_secrets) != before:
            ordered = sorted(_secrets, key=len, reverse=True)   # longest first
            _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def scrub(text: str) -> str:
    """*text* with every registered secret masked."""
    pattern = _pattern
    return pattern.sub(MASK, text) if pattern is not None and text else text


def url(value: str) -> str:
    """A URL fit to show: no password, no token-like query values, no registered secret."""
    try:
        parts = urlsplit(value)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
        query = urlencode([(k, MASK if _SENSITIVE_PARAM.search(k) else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)],
                          safe="*")
        value = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        pass
    return scrub(value)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(v) for v in value)
    return value


Event = MutableMapping[str, Any]


def processor(_logger: Any, _method: str, event: Event) -> Event:
    """structlog processor: mask secrets in every value of the event."""
    if _pattern is None:
        return event
    for key, value in event.items():
        event[key] = _scrub_value(value)
    return event
