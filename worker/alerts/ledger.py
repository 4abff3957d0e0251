"""The ledger: what the alert policy reads and writes, behind one small protocol.

``SqlLedger`` (``worker.db.ledger``) keeps it in the database, inside the ingest's unit of work,
so windows, throttles and the once-per-story rule hold across reloads, restarts and workers.
``MemoryLedger`` keeps it in dictionaries for ``backtest``, which replays stored articles and
writes nothing. Both are driven by the same ``worker.alerts.raising`` functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from worker.domain import AlertRecord, HeldRecord, HitRecord


class Ledger(Protocol):
    """What deciding alerts needs to know and to record."""

    def prime(self, pairs: Iterable[tuple[str, int]]) -> None:
        """A hint: these (rule, story) pairs are about to be asked about (a ledger may look
        them up at once)."""
        ...

    def alerted(self, rule_id: str, story_ids: Iterable[int]) -> set[int]:
        """Which of *story_ids* already have an alert of *rule_id*."""
        ...

    def add_hit(self, hit: HitRecord) -> None:
        """Record a windowed rule's hit (once per (rule, article))."""
        ...

    def hits(self, rule_id: str, after: datetime) -> list[HitRecord]:
        """The rule's hits stored after *after*, newest first."""
        ...

    def last_fired(self, rule_id: str) -> datetime | None:
        """When the rule's window last fired."""
        ...

    def set_last_fired(self, rule_id: str, at: datetime) -> None: ...

    def last_alert(self, rule_id: str) -> datetime | None:
        """When the rule last raised an alert (from the alerts themselves)."""
        ...

    def held(self, rule_id: str) -> list[HeldRecord]:
        """What the rule's throttle holds back, oldest first."""
        ...

    def hold(self, record: HeldRecord) -> None:
        """Hold a story back (once per (rule, story))."""
        ...

    def release(self, rule_id: str) -> None:
        """Forget what the rule's throttle held (it rode on an alert)."""
        ...

    def rules_holding(self) -> list[str]:
        """Rules whose throttle holds something back."""
        ...

    def add_alert(self, alert: AlertRecord) -> bool:
        """Write an alert with its matches and outbox rows; False when the (rule, story)
        already has one (another worker was first): nothing is written then."""
        ...


class MemoryLedger:
    """The ledger in memory, for backtest: alerts are collected in ``alerts``."""

    def __init__(self) -> None:
        self.alerts: list[AlertRecord] = []
        self._alerted: set[tuple[str, int]] = set()
        self._hits: dict[str, list[HitRecord]] = defaultdict(list)
        self._hit_keys: set[tuple[str, int]] = set()
        self._fired: dict[str, datetime] = {}
        self._last_alert: dict[str, datetime] = {}
        self._held: dict[str, list[HeldRecord]] = defaultdict(list)

    def prime(self, pairs: Iterable[tuple[str, int]]) -> None:
        pass   # everything is in memory already

    def alerted(self, rule_id: str, story_ids: Iterable[int]) -> set[int]:
        return {s for s in story_ids if (rule_id, s) in self._alerted}

    def add_hit(self, hit: HitRecord) -> None:
        if (hit.rule_id, hit.article_id) not in self._hit_keys:
            self._hit_keys.add((hit.rule_id, hit.article_id))
            self._hits[hit.rule_id].append(hit)

    def hits(self, rule_id: str, after: datetime) -> list[HitRecord]:
        found = [h for h in self._hits[rule_id] if h.at > after]
        return sorted(found, key=lambda h: (h.at, h.article_id), reverse=True)

    def last_fired(self, rule_id: str) -> datetime | None:
        return self._fired.get(rule_id)

    def set_last_fired(self, rule_id: str, at: datetime) -> None:
        self._fired[rule_id] = at

    def last_alert(self, rule_id: str) -> datetime | None:
        return self._last_alert.get(rule_id)

    def held(self, rule_id: str) -> list[HeldRecord]:
        return list(self._held.get(rule_id, ()))

    def hold(self, record: HeldRecord) -> None:
        held = self._held[record.rule_id]
        if all(h.story_id != record.story_id for h in held):
            held.append(record)

    def release(self, rule_id: str) -> None:
        self._held.pop(rule_id, None)

    def rules_holding(self) -> list[str]:
        return sorted(r for r, held in self._held.items() if held)

    def add_alert(self, alert: AlertRecord) -> bool:
        key = (alert.rule_id, alert.story_id)
        if key in self._alerted:
            return False
        self._alerted.add(key)
        self._last_alert[alert.rule_id] = max(alert.created_at,
                                              self._last_alert.get(alert.rule_id,
                                                                   alert.created_at))
        self.alerts.append(alert)
        return True
