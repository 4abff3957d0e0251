"""JSON Feed (https://jsonfeed.org, versions 1.0 and 1.1) into the same Articles as RSS and Atom.

An item gives: ``title`` (plain text); ``summary``; ``content_html`` (as text) or else
``content_text`` as the body; ``url`` (else ``external_url``) resolved against the document's
URL, as an RSS link is; ``id`` as the GUID (a number is read as its string, as the spec asks);
``date_published`` (else ``date_modified``) as the date; ``language`` (1.1), else the feed's.

A document is read as a JSON Feed when its ``version`` names jsonfeed.org, or when it has no
version but a list of ``items``; other JSON is an error that says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from worker.dates import DateReader, plausible
from worker.domain import Article
from worker.errors import ParseError
from worker.htmltext import clean_space, html_to_text
from worker.links import web_url

NOT_A_FEED = "parse: not a readable feed: got"


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return ""


def load(text: str) -> dict[str, Any]:
    """The JSON Feed object of *text*, or ParseError saying what the JSON is instead."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{NOT_A_FEED} JSON that does not parse ({exc})") from exc
    if not isinstance(obj, dict):
        what = {list: "an array", str: "a string", bool: "true or false", int: "a number",
                float: "a number"}.get(type(obj), "null")
        raise ParseError(f"{NOT_A_FEED} JSON that is not a JSON Feed ({what}, not an object)")
    version = _string(obj.get("version"))
    items = obj.get("items")
    if "jsonfeed.org/version/" not in version and not (not version and isinstance(items, list)):
        what = f"version {version!r}" if version else "no version and no items"
        raise ParseError(f"{NOT_A_FEED} JSON that is not a JSON Feed ({what})")
    if not isinstance(items, list):
        raise ParseError("parse: not a readable feed: a JSON Feed without a list of items")
    return obj


def articles(obj: Mapping[str, Any], *, source: str, base: str | None,
             tags: tuple[str, ...], dates: DateReader,
             language: str | None = None) -> list[Article]:
    """The Articles of a JSON Feed object (from ``load``)."""
    feed_lang = _string(obj.get("language")) or language
    base = base or web_url(_string(obj.get("feed_url")))
    out = []
    for item in obj.get("items") or []:
        if not isinstance(item, Mapping):
            continue
        lang = _string(item.get("language")) or feed_lang
        summary = clean_space(_string(item.get("summary")))
        body = html_to_text(_string(item.get("content_html"))) or \
            clean_space(_string(item.get("content_text")))
        if body == summary:
            summary = ""
        url = web_url(_string(item.get("url")), base) or \
            web_url(_string(item.get("external_url")), base)
        published = None
        for key in ("date_published", "date_modified"):
            published = plausible(dates.text(_string(item.get(key)), lang), dates.now)
            if published is not None:
                break
        out.append(Article(
            source=source, title=clean_space(_string(item.get("title"))), summary=summary,
            body=body, url=url, guid=_string(item.get("id")).strip() or None,
            published=published, tags=tags, feed_language=lang or None))
    return out

