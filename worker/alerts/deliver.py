"""Delivery from the outbox: send every due delivery row through its channel.

At least once: a delivery is marked sent only after its channel returned, so a crash in between
sends the same alert (same id) again. A failing channel never holds up the others."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from worker.alerts.channels import Channel
from worker.errors import DeliveryError
from worker.store import Store

log = structlog.get_logger("raqib.deliver")

FIRST_RETRY = timedelta(seconds=15)
MAX_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = 20   # attempts, about a day at the capped interval


def retry_delay(attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff with jitter: ~15 s, 30 s, 1 min … capped at 1 h."""
    base = min(FIRST_RETRY.total_seconds() * 2.0 ** max(attempts - 1, 0),
               MAX_RETRY.total_seconds())
    return timedelta(seconds=base * (0.5 + rand()))   # jitter around the base; never zero


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    waiting: int = 0


class Deliverer:
    def __init__(self, store: Store, channels: dict[str, Channel],
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.channels = channels
        self.clock = clock

    def run(self) -> DeliveryReport:
        report = DeliveryReport()
        due = self.store.due_deliveries(self.clock())
        payloads = {p["id"]: p for p in
                    self.store.alert_payloads(ids=sorted({d.alert_id for d in due}))} if due else {}
        for d in due:
            channel = self.channels.get(d.channel)
            if channel is None:
                report.waiting += 1   # no sender for this channel type yet: kept in the outbox
                continue
            try:
                channel.send(payloads[d.alert_id])
            except DeliveryError as exc:
                report.failed += 1
                attempts = d.attempts + 1
                retry = None if attempts >= GIVE_UP_AFTER else self.clock() + retry_delay(attempts)
                self.store.delivery_failed(d.id, str(exc), retry)
                log.warning("delivery failed", channel=d.channel, alert_id=d.alert_id,
                            attempts=attempts, error=str(exc), retry_at=retry)
                continue
            self.store.delivered(d.id, self.clock())
            report.sent += 1
            log.info("alert delivered", channel=d.channel, alert_id=d.alert_id)
        return report
