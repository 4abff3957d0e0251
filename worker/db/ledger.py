"""The alert ledger in SQL, inside one unit of work: alerts with their matches and outbox
rows, window hits, window state and what throttles hold. It answers the protocol of
``worker.alerts.ledger.Ledger`` (structurally: ``db`` does not import ``alerts``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select

from worker.db.articles import chunks
from worker.db.engine import insert
from worker.db.uow import UnitOfWork
from worker.domain import AlertRecord, HeldRecord, HitRecord, QuietState
from worker.schema import (
    Alert,
    Article,
    Delivery,
    HeldAlert,
    Match,
    QuietWatch,
    RuleHit,
    RuleState,
    Sighting,
)


class SqlLedger:
    def __init__(self, uow: UnitOfWork) -> None:
        self.conn = uow.conn
        self.dialect = uow.dialect
        # (rule, story) pairs looked up once for a batch (``prime``), kept current by
        # add_alert: the unit of work holds the ingest lock, so no one else adds any.
        self._primed: set[tuple[str, int]] = set()
        self._alerted: set[tuple[str, int]] = set()

    def prime(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Look up at once whether these (rule, story) pairs have alerts."""
        wanted = sorted(set(pairs) - self._primed)
        by_rule: dict[str, list[int]] = {}
        for rule_id, story_id in wanted:
            by_rule.setdefault(rule_id, []).append(story_id)
        for rule_id, stories in by_rule.items():
            self._alerted.update((rule_id, s) for s in self._query_alerted(rule_id, stories))
        self._primed.update(wanted)

    def _query_alerted(self, rule_id: str, story_ids: Iterable[int]) -> set[int]:
        out: set[int] = set()
        for part in chunks(sorted(set(story_ids))):
            q = select(Alert.story_id).where(Alert.rule_id == rule_id, Alert.story_id.in_(part))
            out.update(self.conn.scalars(q))
        return out

    def alerted(self, rule_id: str, story_ids: Iterable[int]) -> set[int]:
        ids = set(story_ids)
        known = {s for s in ids if (rule_id, s) in self._primed}
        found = {s for s in known if (rule_id, s) in self._alerted}
        return found | (self._query_alerted(rule_id, ids - known) if ids - known else set())

    def add_hit(self, hit: HitRecord) -> None:
        self.conn.execute(insert(self.dialect, RuleHit).on_conflict_do_nothing(), [{
            "rule_id": hit.rule_id, "article_id": hit.article_id, "story_id": hit.story_id,
            "source_id": hit.source_id, "at": hit.at}])

    def hits(self, rule_id: str, after: datetime) -> list[HitRecord]:
        q = (select(RuleHit.rule_id, RuleHit.article_id, RuleHit.story_id, RuleHit.source_id,
                    RuleHit.at, Article.title, Article.url)
             .join(Article, Article.id == RuleHit.article_id)
             .where(RuleHit.rule_id == rule_id, RuleHit.at > after)
             .order_by(RuleHit.at.desc(), RuleHit.article_id.desc()))
        return [HitRecord(*r) for r in self.conn.execute(q)]

    def last_fired(self, rule_id: str) -> datetime | None:
        return self.conn.scalar(select(RuleState.last_fired_at)
                                .where(RuleState.rule_id == rule_id))

    def set_last_fired(self, rule_id: str, at: datetime) -> None:
        stmt = insert(self.dialect, RuleState).values(rule_id=rule_id, last_fired_at=at)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["rule_id"],
                                                     set_={"last_fired_at": at}))

    def last_alert(self, rule_id: str) -> datetime | None:
        return self.conn.scalar(select(func.max(Alert.created_at))
                                .where(Alert.rule_id == rule_id))

    def held(self, rule_id: str) -> list[HeldRecord]:
        q = (select(HeldAlert.rule_id, HeldAlert.article_id, HeldAlert.story_id,
                    HeldAlert.title, HeldAlert.url, HeldAlert.at)
             .where(HeldAlert.rule_id == rule_id).order_by(HeldAlert.at, HeldAlert.id))
        return [HeldRecord(*r) for r in self.conn.execute(q)]

    def hold(self, record: HeldRecord) -> None:
        self.conn.execute(insert(self.dialect, HeldAlert).on_conflict_do_nothing(), [{
            "rule_id": record.rule_id, "article_id": record.article_id,
            "story_id": record.story_id, "title": record.title, "url": record.url,
            "at": record.at}])

    def release(self, rule_id: str) -> None:
        self.conn.execute(delete(HeldAlert).where(HeldAlert.rule_id == rule_id))

    def rules_holding(self) -> list[str]:
        return sorted(self.conn.scalars(select(HeldAlert.rule_id).distinct()))

    def count_stories(self, rule_id: str, after: datetime, until: datetime) -> int:
        return int(self.conn.scalar(
            select(func.count(func.distinct(RuleHit.story_id)))
            .where(RuleHit.rule_id == rule_id, RuleHit.at > after, RuleHit.at <= until)) or 0)

    def spiking(self, rule_id: str) -> bool:
        return bool(self.conn.scalar(select(RuleState.spiking)
                                     .where(RuleState.rule_id == rule_id)))

    def set_spiking(self, rule_id: str, spiking: bool) -> None:
        stmt = insert(self.dialect, RuleState).values(rule_id=rule_id, spiking=spiking)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["rule_id"],
                                                     set_={"spiking": spiking}))

    def last_seen(self, rule_id: str, keys: Iterable[str]) -> dict[str, datetime]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        rows = self.conn.execute(select(Sighting.key, Sighting.at)
                                 .where(Sighting.rule_id == rule_id, Sighting.key.in_(wanted)))
        return {str(k): at for k, at in rows}

    def see(self, rule_id: str, keys: Iterable[str], at: datetime) -> None:
        rows = [{"rule_id": rule_id, "key": k, "at": at} for k in sorted(set(keys))]
        if not rows:
            return
        stmt = insert(self.dialect, Sighting)
        later = stmt.excluded.at
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["rule_id", "key"],
            set_={"at": func.max(Sighting.at, later) if self.dialect == "sqlite"
                  else func.greatest(Sighting.at, later)}), rows)

    def quiet_state(self, rule_id: str, source_id: int) -> QuietState | None:
        row = self.conn.execute(
            select(QuietWatch.since, QuietWatch.quiet_at, QuietWatch.alert_id,
                   QuietWatch.silenced_by, QuietWatch.checked_at)
            .where(QuietWatch.rule_id == rule_id, QuietWatch.source_id == source_id)).first()
        return None if row is None else QuietState(rule_id, source_id, *row)

    def set_quiet_state(self, state: QuietState) -> None:
        values = {"since": state.since, "quiet_at": state.quiet_at, "alert_id": state.alert_id,
                  "silenced_by": state.silenced_by, "checked_at": state.checked_at}
        stmt = insert(self.dialect, QuietWatch).values(
            rule_id=state.rule_id, source_id=state.source_id, **values)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["rule_id", "source_id"], set_=values))

    def add_alert(self, alert: AlertRecord) -> bool:
        stmt = insert(self.dialect, Alert).on_conflict_do_nothing().returning(Alert.id)
        created = list(self.conn.scalars(stmt, [{
            "id": alert.id, "rule_id": alert.rule_id, "rule_title": alert.rule_title,
            "severity": alert.severity, "story_id": alert.story_id,
            "article_id": alert.article_id, "created_at": alert.created_at,
            "detail": json.dumps(alert.detail, ensure_ascii=False) if alert.detail else None,
            "kind": alert.kind, "silenced_by": alert.silenced_by,
            "source_id": alert.source_id}]))
        if not created:
            return False
        if alert.story_id is not None:
            self._alerted.add((alert.rule_id, alert.story_id))
        if alert.explanations:
            self.conn.execute(insert(self.dialect, Match), [
                {"alert_id": alert.id, **e.as_dict()} for e in alert.explanations])
        if alert.channels and alert.silenced_by is None:   # a silenced alert is never sent
            self.conn.execute(insert(self.dialect, Delivery), [
                {"alert_id": alert.id, "channel": ch, "status": "pending", "attempts": 0,
                 "next_attempt": alert.created_at, "created_at": alert.created_at}
                for ch in alert.channels])
        return True
