"""The alert payload (schema ``raqib.alert/1``), as the file channel writes it and a webhook
POSTs it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SCHEMA = "raqib.alert/1"


def iso(when: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, to the second."""
    if when is None:
        return None
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sample() -> dict[str, Any]:
    """A sample alert for `raqib test-channel`, in Arabic and English."""
    from ulid import ULID  # noqa: PLC0415

    now = datetime.now(UTC)
    return build_payload(
        alert_id=str(ULID()), created_at=now, rule_id="raqib-test",
        rule_title="raqib test alert", severity="low", article_id=0,
        url="https://example.org/raqib-test", title="اختبار: عين الأسد — a raqib test alert",
        source="raqib", published=now, language="ar", story_id=0, story_sources=1,
        matches=[{"term": "@ain-al-asad", "field": "title", "text": "عين الأسد",
                  "snippet": "اختبار: عين الأسد — a raqib test alert"}])


def build_payload(*, alert_id: str, created_at: datetime, rule_id: str, rule_title: str,
                  severity: str, article_id: int | None, url: str | None, title: str,
                  source: str, published: datetime | None, language: str | None,
                  story_id: int | None, story_sources: int, matches: list[dict[str, str]],
                  detail: dict[str, Any] | None = None, kind: str | None = None,
                  silenced_by: str | None = None,
                  source_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The payload. *kind* is ``match``, ``window``, ``spike``, ``first_seen`` or ``quiet``
    (guessed from *detail* for rows stored before kinds were); *detail* adds what the kind
    carries (``window``, ``spike`` with top-level ``count`` and ``baseline``, ``first_seen``,
    ``quiet`` with ``resolved``) and ``held`` (what a throttle held back). A quiet alert has
    ``source`` (*source_info*) in place of ``article`` and ``story``."""
    if kind is None:
        kind = "window" if detail and "window" in detail else "match"
    head: dict[str, Any] = {
        "schema": SCHEMA,
        "id": alert_id,
        "created_at": iso(created_at),
        "rule": {"id": rule_id, "title": rule_title, "severity": severity},
    }
    if kind == "quiet":
        head["source"] = source_info or {"name": source}
    else:
        head["article"] = {"id": article_id, "url": url, "title": title, "source": source,
                           "published": iso(published), "language": language}
        head["story"] = {"id": str(story_id), "sources": story_sources}
    return {
        **head,
        "kind": kind,
        "silenced_by": silenced_by,
        "matches": matches,
        **(detail or {}),
        **({"count": detail["window"]["count"]} if detail and "window" in detail else {}),
    }
