"""Delivery from the outbox: send every due delivery row through its channel.

At least once: a delivery is marked sent only after its channel returned, so a crash in between
sends the same alert (same id) again. Channels are served side by side, so a slow or failing
one never holds up the others. A failed attempt is retried with exponential backoff and jitter
(first retry after about 10 s, at most an hour apart, never sooner than a receiver's Retry-After);
after 24 hours, the channel's ``max_attempts``, or an answer that retrying cannot change, the
delivery is dead: kept, logged, shown by ``raqib alerts`` and sent again by
``raqib alerts retry ID``. A channel's ``rate`` (N per period) holds what exceeds it in the
outbox for later; it is counted over a sliding window from the deliveries the outbox marks
sent, so a reload, a restart or a second worker neither refills nor multiplies it.

Several workers: each delivery is claimed with a lease before it is sent (``Outbox.claim``), so
one worker sends it; only a worker killed mid-send (its lease runs out) leaves it to be sent
again, with the same alert id, and it is marked sent once.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from ulid import ULID

from worker import config
from worker.alerts.channels import Channel
from worker.alerts.digest import build_digest
from worker.db import Database, DueDelivery
from worker.errors import DeliveryError
from worker.metrics import Metrics

log = structlog.get_logger("raqib.deliver")

FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)


def retry_delay(attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff with jitter: ~10 s, 20 s, 40 s … at most an hour."""
    base = min(FIRST_RETRY.total_seconds() * 2.0 ** min(max(attempts - 1, 0), 20),
               MAX_RETRY.total_seconds())
    return timedelta(seconds=base * (0.5 + rand()))   # jitter around the base; never zero


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0   # over a channel's rate: still in the outbox

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.held += other.held


class Deliverer:
    def __init__(self, db: Database, channels: dict[str, Channel],
                 specs: dict[str, config.Channel], clock: Callable[[], datetime], *,
                 rand: Callable[[], float] = random.random, batch: int = 100,
                 metrics: Metrics | None = None, holder: str = "",
                 lease: timedelta = timedelta(seconds=60)) -> None:
        self.metrics = metrics or Metrics()
        self.db = db
        self.channels = channels
        self.specs = specs
        self.clock = clock
        self.rand = rand
        self.batch = batch
        self.holder = holder or str(ULID())   # whose leases this deliverer's claims are
        self.lease = lease
        self.rates = {name: (spec.rate.count, timedelta(seconds=spec.rate.seconds))
                      for name, spec in specs.items() if spec.rate is not None}
        # Channels with a digest get their alerts at digest time, not one by one.
        self.immediate = sorted(n for n in channels if not (n in specs and specs[n].digest))
        self._lock = threading.Lock()   # one delivery round at a time

    def digest(self, name: str) -> int:
        """Send channel *name* one message with every alert waiting for it; returns how many
        alerts it carried (0: nothing to send, or it failed and they wait for the next)."""
        with self._lock:
            due = self.db.outbox.pending(name)
            if not due:
                return 0
            payloads = self.db.listings.alert_payloads(ids=sorted({d.alert_id for d in due}))
            digest = build_digest(name, payloads, self.clock())
            try:
                self.channels[name].send_digest(digest)
            except Exception as exc:   # the isolation boundary of one digest
                for d in due:
                    self.db.outbox.failed(d.id, f"digest: {exc}", self.clock(), self.holder)
                self.metrics.deliveries.labels(name, "failed").inc(len(due))
                log.warning("digest failed; its alerts wait for the next one", channel=name,
                            alerts=len(due), error=str(exc))
                return 0
            self.db.outbox.delivered([d.id for d in due], self.clock())
            self.metrics.deliveries.labels(name, "sent").inc(len(due))
            log.info("digest delivered", channel=name, alerts=len(due), digest_id=digest["id"])
            return len(due)

    def run(self, *, until_done: bool = False) -> DeliveryReport:
        """Send what is due: one batch, or (``until_done``) batches until nothing due can be
        sent now."""
        report = DeliveryReport()
        with self._lock:
            while True:
                due, held = self.db.outbox.claim(self.holder, self.lease,
                                                 channels=self.immediate, limit=self.batch,
                                                 rates=self.rates)
                report.held += held
                if not due:
                    break
                round_report = self._round(due)
                report.add(round_report)
                progress = round_report.sent + round_report.failed
                if not until_done or len(due) < self.batch or not progress:
                    break
        return report

    def _round(self, due: list[DueDelivery]) -> DeliveryReport:
        payloads = {p["id"]: p for p in
                    self.db.listings.alert_payloads(ids=sorted({d.alert_id for d in due}))}
        by_channel: dict[str, list[DueDelivery]] = defaultdict(list)
        for d in due:
            by_channel[d.channel].append(d)
        report = DeliveryReport()
        with ThreadPoolExecutor(max(1, len(by_channel)), thread_name_prefix="deliver") as pool:
            for part in pool.map(lambda item: self._channel(item[0], item[1], payloads),
                                 by_channel.items()):
                report.add(part)
        return report

    def _channel(self, name: str, due: list[DueDelivery],
                 payloads: dict[str, dict[str, Any]]) -> DeliveryReport:
        report = DeliveryReport()
        for d in due:
            self._send(d, payloads[d.alert_id], report)
        return report

    def _send(self, d: DueDelivery, payload: dict[str, Any], report: DeliveryReport) -> None:
        """The isolation boundary of one delivery: a failure is recorded on it and logged,
        never raised into the loop."""
        try:
            self.channels[d.channel].send(payload)
        except Exception as exc:   # DeliveryError, or a channel's bug: the same treatment
            self._failed(d, exc, report)
            return
        if not self.db.outbox.delivered(d.id, self.clock()):
            log.info("delivery already marked sent by another worker", channel=d.channel,
                     alert_id=d.alert_id)
        self.metrics.deliveries.labels(d.channel, "sent").inc()
        report.sent += 1
        log.info("alert delivered", channel=d.channel, alert_id=d.alert_id, attempt=d.attempts + 1)

    def _failed(self, d: DueDelivery, exc: Exception, report: DeliveryReport) -> None:
        now = self.clock()
        attempts = d.attempts + 1
        if isinstance(exc, DeliveryError):
            error, permanent, wait = str(exc), exc.permanent, exc.retry_after
        else:
            error = f"deliver: {d.channel}: internal error: {type(exc).__name__}: {exc}"
            permanent, wait = False, None
        spec = self.specs.get(d.channel)
        max_attempts = spec.max_attempts if spec is not None else None
        give_up = permanent or now - d.created_at >= GIVE_UP_AFTER or (
            max_attempts is not None and attempts >= max_attempts)
        retry = None if give_up else now + max(retry_delay(attempts, self.rand),
                                               wait or timedelta(0))
        self.db.outbox.failed(d.id, error, retry, self.holder)
        self.metrics.deliveries.labels(d.channel, "dead" if give_up else "failed").inc()
        report.failed += 1
        if give_up:
            report.dead += 1
            log.error("delivery dead: kept; `raqib alerts retry` sends it again",
                      channel=d.channel, alert_id=d.alert_id, attempts=attempts, error=error)
        else:
            log.warning("delivery failed", channel=d.channel, alert_id=d.alert_id,
                        attempts=attempts, error=error, retry_at=retry)
