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
from worker.domain import AlertRecord, HeldRecord, HitRecord
from worker.schema import Alert, Article, Delivery, HeldAlert, Match, RuleHit, RuleState


class SqlLedger:
    def __init__(self, uow: UnitOfWork) -> None:
        self.conn = uow.conn
        self.dialect = uow.dialect

    def alerted(self, rule_id: str, story_ids: Iterable[int]) -> set[int]:
        ids = sorted(set(story_ids))
        out: set[int] = set()
        for part in chunks(ids):
            q = select(Alert.story_id).where(Alert.rule_id == rule_id, Alert.story_id.in_(part))
            out.update(self.conn.scalars(q))
        return out

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

    def add_alert(self, alert: AlertRecord) -> bool:
        stmt = insert(self.dialect, Alert).on_conflict_do_nothing().returning(Alert.id)
        created = list(self.conn.scalars(stmt, [{
            "id": alert.id, "rule_id": alert.rule_id, "rule_title": alert.rule_title,
            "severity": alert.severity, "story_id": alert.story_id,
            "article_id": alert.article_id, "created_at": alert.created_at,
            "detail": json.dumps(alert.detail, ensure_ascii=False) if alert.detail else None}]))
        if not created:
            return False
        if alert.explanations:
            self.conn.execute(insert(self.dialect, Match), [
                {"alert_id": alert.id, **e.as_dict()} for e in alert.explanations])
        if alert.channels:
            self.conn.execute(insert(self.dialect, Delivery), [
                {"alert_id": alert.id, "channel": ch, "status": "pending", "attempts": 0,
                 "next_attempt": alert.created_at, "created_at": alert.created_at}
                for ch in alert.channels])
        return True
