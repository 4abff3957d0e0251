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
* a ``spike`` rule alerts when the stories it matched in the last ``within`` number at least
  ``min_count`` and ``factor`` times the mean per ``within`` over the ``baseline`` before
  them (an empty baseline counting as one story); once per spike: it is armed again only
  once a hit finds the count below the threshold;
* a ``first_seen`` rule alerts on a story when the rule, an entity of its match or a term of
  it (``by``) matched no story in the preceding ``within``, naming what is new;
* a ``quiet`` rule alerts once per spell in which a source stored nothing for ``within`` of
  the time raqib was running, and sends a resolved notice when news comes back;
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

from worker.domain import FirstSeenSpec, HeldRecord, HitRecord, Span, SpikeSpec

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
    SPIKE_BELOW = "below the spike threshold"
    SPIKE_FIRED = "spike: the count reached the threshold"
    SPIKE_ONGOING = "spike already alerted; not below the threshold since"
    SPIKE_SPENT = "spiking, but every story in the window has alerted"
    FIRST_SEEN = "first sighting in the window"
    SEEN_BEFORE = "seen in the window before"
    NOTHING_TO_SEE = "nothing in the match to look for (no entity)"
    QUIET = "quiet for the window of running time"
    RESOLVED = "news again after a quiet spell"


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


# -- spikes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpikeLevel:
    """A spike rule's numbers at one instant: stories in the last ``within``, stories in the
    ``baseline`` before that, the baseline's mean per ``within`` and the threshold."""

    count: int
    baseline_stories: int
    mean: float
    threshold: float

    @property
    def above(self) -> bool:
        return self.count >= self.threshold


def spike_level(spec: SpikeSpec, count: int, baseline_stories: int) -> SpikeLevel:
    """The threshold for *count*: at least ``min_count`` and ``factor`` times the baseline's
    mean per ``within``; a baseline with no stories counts as one story per baseline."""
    mean = max(baseline_stories, 1) * (spec.within / spec.baseline)
    return SpikeLevel(count, baseline_stories, mean, max(float(spec.min_count),
                                                         spec.factor * mean))


def spike(spec: SpikeSpec, now: SpikeLevel, *, spiking: bool, hits: Sequence[HitRecord],
          alerted: set[int], current: Target) -> tuple[Decision, bool]:
    """A spike rule at a new hit. *now*: its level with the hit; *spiking*: whether the rule
    fired for a spike not over yet; *hits*: the window's hits, newest first (needed only when
    the current story has alerted); *alerted*: their stories with an alert of the rule.
    Returns the decision and whether the rule is spiking after it.

    A spike is over when a hit finds the count below the threshold. It is judged at hits,
    with the hit counted: a count that steps down and up by the same story as hits leave
    and enter the window (a steady rate right at the threshold) is one spike, not many."""
    if not now.above:
        return Decision(Reason.SPIKE_BELOW), False
    if spiking:
        return Decision(Reason.SPIKE_ONGOING), True
    target = current if current.story_id not in alerted else next(
        (Target(h.article_id, h.story_id, h.title, h.url) for h in hits
         if h.story_id not in alerted), None)
    if target is None:
        return Decision(Reason.SPIKE_SPENT), True
    mean = round(now.mean, 3)
    return Decision(Reason.SPIKE_FIRED, target, {
        "count": now.count, "baseline": mean,
        "spike": {"count": now.count, "baseline": mean, "threshold": round(now.threshold, 3),
                  "factor": spec.factor, "min_count": spec.min_count,
                  "within_seconds": int(spec.within.total_seconds()),
                  "baseline_seconds": int(spec.baseline.total_seconds())}}), True


# -- first sightings ------------------------------------------------------------------------------


def first_seen(spec: FirstSeenSpec, keys: Sequence[str], last_seen: dict[str, datetime], *,
               at: datetime, story_alerted: bool, current: Target,
               labels: dict[str, str]) -> Decision:
    """A first_seen rule at a match: what of *keys* (entity ids, terms, or ``""`` for the
    rule) has *last_seen* no later than ``within`` before *at* (or never) is new."""
    if not keys:
        return Decision(Reason.NOTHING_TO_SEE)
    start = at - spec.within
    new = [k for k in keys if (seen := last_seen.get(k)) is None or seen <= start]
    if not new:
        return Decision(Reason.SEEN_BEFORE)
    if story_alerted:
        return Decision(Reason.ALREADY_ALERTED)
    shown = [] if spec.by == "rule" else [{"key": k, "label": labels.get(k, k)} for k in new]
    return Decision(Reason.FIRST_SEEN, current, {"first_seen": {
        "by": spec.by, "new": shown, "within_seconds": int(spec.within.total_seconds())}})


# -- quiet sources --------------------------------------------------------------------------------

def quiet_at(spans: Sequence[Span], since: datetime, within: timedelta) -> datetime | None:
    """The instant at which raqib has been running for *within* since *since* (over merged
    *spans*), or None if the spans do not reach it."""
    left = within
    for begin, end in spans:
        start = max(begin, since)
        if end <= start:
            continue
        if end - start >= left:
            return start + left
        left -= end - start
    return None


@dataclass(frozen=True, slots=True)
class QuietEvent:
    """A quiet spell's start (``resolved`` False: quiet since ``since``, at ``at``) or end
    (``resolved`` True: news at ``at``)."""

    since: datetime
    at: datetime
    resolved: bool
    reason: Reason


def quiet(within: timedelta, spans: Sequence[Span], since: datetime, *, open_spell: bool,
          news: Sequence[datetime], now: datetime) -> tuple[list[QuietEvent], datetime, bool]:
    """A quiet rule over one source from *since* (its last news, or when watching began;
    *open_spell*: already alerted as quiet) up to *now*, given the times of its news after
    *since* (ascending) and raqib's merged running *spans*. Returns the spells' starts and
    ends in order, the last news and whether a spell is open at *now*."""
    events: list[QuietEvent] = []
    for t in (*news, None):
        end = now if t is None else t
        if not open_spell:
            q = quiet_at(spans, since, within)
            if q is not None and (q < end if t is not None else q <= end):
                events.append(QuietEvent(since, q, False, Reason.QUIET))
                open_spell = True
        if t is None:
            break
        if open_spell:
            events.append(QuietEvent(since, t, True, Reason.RESOLVED))
            open_spell = False
        since = t
    return events, since, open_spell
