"""Read models: alerts as payloads, articles, stories, counts (for the CLI, the dashboard and
delivery)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from worker.db.articles import chunks
from worker.db.uow import Units
from worker.payload import build_payload, iso
from worker.schema import Alert, Article, Match, Source, Story


class Listings:
    def __init__(self, units: Units) -> None:
        self.units = units
        # Each source's tags by name (they live in the configuration): set by whoever knows.
        self.tags: dict[str, tuple[str, ...]] = {}

    def alert_payloads(self, *, ids: Sequence[str] | None = None,
                       since: datetime | None = None, limit: int | None = None,
                       silenced: bool | None = None) -> list[dict[str, Any]]:
        """Alerts as payload dicts (interfaces.md), newest first (*silenced*: only those a
        silence held back, or only the others)."""
        q = (select(Alert, Article.url, Article.title, Article.published, Article.language,
                    Source.name, Source.url.label("source_url"),
                    Source.last_success, Source.last_error)
             .outerjoin(Article, Article.id == Alert.article_id)
             .join(Source, Source.id == func.coalesce(Article.source_id, Alert.source_id))
             .order_by(Alert.created_at.desc(), Alert.id.desc()))
        if ids is not None:
            q = q.where(Alert.id.in_(list(ids)))
        if since is not None:
            q = q.where(Alert.created_at >= since)
        if silenced is not None:
            q = q.where(Alert.silenced_by.is_not(None) if silenced
                        else Alert.silenced_by.is_(None))
        if limit is not None:
            q = q.limit(limit)
        with self.units.read("list alerts") as conn:
            rows = conn.execute(q).all()
            alert_ids = [r._mapping["id"] for r in rows]
            matches: dict[str, list[dict[str, str]]] = {a: [] for a in alert_ids}
            for part in chunks(alert_ids):
                q1 = select(Match.alert_id, Match.term, Match.field, Match.text, Match.snippet)
                for aid, term, fname, text, snippet in conn.execute(
                        q1.where(Match.alert_id.in_(part)).order_by(Match.id)):
                    matches[aid].append({"term": term, "field": fname, "text": text,
                                         "snippet": snippet})
            counts: dict[int, tuple[int, int]] = {}
            for part in chunks(sorted({r._mapping["story_id"] for r in rows
                                       if r._mapping["story_id"] is not None})):
                q2 = (select(Article.story_id, func.count(func.distinct(Article.source_id)),
                             func.count())
                      .where(Article.story_id.in_(part)).group_by(Article.story_id))
                counts.update({sid: (n, a) for sid, n, a in conn.execute(q2)
                               if sid is not None})
            last_article: dict[int, datetime] = {}
            quiet_sources = sorted({r._mapping["source_id"] for r in rows
                                    if r._mapping["kind"] == "quiet"})
            if quiet_sources:
                last_article = {int(sid): at for sid, at in conn.execute(
                    select(Article.source_id, func.max(Article.fetched_at))
                    .where(Article.source_id.in_(quiet_sources))
                    .group_by(Article.source_id))}
        out = []
        for r in rows:
            m = r._mapping
            sources, articles = counts.get(m["story_id"], (1, 1))
            info = None
            if m["kind"] == "quiet":
                info = {"name": m["name"], "url": m["source_url"],
                        "tags": list(self.tags.get(m["name"], ())),
                        "last_article": iso(last_article.get(m["source_id"])),
                        "last_success": iso(m["last_success"]), "last_error": m["last_error"]}
            payload = build_payload(
                alert_id=m["id"], created_at=m["created_at"], rule_id=m["rule_id"],
                rule_title=m["rule_title"], severity=m["severity"], article_id=m["article_id"],
                url=m["url"], title=m["title"], source=m["name"], published=m["published"],
                language=m["language"], story_id=m["story_id"], story_sources=sources,
                matches=matches[m["id"]],
                detail=json.loads(m["detail"]) if m["detail"] else None, kind=m["kind"],
                silenced_by=m["silenced_by"], source_info=info)
            if "story" in payload:
                payload["story"]["articles"] = articles
            out.append(payload)
        return out

    def articles(self, *, since: datetime | None = None, source: str | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
        """Stored articles (every version), newest first."""
        q = (select(Article.id, Source.name.label("source"), Article.url, Article.title,
                    Article.published, Article.language, Article.story_id.label("story"),
                    Article.version, Article.fetched_at)
             .join(Source, Source.id == Article.source_id)
             # by the earlier of the publisher's date and the time raqib stored it: a date in
             # the future (a typo, a time zone written wrong) never keeps an article on top
             .order_by(case((Article.published < Article.fetched_at, Article.published),
                            else_=Article.fetched_at).desc(),
                       Article.id.desc()))
        if since is not None:
            q = q.where(Article.fetched_at >= since)
        if source is not None:
            q = q.where(Source.name == source)
        if limit is not None:
            q = q.limit(limit)
        with self.units.read("list articles") as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def stories(self, *, since: datetime | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        """Stories with their articles and sources, newest first."""
        q = select(Story.id, Story.title, Story.created_at).order_by(Story.created_at.desc(),
                                                                   Story.id.desc())
        if since is not None:
            q = q.where(Story.created_at >= since)
        if limit is not None:
            q = q.limit(limit)
        with self.units.read("list stories") as conn:
            stories = [dict(r._mapping) for r in conn.execute(q)]
            members: dict[int, list[dict[str, Any]]] = {s["id"]: [] for s in stories}
            for part in chunks(list(members)):
                rows = conn.execute(
                    select(Article.story_id, Article.id, Source.name, Article.url,
                           Article.title, Article.published, Article.version)
                    .join(Source, Source.id == Article.source_id)
                    .where(Article.story_id.in_(part)).order_by(Article.id))
                for sid, aid, source, url, title, published, version in rows:
                    members[int(sid or 0)].append({"id": aid, "source": source, "url": url,
                                                   "title": title, "published": published,
                                                   "version": version})
        for s in stories:
            s["articles"] = members[s["id"]]
            s["sources"] = sorted({a["source"] for a in s["articles"]})
        return stories

    def source_rows(self) -> list[tuple[int, str, str, datetime]]:
        """Every source: id, name, kind (feed or seed) and when it was first configured."""
        with self.units.read("list sources") as conn:
            return [(i, n, k, c) for i, n, k, c in conn.execute(
                select(Source.id, Source.name, Source.kind, Source.created_at)
                .order_by(Source.id))]

    def count_articles(self, since: datetime | None = None) -> int:
        q = select(func.count()).select_from(Article)
        if since is not None:
            q = q.where(Article.fetched_at >= since)
        with self.units.read("count articles") as conn:
            return int(conn.scalar(q) or 0)

    def count(self, model: Any) -> int:
        with self.units.read("count rows") as conn:
            return int(conn.scalar(select(func.count()).select_from(model)) or 0)
