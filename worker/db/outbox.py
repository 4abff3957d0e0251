"""The outbox: one delivery row per (alert, channel), written with the alert; sent, retried
or given up on by the delivery job. A channel's rate is counted from its sent rows, so a
reload, a restart or a second worker neither resets nor multiplies it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text, update

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

    def claim(self, holder: str, lease: timedelta, *, channels: Sequence[str], limit: int,
              rates: Mapping[str, tuple[int, timedelta]]) -> tuple[list[DueDelivery], int]:
        """Claim due deliveries of *channels* that no live worker holds, oldest first, for
        *holder* until *lease* from now. A channel in *rates* (N messages per period) gets no
        more than N less those it sent within the period and those other workers are sending
        now; its claims are taken in turns across workers, so the rate holds for the fleet.
        Returns the claimed deliveries and how many due ones the rates held back."""
        out: list[DueDelivery] = []
        held = 0
        with self.units.claim_unit("claim due deliveries") as uow:
            now, conn = uow.now, uow.conn
            free = or_(Delivery.lease_holder.is_(None), Delivery.lease_expires < now)
            due = (Delivery.status == "pending", Delivery.next_attempt <= now, free)

            def take(channel_filter: Any, n: int) -> list[DueDelivery]:
                q = (select(*_COLUMNS).where(*due, channel_filter)
                     .order_by(Delivery.next_attempt, Delivery.id).limit(n)
                     .with_for_update(skip_locked=True))
                return [DueDelivery(*r) for r in conn.execute(q)]

            plain = [c for c in channels if c not in rates]
            if plain:
                out += take(Delivery.channel.in_(plain), limit)
            for channel in (c for c in channels if c in rates):
                count, window = rates[channel]
                if uow.dialect == "postgresql":   # one rated claim of this channel at a time
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('raqib.rate'), "
                                      "hashtext(:c))"), {"c": channel})
                sent = conn.scalar(select(func.count()).where(
                    Delivery.channel == channel, Delivery.status == "sent",
                    Delivery.sent_at > now - window)) or 0
                sending = conn.scalar(select(func.count()).where(
                    Delivery.channel == channel, Delivery.status == "pending",
                    Delivery.lease_holder.is_not(None), Delivery.lease_expires >= now)) or 0
                allowed = max(0, count - int(sent) - int(sending))
                waiting = conn.scalar(select(func.count()).where(
                    *due, Delivery.channel == channel)) or 0
                room = min(limit - len(out), allowed)
                got = take(Delivery.channel == channel, room) if room > 0 else []
                held += max(0, int(waiting) - len(got))
                out += got
            if out:
                conn.execute(update(Delivery).where(Delivery.id.in_([d.id for d in out]))
                             .values(lease_holder=holder, lease_expires=now + lease))
        out.sort(key=lambda d: d.id)
        return out, held

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

    def delivered(self, delivery_ids: int | Sequence[int], now: datetime) -> int:
        """Mark deliveries sent (and release their leases). Only a pending row is marked, so a
        delivery two workers both sent (one's lease ran out mid-send) is marked once; returns
        how many were marked here."""
        ids = [delivery_ids] if isinstance(delivery_ids, int) else list(delivery_ids)
        marked = 0
        with self.units.unit(f"mark {len(ids)} deliveries sent") as uow:
            for part in chunks(ids):
                marked += int(uow.conn.execute(
                    update(Delivery).where(Delivery.id.in_(part), Delivery.status == "pending")
                    .values(status="sent", sent_at=now, attempts=Delivery.attempts + 1,
                            last_error=None, lease_holder=None, lease_expires=None))
                    .rowcount or 0)
        return marked

    def failed(self, delivery_id: int, error: str, retry_at: datetime | None,
               holder: str | None = None) -> bool:
        """Record a failed attempt: retried at *retry_at*, or dead when it is None. Not
        recorded (False) when the delivery was meanwhile sent, or is another worker's now."""
        values: dict[str, Any] = {"attempts": Delivery.attempts + 1, "last_error": error,
                                  "lease_holder": None, "lease_expires": None}
        values |= {"next_attempt": retry_at} if retry_at is not None else {"status": "dead"}
        with self.units.unit(f"record failed delivery {delivery_id}") as uow:
            mine = or_(Delivery.lease_holder.is_(None), Delivery.lease_expires < uow.now)
            if holder is not None:
                mine = or_(mine, Delivery.lease_holder == holder)
            result = uow.conn.execute(update(Delivery).where(
                Delivery.id == delivery_id, Delivery.status == "pending", mine).values(**values))
            return bool(result.rowcount)

    def retry_alert(self, alert_id: str, now: datetime) -> int:
        """Make an alert's undelivered deliveries (dead or waiting) due now, with a fresh
        24 hours; returns how many."""
        with self.units.unit(f"retry alert {alert_id}") as uow:
            result = uow.conn.execute(
                update(Delivery)
                .where(Delivery.alert_id == alert_id, Delivery.status != "sent")
                .values(status="pending", next_attempt=now, created_at=now,
                        lease_holder=None, lease_expires=None))
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
