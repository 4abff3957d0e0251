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

from worker.domain import AlertRecord, HeldRecord, HitRecord, QuietState


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

    def count_stories(self, rule_id: str, after: datetime, until: datetime) -> int:
        """How many stories have hits of the rule stored after *after*, up to *until*."""
        ...

    def spiking(self, rule_id: str) -> bool:
        """Whether the rule fired for a spike that is not over."""
        ...

    def set_spiking(self, rule_id: str, spiking: bool) -> None: ...

    def last_seen(self, rule_id: str, keys: Iterable[str]) -> dict[str, datetime]:
        """When the rule last matched a story with each of *keys* (first_seen)."""
        ...

    def see(self, rule_id: str, keys: Iterable[str], at: datetime) -> None:
        """Record that the rule matched a story with *keys* at *at*."""
        ...

    def quiet_state(self, rule_id: str, source_id: int) -> QuietState | None:
        """Where a quiet rule's watch of a source stands: its last news and open spell."""
        ...

    def set_quiet_state(self, state: QuietState) -> None: ...

    def add_alert(self, alert: AlertRecord) -> bool:
        """Write an alert with its matches and outbox rows (none when silenced); False when
        the (rule, story) already has one (another worker was first): nothing is written
        then."""
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
        self._spiking: set[str] = set()
        self._seen: dict[tuple[str, str], datetime] = {}
        self._quiet: dict[tuple[str, int], QuietState] = {}

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

    def count_stories(self, rule_id: str, after: datetime, until: datetime) -> int:
        return len({h.story_id for h in self._hits[rule_id] if after < h.at <= until})

    def spiking(self, rule_id: str) -> bool:
        return rule_id in self._spiking

    def set_spiking(self, rule_id: str, spiking: bool) -> None:
        if spiking:
            self._spiking.add(rule_id)
        else:
            self._spiking.discard(rule_id)

    def last_seen(self, rule_id: str, keys: Iterable[str]) -> dict[str, datetime]:
        return {k: self._seen[(rule_id, k)] for k in keys if (rule_id, k) in self._seen}

    def see(self, rule_id: str, keys: Iterable[str], at: datetime) -> None:
        for k in keys:
            self._seen[(rule_id, k)] = max(at, self._seen.get((rule_id, k), at))

    def quiet_state(self, rule_id: str, source_id: int) -> QuietState | None:
        return self._quiet.get((rule_id, source_id))

    def set_quiet_state(self, state: QuietState) -> None:
        self._quiet[(state.rule_id, state.source_id)] = state

    def add_alert(self, alert: AlertRecord) -> bool:
        if alert.story_id is not None:
            key = (alert.rule_id, alert.story_id)
            if key in self._alerted:
                return False
            self._alerted.add(key)
        self._last_alert[alert.rule_id] = max(alert.created_at,
                                              self._last_alert.get(alert.rule_id,
                                                                   alert.created_at))
        self.alerts.append(alert)
        return True
