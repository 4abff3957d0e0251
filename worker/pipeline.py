"""The orchestrator: fetch -> parse -> dedupe -> store + match -> alerts -> deliver.

Each method is one unit of scheduled work (a source poll, a seed-folder pass, a delivery round)
and is safe to run from the scheduler's threads. A failure is contained to its source or its
delivery: it is recorded and logged, and the others go on."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import structlog
from ulid import ULID

from worker import config, dedupe, language, parse, redact, schedule, seeds
from worker.alerts.channels import build_channels
from worker.alerts.deliver import Deliverer, DeliveryReport
from worker.db import Database
from worker.dedupe import Prepared
from worker.domain import AlertRecord, AlertSpec, Article, FirstSeenSpec, SpikeSpec
from worker.errors import FetchError, ParseError, StorageError
from worker.fetch import Fetcher
from worker.fleet import Fleet
from worker.ingestor import (
    Ingestor,
    IngestResult,
    RuleHit,
    catch_up_candidates,
    check_quiet,
    flush_held,
    raise_for_stored,
)
from worker.metrics import Metrics
from worker.rules import RuleMatch
from worker.rules.compile import entities_of
from worker.silencing import Silencing, source_matches

log = structlog.get_logger("raqib.pipeline")
BIG_DOCUMENT = 1_000_000   # bytes


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Polled:
    """The outcome of polling one source: what was stored, the error if it failed (a seed
    folder with one bad file has both), and when to poll it next (feeds)."""

    result: IngestResult
    error: str | None = None
    next_poll: datetime | None = None


@dataclass
class PassReport:
    """What one full pass (``raqib once``) did."""

    new: int = 0
    updates: int = 0
    duplicates: int = 0
    alerts: int = 0
    failed_sources: list[str] = field(default_factory=list)
    failed_tasks: list[str] = field(default_factory=list)   # the throttle flush, quiet rules
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    @property
    def ok(self) -> bool:
        return not self.failed_sources and not self.failed_tasks and not self.delivery.failed


class Pipeline:
    def __init__(self, cfg: config.Config, db: Database, *, fetcher: Fetcher | None = None,
                 clock: Callable[[], datetime] | None = None,
                 rand: Callable[[], float] = random.random) -> None:
        self.cfg = cfg
        self.db = db
        if clock is not None:   # one clock for the pipeline and the units of work it opens
            db.units.clock = clock
        self.clock = db.units.clock
        # Read through self.cfg at each call: a reload replaces it.
        self.silencing = Silencing(lambda: self.cfg.entities,
                                   lambda: self.cfg.main.source_tags())  # noqa: PLW0108
        self.ingestor = Ingestor(db, self.silencing.silencer)
        self.fetcher = fetcher or Fetcher(concurrency=cfg.main.fetch.concurrency,
                                          per_host=cfg.main.fetch.per_host)
        self.rand = rand
        self._big_parse = threading.Lock()
        self.metrics = Metrics()
        db.units.on_ingest = self.metrics.observe_lock
        self.metrics.rules.set(len(cfg.ruleset))
        # This process as one worker of a fleet sharing the database: the holder of its leases.
        self.worker_id = str(ULID())
        self.fleet = Fleet(db, self.worker_id, cfg, self.metrics)
        if db.dialect == "postgresql":   # several workers: per_host holds for all of them
            self.fetcher.fleet_slots = self.fleet.host_slot
        self.http = httpx.Client(trust_env=True)   # the webhooks' client
        self.deliverer = self._deliverer(cfg)
        self.source_ids: dict[str, int] = {}
        self._specs: tuple[config.Config, dict[str, tuple[config.Rule, AlertSpec]]] = (cfg, {})

    # -- set-up -------------------------------------------------------------------------------

    def apply(self, cfg: config.Config) -> None:
        """Switch to a new configuration while running: rules, sources and channels. Work in
        flight finishes with the configuration it started with."""
        deliverer = self._deliverer(cfg)
        self.cfg = cfg
        self.deliverer = deliverer
        self.fleet.apply(cfg)
        self.metrics.rules.set(len(cfg.ruleset))
        self.sync_sources()

    def _deliverer(self, cfg: config.Config) -> Deliverer:
        return Deliverer(self.db, build_channels(cfg.main.channels, http=self.http),
                         cfg.main.channels, self.clock, metrics=self.metrics,
                         holder=self.worker_id, lease=cfg.main.workers.lease)

    def poll_intervals(self) -> dict[str, timedelta]:
        """Every source by name, with how often it is polled (seed folders: every minute)."""
        out = {s.name: s.interval for s in self.cfg.main.sources}
        return out | {config.seed_source_name(f): schedule.SEED_INTERVAL
                      for f in self.cfg.main.seeds}

    def poll_by_name(self, name: str) -> Polled:
        """Poll the source or seed folder called *name* in the running configuration."""
        for src in self.cfg.main.sources:
            if src.name == name:
                return self.poll_source(src)
        for folder in self.cfg.main.seeds:
            if config.seed_source_name(folder) == name:
                return self.poll_seeds(folder)
        raise KeyError(name)

    def catch_up(self, rule_ids: set[str], since: datetime) -> int:
        """Run rules that were just added or changed over the articles stored since *since*,
        so an article that arrived moments before its rule is not missed. Alerts are per
        (rule, story) as always: nothing alerts twice."""
        if not rule_ids:
            return 0
        names = self.cfg.main.source_tags()
        matched = []
        for stored in self.db.iter_articles(since):
            if stored.story_id is None:
                continue
            article = Article(source=stored.source, title=stored.title, summary=stored.summary,
                              body=stored.body, url=stored.url, guid=stored.guid,
                              published=stored.published, language=stored.language,
                              tags=names.get(stored.source, ()))
            hits = [self.rule_hit(m) for m in self.cfg.ruleset.match(article, only=rule_ids)]
            if hits:
                matched.append((stored, hits))
        outcomes = raise_for_stored(self.db, catch_up_candidates(matched),
                                    self.silencing.silencer)
        alerts = [o.alert for o in outcomes if o.alert is not None]
        self._log_alerts(alerts, catch_up=True)
        return len(alerts)

    def _log_alerts(self, alerts: list[AlertRecord], **kw: object) -> None:
        for a in alerts:
            self.metrics.alerts.labels(a.rule_id, a.severity).inc()
            extra: dict[str, object] = {"silenced_by": a.silenced_by} if a.silenced_by else {}
            if a.silenced_by:
                self.metrics.silenced.labels(a.rule_id).inc()
            if a.kind == "quiet":
                extra["resolved"] = bool((a.detail or {}).get("resolved"))
                if "source" not in kw:
                    extra["source"] = next((n for n, i in self.source_ids.items()
                                            if i == a.source_id), None)
            log.info("alert raised", rule=a.rule_id, severity=a.severity, kind=a.kind,
                     title=a.title, url=a.url, article_id=a.article_id, alert_id=a.id,
                     **extra, **kw)

    def sync_sources(self) -> None:
        self.db.listings.tags = self.cfg.main.source_tags()
        entries = [(s.name, redact.url(s.url), "feed") for s in self.cfg.main.sources]
        entries += [(config.seed_source_name(f), Path(f).resolve().as_uri(), "seed")
                    for f in self.cfg.main.seeds]
        self.source_ids = self.db.sources.sync(entries, self.clock())

    # -- matching -----------------------------------------------------------------------------

    def decide(self, articles: list[Article]) -> list[list[RuleHit]]:
        """Detect each new article's language and the rules it matches."""
        out = []
        for a in articles:
            a.language = language.detect(f"{a.title}\n{a.summary}\n{a.body}", a.feed_language)
            out.append([self.rule_hit(m) for m in self.cfg.ruleset.match(a)])
        return out

    def rule_hit(self, m: RuleMatch) -> RuleHit:
        rule = m.rule.rule
        return RuleHit(self.spec(rule), m.explanations, sighting_keys(rule, m.terms))

    def spec(self, rule: config.Rule) -> AlertSpec:
        """What an alert of *rule* needs: its title, channels and stateful parts (made once
        per rule and configuration)."""
        cfg = self.cfg
        cache = self._specs
        if cache[0] is not cfg:
            cache = self._specs = (cfg, {})
        spec = cache[1].get(rule.id)
        if spec is None or spec[0] is not rule:
            spec = (rule, alert_spec(cfg, rule, tuple(cfg.notify_of(rule))))
            cache[1][rule.id] = spec
        return spec[1]

    def flush_held(self) -> int:
        """Alerts that throttles held back, once their window has passed without a new one."""
        specs = {cr.rule.id: self.spec(cr.rule) for cr in self.cfg.ruleset.rules
                 if cr.rule.throttle is not None}
        outcomes = flush_held(self.db, specs, self.silencing.silencer) if specs else []
        alerts = [o.alert for o in outcomes if o.alert is not None]
        self._log_alerts(alerts, held=True)
        return len(alerts)

    def quiet_sources(self, rule: config.Rule) -> list[int]:
        """The ids of the sources a quiet rule watches (every feed when it names none)."""
        assert rule.quiet is not None
        tags = self.cfg.main.source_tags()   # the configured sources (seed folders too)
        if rule.quiet.sources is None:
            names = [s.name for s in self.cfg.main.sources]
        else:
            names = [n for n in tags
                     if any(source_matches(sel, n, tags.get(n, ())) for sel in rule.quiet.sources)]
        return sorted(self.source_ids[n] for n in names if n in self.source_ids)

    def check_quiet(self) -> int:
        """Quiet rules: an alert for each watched source that became quiet, a resolved notice
        for each that brought news again. This worker beats first, so the time up to now
        counts as running."""
        rules = self.cfg.ruleset.quiet
        if not rules:
            return 0
        self.fleet.beat()
        specs = [(self.spec(r), self.quiet_sources(r)) for r in rules]
        outcomes = check_quiet(self.db, specs, self.cfg.main.workers.lease,
                               self.silencing.silencer)
        alerts = [o.alert for o in outcomes if o.alert is not None]
        self._log_alerts(alerts, quiet=True)
        return len(alerts)

    def _store(self, source: str, prepared: list[Prepared], **kw: object) -> IngestResult:
        result = self.ingestor.ingest(self.source_ids[source], prepared, self.decide,
                                      **kw)  # type: ignore[arg-type]
        self.metrics.articles.labels(source).inc(result.new)
        self.metrics.updates.labels(source).inc(result.updates)
        self.metrics.duplicates.labels(source).inc(result.duplicates)
        self.metrics.stories.inc(result.stories)
        self._log_alerts(result.alerts, source=source)
        if result.new or result.updates or result.alerts:
            log.info("ingested", source=source, new=result.new, updates=result.updates,
                     duplicates=result.duplicates, alerts=len(result.alerts))
        return result

    def ingest(self, source: str, articles: list[Article]) -> IngestResult:
        """Store parsed *articles* as the configured source *source* had fetched them (for
        embedding raqib, tests and benchmarks): dedupe, stories, rules and alerts as a poll."""
        return self._store(source, [dedupe.prepare(a) for a in articles])

    # -- units of work ------------------------------------------------------------------------

    def poll_source(self, src: config.Source) -> Polled:
        """Fetch, parse and store one feed; a failure is recorded on the source."""
        return self._isolated(src.name, src.interval, partial(self._poll_feed, src))

    def poll_seeds(self, folder: str) -> Polled:
        """Ingest the new and changed files of one seed folder. A file that fails is reported
        (once, until it changes) and the good files are stored all the same."""
        return self._isolated(config.seed_source_name(folder), None,
                              partial(self._poll_folder, folder))

    def _isolated(self, name: str, interval: timedelta | None,
                  poll: Callable[[int, datetime], Polled]) -> Polled:
        """The isolation boundary of one source: whatever goes wrong is recorded on the source
        and logged, and the other sources go on."""
        sid = self.source_ids[name]
        started = self.clock()
        try:
            return poll(sid, started)
        except Exception as exc:   # a bug or a database failure: contain it to this source
            error = str(exc) if isinstance(exc, StorageError) else \
                f"internal error: {type(exc).__name__}: {exc}"
            log.exception("source failed", source=name, error=error)
            nxt = schedule.next_poll(started, interval, 1, rand=self.rand) if interval else None
            try:
                self.db.sources.record_poll(sid, now=started, error=error, next_poll=nxt,
                                            holder=self.worker_id)
            except Exception:
                log.exception("cannot record the failure", source=name)
            return Polled(IngestResult(), error, nxt)

    def _poll_feed(self, src: config.Source, sid: int, started: datetime) -> Polled:
        with self.metrics.poll_seconds.time():
            polled, outcome = self._poll_feed_timed(src, sid, started)
        self.metrics.polls.labels(src.name, outcome).inc()
        if polled.error is None:
            self.metrics.last_success.labels(src.name).set(started.timestamp())
        return polled

    def _poll_feed_timed(self, src: config.Source, sid: int,
                         started: datetime) -> tuple[Polled, str]:
        state = self.db.sources.state(sid)
        try:
            fetched = self.fetcher.fetch(src, etag=state.etag, last_modified=state.last_modified)
            if fetched.not_modified:
                result = IngestResult()   # a 304 costs no parse
            else:
                body = fetched.body or b""
                # A parse holds several times its document in memory: one big one at a time,
                # so a pass stays bounded whatever the sources send.
                with self._big_parse if len(body) > BIG_DOCUMENT else nullcontext():
                    feed = parse.read_feed(body, source=src.name, url=fetched.url,
                                           headers=fetched.headers, tags=tuple(src.tags),
                                           now=started)
                for warning in (*fetched.warnings, *feed.warnings):   # read past: no failure
                    log.warning("source warning", source=src.name, url=redact.url(src.url),
                                warning=warning)
                prepared = [dedupe.prepare(a) for a in feed.articles]
                if src.full_text:
                    self._fill_full_text(src, sid, prepared)
                result = self._store(src.name, prepared)
        except (FetchError, ParseError) as exc:
            failures = state.failures + 1
            retry = exc.retry_after if isinstance(exc, FetchError) else None
            nxt = schedule.next_poll(started, src.interval, failures, retry, self.rand)
            self._record(src.name, sid, now=started, error=str(exc), next_poll=nxt)
            log.warning("source failed", source=src.name, url=redact.url(src.url),
                        error=str(exc), failures=failures, next_poll=nxt)
            return Polled(IngestResult(), str(exc), nxt), "error"
        if fetched.moved_to and fetched.moved_to != state.moved_to:
            log.warning("feed moved permanently; consider updating its url", source=src.name,
                        url=redact.url(src.url), moved_to=redact.url(fetched.moved_to))
        # The interval counts from the end of this poll, so two polls of a source are never
        # nearer than its interval, however long a fetch waited for its host.
        nxt = schedule.next_poll(max(started, self.clock()), src.interval, 0, rand=self.rand)
        self._record(
            src.name, sid, now=started, error=None, next_poll=nxt, moved_to=fetched.moved_to,
            validators=None if fetched.not_modified else (fetched.etag, fetched.last_modified))
        return Polled(result, None, nxt), "not_modified" if fetched.not_modified else "ok"

    def _fill_full_text(self, src: config.Source, sid: int, prepared: list[Prepared]) -> None:
        """Fetch the page of each new article and take its main text as the body. A page that
        fails keeps the feed's text; it never fails the source."""
        for p in self.ingestor.fresh(sid, prepared):
            if not p.article.url:
                continue
            try:
                page = self.fetcher.fetch_page(p.article.url, timeout=src.timeout.total_seconds(),
                                               max_bytes=src.max_bytes,
                                               allow_private=src.allow_private)
                text = parse.main_text(page.body or b"", page.url)
            except FetchError as exc:
                log.warning("full text not fetched", source=src.name,
                            url=redact.url(p.article.url), error=str(exc))
                continue
            if text:
                p.article.body = text

    def _poll_folder(self, folder: str, sid: int, started: datetime) -> Polled:
        name = config.seed_source_name(folder)
        scan = seeds.scan(Path(folder), self.db.sources.seed_files(sid))
        errors = list(scan.errors)
        prepared = []
        for f in scan.changed:
            try:
                article = parse.parse_seed(f.path, f.data, source=name, tags=("seed",),
                                           guid=f.key)
            except ParseError as exc:
                errors.append(str(exc))
                continue
            if article is not None:
                prepared.append(dedupe.prepare_seed(article))
        result = self._store(name, prepared,
                             seed_files=[f.update for f in scan.changed] + scan.touched)
        for err in errors:
            log.warning("seed file failed", source=name, error=err)
        error = "; ".join(errors) or None
        nxt = max(started, self.clock()) + schedule.SEED_INTERVAL
        self._record(name, sid, now=started, error=error, next_poll=nxt)
        return Polled(result, error, nxt)

    def _record(self, name: str, sid: int, **kw: Any) -> None:
        if not self.db.sources.record_poll(sid, holder=self.worker_id, **kw):
            self.metrics.claims.labels("poll", "lost").inc()
            log.warning("poll not recorded: another worker holds the source's lease now",
                        source=name, worker=self.worker_id)

    def deliver(self, *, until_done: bool = False) -> DeliveryReport:
        """Send what is due: one round, or (``until_done``) rounds until nothing due is left
        that can be sent now."""
        return self.deliverer.run(until_done=until_done)

    def close(self) -> None:
        self.fetcher.close()
        self.http.close()
        self.db.close()

    def run_once(self) -> PassReport:
        """Everything once: every source, every seed folder, then delivery."""
        report = PassReport()
        # Each source is claimed first; one another worker is polling right now is left to it.
        intervals = self.poll_intervals()
        claimed = self.fleet.claim_polls(intervals, len(intervals), force=True)
        for name in sorted(set(intervals) - set(claimed)):
            log.info("source skipped: another worker is polling it", source=name)
        order = {name: i for i, name in enumerate(intervals)}
        work: list[tuple[str, Callable[[], Polled]]] = [
            (name, partial(self.poll_by_name, name))
            for name in sorted(claimed, key=lambda n: order[n])]
        # Sources are polled side by side, within the fetcher's global and per-host limits.
        with ThreadPoolExecutor(self.cfg.main.fetch.concurrency,
                                thread_name_prefix="poll") as pool:
            outcomes = list(pool.map(lambda item: item[1](), work))
        for (name, _), polled in zip(work, outcomes, strict=True):
            if polled.error is not None:
                report.failed_sources.append(name)
            result = polled.result
            report.new += result.new
            report.updates += result.updates
            report.duplicates += result.duplicates
            report.alerts += len(result.alerts)
        for task, run in (("held", self.flush_held), ("quiet", self.check_quiet)):
            try:
                report.alerts += run()
            except StorageError as exc:   # the rest of the pass still runs
                log.error("task failed", task=task, error=str(exc))
                report.failed_tasks.append(task)
        report.delivery = self.deliver(until_done=True)
        return report


def alert_spec(cfg: config.Config, rule: config.Rule, channels: tuple[str, ...]) -> AlertSpec:
    """What alerting needs of *rule* (live, catch-up and backtest alike)."""
    when = (rule.when.count, rule.when.within, rule.when.distinct_sources) \
        if rule.when is not None else None
    spike = SpikeSpec(rule.spike.within, rule.spike.baseline, rule.spike.factor,
                      rule.spike.min_count) if rule.spike is not None else None
    first = FirstSeenSpec(rule.first_seen.by, rule.first_seen.within) \
        if rule.first_seen is not None else None
    labels: tuple[tuple[str, str], ...] = ()
    if first is not None and first.by == "entity":
        labels = tuple((eid, cfg.entity_label(eid)) for eid in sorted(entities_of(rule.match)))
    return AlertSpec(rule.id, rule.display_title, rule.severity, channels, when, rule.throttle,
                     spike, first, rule.quiet.within if rule.quiet is not None else None,
                     labels)


def sighting_keys(rule: config.Rule, terms: frozenset[str]) -> tuple[str, ...]:
    """What a first_seen rule looks for as new in a match: its entities (ids), its terms (as
    written), or the rule itself ("")."""
    if rule.first_seen is None:
        return ()
    if rule.first_seen.by == "entity":
        return tuple(sorted(t[1:] for t in terms if t.startswith("@")))
    if rule.first_seen.by == "term":
        return tuple(sorted(terms))
    return ("",)
