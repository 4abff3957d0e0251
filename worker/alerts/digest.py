"""Digests: a channel with ``digest: hourly`` or ``digest: daily 08:00 [Zone]`` receives one
message at that time listing the alerts raised since its last digest, grouped by rule with
their story counts, instead of one message per alert. The alerts wait in the outbox until
then, so a restart loses none of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ulid import ULID

from worker.alerts.payload import iso

SCHEMA = "raqib.digest/1"


def build_digest(channel: str, payloads: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The digest of *payloads* (alert payloads, any order)."""
    rules: dict[str, dict[str, Any]] = {}
    for p in sorted(payloads, key=lambda p: (p["created_at"] or "", p["id"])):
        rule = rules.setdefault(p["rule"]["id"], {**p["rule"], "alerts": 0, "stories": set(),
                                                  "items": []})
        rule["alerts"] += 1
        rule["stories"].add(p["story"]["id"])
        item: dict[str, Any] = {"alert_id": p["id"], "title": p["article"]["title"],
                                "url": p["article"]["url"], "source": p["article"]["source"],
                                "created_at": p["created_at"], "story": p["story"]}
        item.update({k: p[k] for k in ("window", "held") if k in p})
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
