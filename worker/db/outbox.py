"""The outbox: one delivery row per (alert, channel), written with the alert; sent, retried
or given up on by the delivery job. A channel's rate is counted from its sent rows, so a
reload, a restart or a second worker neither resets nor multiplies it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from worker.db.articles import chunks
from worker.db.uow import Units
from worker.schema import Alert, Delivery


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    alert_id: str
    channel: str
    attempts: int
    created_at: datetime


_COLUMNS = (Delivery.id, Delivery.alert_id, Delivery.channel, Delivery.attempts,
            Delivery.created_at)


class Outbox:
    def __init__(self, units: Units) -> None:
        self.units = units

    def due(self, now: datetime, *, channels: Sequence[str],
            limit: int = 500) -> list[DueDelivery]:
        """Pending deliveries of *channels* whose time has come, oldest first."""
        q = (select(*_COLUMNS)
             .where(Delivery.status == "pending", Delivery.next_attempt <= now,
                    Delivery.channel.in_(list(channels)))
             .order_by(Delivery.next_attempt, Delivery.id).limit(limit))
        with self.units.read("read due deliveries") as conn:
            return [DueDelivery(*r) for r in conn.execute(q)]

    def pending(self, channel: str, limit: int = 5000) -> list[DueDelivery]:
        """Every pending delivery of *channel*, whatever its time (a digest takes them all)."""
        q = (select(*_COLUMNS).where(Delivery.status == "pending", Delivery.channel == channel)
             .order_by(Delivery.id).limit(limit))
        with self.units.read("read pending deliveries") as conn:
            return [DueDelivery(*r) for r in conn.execute(q)]

    def sent_since(self, channel: str, since: datetime) -> tuple[int, datetime | None]:
        """How many messages *channel* sent after *since*, and the oldest of those times
        (when the first of them leaves the window)."""
        q = select(func.count(), func.min(Delivery.sent_at)).where(
            Delivery.channel == channel, Delivery.status == "sent", Delivery.sent_at > since)
        with self.units.read("count sent deliveries") as conn:
            n, oldest = conn.execute(q).one()
        return int(n or 0), oldest

    def delivered(self, delivery_id: int, now: datetime) -> None:
        with self.units.unit(f"mark delivery {delivery_id} sent") as uow:
            uow.conn.execute(update(Delivery).where(Delivery.id == delivery_id).values(
                status="sent", sent_at=now, attempts=Delivery.attempts + 1, last_error=None))

    def failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: retried at *retry_at*, or dead when it is None."""
        values: dict[str, Any] = {"attempts": Delivery.attempts + 1, "last_error": error}
        values |= {"next_attempt": retry_at} if retry_at is not None else {"status": "dead"}
        with self.units.unit(f"record failed delivery {delivery_id}") as uow:
            uow.conn.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    def retry_alert(self, alert_id: str, now: datetime) -> int:
        """Make an alert's undelivered deliveries (dead or waiting) due now, with a fresh
        24 hours; returns how many."""
        with self.units.unit(f"retry alert {alert_id}") as uow:
            result = uow.conn.execute(
                update(Delivery)
                .where(Delivery.alert_id == alert_id, Delivery.status != "sent")
                .values(status="pending", next_attempt=now, created_at=now))
            return int(result.rowcount or 0)

    def alert_exists(self, alert_id: str) -> bool:
        with self.units.read("read alert") as conn:
            return conn.scalar(select(func.count()).select_from(Alert)
                               .where(Alert.id == alert_id)) == 1

    def of_alerts(self, alert_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {a: [] for a in alert_ids}
        with self.units.read("read deliveries") as conn:
            for part in chunks(list(alert_ids)):
                for r in conn.execute(select(Delivery).where(Delivery.alert_id.in_(part))
                                      .order_by(Delivery.channel)):
                    out[r.alert_id].append(Delivery(**r._mapping))
        return out
