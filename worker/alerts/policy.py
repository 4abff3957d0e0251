"""What alerts: pure decisions, each with the reason it was taken.

Nothing here touches a database or a clock: every function takes the facts it needs (what the
ledger holds, the time) and returns a ``Decision``. Live ingest, catch-up after a reload, the
throttle flush and ``backtest`` reach their decisions through these functions alone (driven by
``worker.alerts.raising``), so they cannot disagree. The model is Alertmanager's
``needsUpdate(entry, firing, resolved, repeat, now) -> reason``.

The semantics (rules.md, Alerts):

* a plain rule alerts once per (rule, story): later copies and versions of the story stay quiet;
* a ``when: {count, within, distinct_sources}`` rule alerts when the hits stored in the last
  ``within`` (after its previous firing, so each window fires once) hold ``count`` stories, or
  ``count`` sources with ``distinct_sources``; the alert goes to the newest story of the window
  that has none of this rule yet, and a window whose stories have all alerted stays open;
* a ``throttle`` lets one alert out per window (counted from the rule's last alert); what it
  holds back rides on the next alert as ``held: {count, titles}``, or is flushed on its newest
  story once the window has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from worker.domain import HeldRecord, HitRecord

MAX_HELD_TITLES = 20


class Reason(StrEnum):
    """Why a decision was taken: logged with it, and what table tests assert."""

    FIRE = "fire"
    ALREADY_ALERTED = "already alerted"
    WINDOW_NOT_FULL = "window not full"
    WINDOW_FILLED = "window filled"
    WINDOW_SPENT = "window full, but every story in it has alerted"
    HELD = "held by throttle"
    THROTTLE_OPEN = "throttle open"
    FLUSH = "throttle window passed: flush held"
    FLUSH_NOT_DUE = "throttle window not over"
    FLUSH_NOTHING = "nothing held that has not alerted"


@dataclass(frozen=True, slots=True)
class Target:
    """The article and story an alert is raised on."""

    article_id: int
    story_id: int
    title: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    """``fire``: raise an alert on ``target`` with ``detail`` (payload additions)."""

    reason: Reason
    target: Target | None = None
    detail: dict[str, Any] | None = None

    @property
    def fire(self) -> bool:
        return self.target is not None


def plain(story_alerted: bool, target: Target) -> Decision:
    """A plain rule: once per story."""
    if story_alerted:
        return Decision(Reason.ALREADY_ALERTED)
    return Decision(Reason.FIRE, target)


def window(when: tuple[int, timedelta, bool], hits: Sequence[HitRecord], alerted: set[int],
           current: Target) -> Decision:
    """A ``when: (count, within, distinct_sources)`` rule. *hits*: the rule's hits counted by
    this window (stored after the window's start and after its last firing, the current one
    included), newest first; *alerted*: which of their stories already have an alert of the
    rule."""
    count, within, distinct_sources = when
    seen = len({h.source_id if distinct_sources else h.story_id for h in hits})
    if seen < count:
        return Decision(Reason.WINDOW_NOT_FULL)
    target = current if current.story_id not in alerted else next(
        (Target(h.article_id, h.story_id, h.title, h.url) for h in hits
         if h.story_id not in alerted), None)
    if target is None:
        return Decision(Reason.WINDOW_SPENT)
    return Decision(Reason.WINDOW_FILLED, target, {"window": {
        "count": seen, "within_seconds": int(within.total_seconds()),
        "distinct_sources": distinct_sources}})


def window_start(now: datetime, within: timedelta, last_fired: datetime | None) -> datetime:
    """Hits stored after this instant count in the window at *now*."""
    start = now - within
    return max(start, last_fired) if last_fired is not None else start


def throttle(every: timedelta, last_alert: datetime | None, now: datetime) -> Reason:
    """Whether a throttled rule may alert at *now*: ``THROTTLE_OPEN`` or ``HELD``."""
    if last_alert is not None and now - last_alert < every:
        return Reason.HELD
    return Reason.THROTTLE_OPEN


def with_held(decision: Decision, held: Sequence[HeldRecord]) -> Decision:
    """*decision* carrying what the throttle held back (oldest first) in its detail."""
    if not held or decision.target is None:
        return decision
    titles = [h.title for h in held][-MAX_HELD_TITLES:]
    detail = {**(decision.detail or {}), "held": {"count": len(held), "titles": titles}}
    return Decision(decision.reason, decision.target, detail)


def flush(every: timedelta, last_alert: datetime | None, held: Sequence[HeldRecord],
          alerted: set[int], now: datetime) -> Decision:
    """What a throttle holds, once its window is over: one alert on the newest held story
    that has no alert yet, counting all that was held."""
    if last_alert is not None and now - last_alert < every:
        return Decision(Reason.FLUSH_NOT_DUE)
    fresh = [h for h in held if h.story_id not in alerted]
    if not fresh:
        return Decision(Reason.FLUSH_NOTHING)
    last = fresh[-1]
    return with_held(Decision(Reason.FLUSH, Target(last.article_id, last.story_id, last.title,
                                                   last.url)), held)
