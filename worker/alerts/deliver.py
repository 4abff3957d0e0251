"""Delivery from the outbox: send every due delivery row through its channel.

At least once: a delivery is marked sent only after its channel returned, so a crash in between
sends the same alert (same id) again. A failing channel never holds up the others."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from worker.alerts.channels import Channel
from worker.errors import DeliveryError
from worker.store import DueDelivery, Store

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


class Deliverer:
    def __init__(self, store: Store, channels: dict[str, Channel],
                 clock: Callable[[], datetime], batch: int = 500) -> None:
        self.store = store
        self.channels = channels
        self.clock = clock
        self.batch = batch

    def run(self, *, until_done: bool = False) -> DeliveryReport:
        """Send due deliveries of the channels this process can send: one batch, or batches
        until none is due. Deliveries of other channel types wait in the outbox."""
        report = DeliveryReport()
        while True:
            due = self.store.due_deliveries(self.clock(), channels=sorted(self.channels),
                                            limit=self.batch)
            if not due:
                break
            ids = sorted({d.alert_id for d in due})
            payloads = {p["id"]: p for p in self.store.alert_payloads(ids=ids)}
            for d in due:
                self._send(d, payloads[d.alert_id], report)
            if not until_done or len(due) < self.batch:
                break
        return report

    def _send(self, d: DueDelivery, payload: dict[str, Any], report: DeliveryReport) -> None:
        """The isolation boundary of one delivery: a failure is recorded on it and logged,
        never raised into the loop."""
        try:
            self.channels[d.channel].send(payload)
        except Exception as exc:   # DeliveryError, or a channel's bug: the same treatment
            report.failed += 1
            attempts = d.attempts + 1
            error = str(exc) if isinstance(exc, DeliveryError) else \
                f"deliver: {d.channel}: internal error: {type(exc).__name__}: {exc}"
            retry = None if attempts >= GIVE_UP_AFTER else self.clock() + retry_delay(attempts)
            self.store.delivery_failed(d.id, error, retry)
            log.warning("delivery failed", channel=d.channel, alert_id=d.alert_id,
                        attempts=attempts, error=error, retry_at=retry)
            return
        self.store.delivered(d.id, self.clock())
        report.sent += 1
        log.info("alert delivered", channel=d.channel, alert_id=d.alert_id)
