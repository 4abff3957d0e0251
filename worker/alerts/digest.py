"""Digests: a channel with ``digest: hourly`` or ``digest: daily 08:00 [Zone]`` receives one
message at that time listing the alerts raised since its last digest, grouped by rule with
their story counts, instead of one message per alert. The alerts wait in the outbox until
then, so a restart loses none of them.

Each item says what its alert is about: the article (title, link, source), or for a ``quiet``
alert the source and its `headline`; ``summary`` holds what the alert's kind adds, in the
words email and chat use (`worker.alerts.render.summary_lines`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ulid import ULID

from worker.alerts.payload import iso
from worker.alerts.render import headline, kind_of, link, source_name, summary_lines

SCHEMA = "raqib.digest/1"
# What an item carries over from its payload when the payload has it.
DETAILS = ("window", "held", "spike", "first_seen", "quiet", "resolved", "resolves",
           "silenced_by")


def build_digest(channel: str, payloads: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The digest of *payloads* (alert payloads, any order)."""
    rules: dict[str, dict[str, Any]] = {}
    for p in sorted(payloads, key=lambda p: (p["created_at"] or "", p["id"])):
        rule = rules.setdefault(p["rule"]["id"], {**p["rule"], "alerts": 0, "stories": set(),
                                                  "items": []})
        rule["alerts"] += 1
        story = p.get("story")
        if story:
            rule["stories"].add(story["id"])
        article = p.get("article")
        item: dict[str, Any] = {"alert_id": p["id"], "kind": kind_of(p),
                                "title": article["title"] if article else headline(p),
                                "url": link(p), "source": source_name(p),
                                "created_at": p["created_at"], "story": story,
                                "summary": summary_lines(p)}
        item.update({k: p[k] for k in DETAILS if k in p})
        rule["items"].append(item)
    severity = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    ordered = sorted(rules.values(), key=lambda r: (severity.get(r["severity"], 9), r["id"]))
    return {
        "schema": SCHEMA,
        "id": str(ULID.from_datetime(now)),
        "created_at": iso(now),
        "channel": channel,
        "alerts": len(payloads),
        "since": min((p["created_at"] for p in payloads), default=None),
        "rules": [{**r, "stories": len(r["stories"])} for r in ordered],
    }
