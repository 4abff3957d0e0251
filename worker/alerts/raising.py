"""Raising alerts: the policy's decisions applied to a ledger.

``raise_alerts`` is the one implementation of "what alerts" for a batch of candidates (stored
articles that matched a rule), and ``flush_held`` the one for throttles whose window has
passed. Live ingest calls them inside its unit of work with the SQL ledger; ``backtest`` with
the in-memory one, in the articles' stored order and time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from ulid import ULID

from worker.alerts import policy
from worker.alerts.ledger import Ledger
from worker.alerts.payload import iso
from worker.alerts.policy import Decision, Reason, Target
from worker.domain import (
    AlertRecord,
    AlertSpec,
    Candidate,
    HeldRecord,
    HitRecord,
    News,
    QuietState,
    Span,
    merge_spans,
)

NewId = Callable[[datetime], str]
# Which silence, if any, holds back an alert about to be written: the silence's id, or None.
Silencer = Callable[[AlertRecord], str | None]


def ulid_at(now: datetime) -> str:
    """A ULID for an alert raised at *now* (sorts by time)."""
    return str(ULID.from_datetime(now))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One candidate's decision and, when it fired and was written, its alert."""

    candidate: Candidate | None
    rule_id: str
    decision: Decision
    alert: AlertRecord | None


def _alert(spec: AlertSpec, target: Target, decision: Decision, at: datetime, *,
           candidate: Candidate | None, new_id: NewId) -> AlertRecord:
    # A window may fire on another story than the current hit's: its terms were found there,
    # not here, so the explanations go only with the hit's own article.
    explanations = candidate.explanations if candidate is not None and \
        candidate.article_id == target.article_id else ()
    return AlertRecord(id=new_id(at), rule_id=spec.rule_id, rule_title=spec.rule_title,
                       severity=spec.severity, story_id=target.story_id,
                       article_id=target.article_id, created_at=at, channels=spec.channels,
                       explanations=explanations, detail=decision.detail, title=target.title,
                       url=target.url, kind=spec.kind)


def _silenced(record: AlertRecord, silencer: Silencer | None) -> AlertRecord:
    found = silencer(record) if silencer is not None else None
    return record if found is None else replace(record, silenced_by=found)


def _spike(c: Candidate, ledger: Ledger, current: Target) -> Decision:
    spec = c.spec.spike
    assert spec is not None
    rid = c.spec.rule_id
    recent = c.at - spec.within
    ledger.add_hit(HitRecord(rid, c.article_id, c.story_id, c.source_id, c.at, c.title, c.url))
    now = policy.spike_level(spec, ledger.count_stories(rid, recent, c.at),
                             ledger.count_stories(rid, recent - spec.baseline, recent))
    was = ledger.spiking(rid)
    hits: list[HitRecord] = []
    alerted = ledger.alerted(rid, [c.story_id])
    if now.above and not was and c.story_id in alerted:   # the alert goes to another story
        hits = ledger.hits(rid, after=recent)
        alerted = ledger.alerted(rid, {h.story_id for h in hits} | {c.story_id})
    decision, spiking = policy.spike(spec, now, spiking=was, hits=hits, alerted=alerted,
                                     current=current)
    if spiking != was:
        ledger.set_spiking(rid, spiking)
    return decision


def _first_seen(c: Candidate, ledger: Ledger, current: Target) -> Decision:
    spec = c.spec.first_seen
    assert spec is not None
    rid = c.spec.rule_id
    seen = ledger.last_seen(rid, c.keys)
    decision = policy.first_seen(spec, c.keys, seen, at=c.at,
                                 story_alerted=bool(ledger.alerted(rid, [c.story_id])),
                                 current=current, labels=dict(c.spec.labels))
    keys: Sequence[str] = c.keys
    if decision.reason is Reason.ALREADY_ALERTED:
        # What is new in a story that has alerted (an update naming a base for the first
        # time) is not taken as seen: the next story with it is its first sighting.
        keys = [k for k in c.keys if k in seen and seen[k] > c.at - spec.within]
    ledger.see(rid, keys, c.at)
    return decision


def decide(c: Candidate, ledger: Ledger) -> Decision:
    """The decision for one candidate, recording its window hit or throttle hold."""
    spec = c.spec
    current = Target(c.article_id, c.story_id, c.title, c.url)
    if spec.when is not None:
        within = spec.when[1]
        ledger.add_hit(HitRecord(spec.rule_id, c.article_id, c.story_id, c.source_id, c.at,
                                 c.title, c.url))
        start = policy.window_start(c.at, within, ledger.last_fired(spec.rule_id))
        hits = ledger.hits(spec.rule_id, after=start)
        alerted = ledger.alerted(spec.rule_id, {h.story_id for h in hits} | {c.story_id})
        decision = policy.window(spec.when, hits, alerted, current)
    elif spec.spike is not None:
        decision = _spike(c, ledger, current)
    elif spec.first_seen is not None:
        decision = _first_seen(c, ledger, current)
    else:
        decision = policy.plain(bool(ledger.alerted(spec.rule_id, [c.story_id])), current)
    if not decision.fire or spec.throttle is None:
        return decision
    assert decision.target is not None
    if policy.throttle(spec.throttle, ledger.last_alert(spec.rule_id), c.at) is Reason.HELD:
        t = decision.target
        ledger.hold(HeldRecord(spec.rule_id, t.article_id, t.story_id, t.title, t.url, c.at))
        if spec.when is not None:   # the window did fill: it does not fill again for this
            ledger.set_last_fired(spec.rule_id, c.at)
        return Decision(Reason.HELD, None, decision.detail)
    return policy.with_held(decision, ledger.held(spec.rule_id))


def raise_alerts(candidates: Iterable[Candidate], ledger: Ledger, *,
                 new_id: NewId = ulid_at, silencer: Silencer | None = None) -> list[Outcome]:
    """Decide each candidate in order (each seeing what the ones before it did) and write the
    alerts that fire (held back from delivery when *silencer* names a silence). Returns
    every outcome, fired or not, with its reason."""
    out: list[Outcome] = []
    candidates = list(candidates)
    ledger.prime({(c.spec.rule_id, c.story_id) for c in candidates})
    for c in candidates:
        if c.spec.throttle is not None:   # a window that has passed is flushed first
            flushed = _flush_rule(c.spec, ledger, c.at, new_id, silencer)
            if flushed is not None and flushed.decision.reason is not Reason.FLUSH_NOT_DUE:
                out.append(flushed)
        decision = decide(c, ledger)
        alert = None
        if decision.fire:
            assert decision.target is not None
            record = _silenced(_alert(c.spec, decision.target, decision, c.at, candidate=c,
                                      new_id=new_id), silencer)
            if ledger.add_alert(record):
                alert = record
                if c.spec.when is not None:
                    ledger.set_last_fired(c.spec.rule_id, c.at)
                if c.spec.throttle is not None:
                    ledger.release(c.spec.rule_id)
        out.append(Outcome(c, c.spec.rule_id, decision, alert))
    return out


def _flush_rule(spec: AlertSpec, ledger: Ledger, now: datetime, new_id: NewId,
                silencer: Silencer | None) -> Outcome | None:
    """Flush one throttled rule's held stories if its window is over at *now*. The alert is
    dated when the window closed (the last alert + the throttle), whenever the flush runs,
    so live alerting and replay agree whatever the phase of the job that flushes."""
    assert spec.throttle is not None
    held = ledger.held(spec.rule_id)
    if not held:
        return None
    alerted = ledger.alerted(spec.rule_id, [h.story_id for h in held])
    last = ledger.last_alert(spec.rule_id)
    decision = policy.flush(spec.throttle, last, held, alerted, now)
    alert = None
    if decision.reason is Reason.FLUSH_NOTHING:
        ledger.release(spec.rule_id)
    elif decision.fire:
        assert decision.target is not None
        at = last + spec.throttle if last is not None else now
        record = _silenced(_alert(spec, decision.target, decision, at, candidate=None,
                                  new_id=new_id), silencer)
        if ledger.add_alert(record):
            alert = record
        ledger.release(spec.rule_id)
    return Outcome(None, spec.rule_id, decision, alert)


def flush_held(specs: Mapping[str, AlertSpec], ledger: Ledger, now: datetime, *,
               new_id: NewId = ulid_at, silencer: Silencer | None = None) -> list[Outcome]:
    """Throttled rules whose window has passed with stories held back: one alert each, on
    the newest held story that has none yet, carrying the count and titles of all."""
    out: list[Outcome] = []
    for rule_id in ledger.rules_holding():
        spec = specs.get(rule_id)
        if spec is None or spec.throttle is None:
            continue
        outcome = _flush_rule(spec, ledger, now, new_id, silencer)
        if outcome is not None:
            out.append(outcome)
    return out


def next_flush(specs: Mapping[str, AlertSpec], ledger: Ledger) -> datetime | None:
    """When the earliest held throttle comes due (for replay in stored time)."""
    due: list[datetime] = []
    for rule_id in ledger.rules_holding():
        spec = specs.get(rule_id)
        last = ledger.last_alert(rule_id)
        if spec is not None and spec.throttle is not None and last is not None:
            due.append(last + spec.throttle)
    return min(due) if due else None


# -- quiet sources --------------------------------------------------------------------------------


class QuietFacts(Protocol):
    """What deciding quiet spells needs to know of the sources (SQL live, stored articles in
    ``backtest``)."""

    def news(self, source_id: int, after: datetime, until: datetime) -> list[News]:
        """The source's articles stored after *after*, up to *until*, oldest first."""
        ...

    def last_news(self, source_id: int, until: datetime) -> datetime | None:
        """When the source last stored an article, up to *until*."""
        ...

    def failing(self, source_id: int, since: datetime) -> bool:
        """Whether every poll of the source since *since* failed."""
        ...


def _watch(spec: AlertSpec, sid: int, began: datetime, state: QuietState | None, *,
           facts: QuietFacts, spans: Sequence[Span], now: datetime) -> QuietState:
    """Where the watch of one source stands: as last left, or new (from its last news, or
    when it began to be watched). A watch not checked for a whole window of running time
    with no spell open (its rule was away from the configuration) starts anew too, rather
    than paging for spells that came and went meanwhile."""
    assert spec.quiet is not None
    if state is not None and not (state.checked_at is not None and state.quiet_at is None
                                  and policy.quiet_at(spans, state.checked_at, spec.quiet)
                                  is not None):
        return state
    return QuietState(spec.rule_id, sid, facts.last_news(sid, now) or began)


def check_quiet(spec: AlertSpec, sources: Mapping[int, tuple[str, datetime]],
                facts: QuietFacts, *, spans: Sequence[Span], ledger: Ledger,
                now: datetime, new_id: NewId = ulid_at,
                silencer: Silencer | None = None) -> list[Outcome]:
    """A quiet rule over its *sources* (id -> name and when watching it began) up to *now*,
    over raqib's running *spans*: an alert for each source that became quiet (dated when it
    did) and a resolved notice for each quiet source that stored news again (dated at the
    news). The sources' events are taken in time order, so a throttle decides the same
    whether they are checked every minute or replayed at once: a quiet alert the throttle
    holds back makes an open spell with no alert, and the sources still quiet when the
    throttle opens ride on one alert (``held``: their count and names)."""
    assert spec.quiet is not None
    rid, within = spec.rule_id, int(spec.quiet.total_seconds())
    merged = merge_spans(spans)
    states: dict[int, QuietState] = {}
    news: dict[int, list[News]] = {}
    events: list[tuple[datetime, int, policy.QuietEvent]] = []
    for sid, (_, began) in sorted(sources.items()):
        state = _watch(spec, sid, began, ledger.quiet_state(rid, sid), facts=facts,
                       spans=merged, now=now)
        news[sid] = facts.news(sid, state.since, now)
        found, _, _ = policy.quiet(spec.quiet, merged, state.since,
                                   open_spell=state.quiet_at is not None,
                                   news=[n.at for n in news[sid]], now=now)
        states[sid] = state
        events += [(e.at, sid, e) for e in found]
    out: list[Outcome] = []

    def write(sid: int, at: datetime, detail: dict[str, Any], *,
              follows: QuietState | None = None) -> AlertRecord | None:
        record = AlertRecord(
            id=new_id(at), rule_id=rid, rule_title=spec.rule_title, severity=spec.severity,
            story_id=None, article_id=None, created_at=at, channels=spec.channels,
            detail=detail, kind="quiet", source_id=sid)
        # A resolved notice goes where its quiet alert went: held back with it by a silence,
        # or sent as it was, whatever silence came since (the desk must hear the end).
        record = _silenced(record, silencer) if follows is None else \
            replace(record, silenced_by=follows.silenced_by)
        return record if ledger.add_alert(record) else None

    def quiet_detail(event: policy.QuietEvent, sid: int) -> dict[str, Any]:
        return {"quiet": {"since": iso(event.since), "within_seconds": within,
                          "failing": facts.failing(sid, event.since)}, "resolved": False}

    def flush(until: datetime) -> None:
        """Sources the throttle held as quiet, once it opens (by *until*): one alert."""
        held = sorted((s for s in states.values() if s.quiet_at is not None
                       and s.alert_id is None), key=lambda s: (s.quiet_at, s.source_id))
        if spec.throttle is None or not held:
            return
        last, newest_at = ledger.last_alert(rid), held[-1].quiet_at
        assert newest_at is not None
        at = max(last + spec.throttle, newest_at) if last is not None else until
        if at > until:
            return
        newest = held[-1]
        detail = quiet_detail(policy.QuietEvent(newest.since, at, False, Reason.FLUSH),
                              newest.source_id)
        detail["held"] = {"count": len(held), "titles": [sources[s.source_id][0] for s in held]}
        record = write(newest.source_id, at, detail)
        for s in held:
            states[s.source_id] = replace(s, alert_id=record.id if record else None,
                                          silenced_by=record.silenced_by if record else None)
        out.append(Outcome(None, rid, Decision(Reason.FLUSH), record))

    for at, sid, event in sorted(events, key=lambda e: (e[0], e[1], e[2].resolved)):
        flush(at)
        state = states[sid]
        written = None
        reason = event.reason
        if not event.resolved:
            held = spec.throttle is not None and policy.throttle(
                spec.throttle, ledger.last_alert(rid), at) is Reason.HELD
            written = None if held else write(sid, at, quiet_detail(event, sid))
            reason = Reason.HELD if held else reason
            states[sid] = replace(state, since=event.since, quiet_at=at,
                                  alert_id=written.id if written else None,
                                  silenced_by=written.silenced_by if written else None)
        else:
            first = next(n for n in news[sid] if n.at == at)
            if state.alert_id is not None:   # a spell the throttle still holds ends quietly
                written = write(sid, at, {
                    "quiet": {"since": iso(event.since), "resolved_at": iso(at),
                              "within_seconds": within,
                              "article": {"id": first.article_id, "title": first.title,
                                          "url": first.url}},
                    "resolved": True, "resolves": state.alert_id}, follows=state)
            states[sid] = replace(state, since=at, quiet_at=None, alert_id=None,
                                  silenced_by=None)
        out.append(Outcome(None, rid, Decision(reason), written))
    flush(now)
    for sid, state in states.items():
        last_news = max((n.at for n in news[sid]), default=state.since)
        ledger.set_quiet_state(replace(state, since=max(state.since, last_news),
                                       checked_at=now))
    return out
