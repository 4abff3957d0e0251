"""Article links: resolved against the document's base, kept only when they are web URLs."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

_ABSOLUTE = re.compile(r"https?://[^/?#\s\\]", re.IGNORECASE)   # most links: nothing to join


def web_url(link: str | None, base: str | None = None) -> str | None:
    """*link* resolved against *base* (what a browser does with a relative link: ``/x``,
    ``x``, ``../x``, ``//host/x``, ``?q``, ``#f``), when the result is an http(s) URL with a
    host that parses (a port that is a number, brackets that hold an IPv6 address); None
    otherwise (no link, a ``mailto:``, a bare id, ``http://[broken``)."""
    link = (link or "").strip()
    if not link:
        return None
    if base and not _ABSOLUTE.match(link):
        try:
            link = urljoin(base, link)
        except ValueError:
            return None
    try:
        parts = urlsplit(link)
        ok = parts.scheme.lower() in {"http", "https"} and bool(parts.hostname)
        _ = parts.port   # raises on a port that is no number
    except ValueError:
        return None
    return link if ok else None
