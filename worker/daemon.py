"""The long-lived daemon: APScheduler drives the pipeline until SIGTERM or SIGINT.

Jobs: one per feed source (at its own next poll), one per seed folder (every minute, and at
once when a file in it changes), delivery (every few seconds, and at once when alerts are
raised), one per digest channel (at its hour), throttled alerts held past their window (every
minute) and housekeeping (hourly: retention, and SQLite's vacuum once a day). Each job is
coalesced and runs one instance at a time.

The configuration, rule files and entity packs are watched and reloaded on change and on
SIGHUP; an invalid change is refused (each problem logged as FILE:LINE) and the running
configuration stays.

Stopping, as rq and arq do: a warm stop (the first SIGTERM or SIGINT, or ``stop()``) takes no
new work and gives running jobs a grace period to finish; a cold stop (a second signal, or
``stop(cold=True)``) waits for nothing. Database writes are transactions, so neither leaves
half-written state. ``start()`` and ``stop()`` run the daemon in-process without touching
signal handlers (tests, embedding); ``run()`` is the command's loop, which installs them.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from worker import config
from worker.errors import ConfigError, StorageError
from worker.pipeline import Pipeline, Polled
from worker.watch import Watcher
from worker.web import WebServer

log = structlog.get_logger("raqib.daemon")

SEED_INTERVAL = timedelta(minutes=1)
DELIVERY_INTERVAL = timedelta(seconds=5)
HOUSEKEEPING_INTERVAL = timedelta(hours=1)
HELD_INTERVAL = timedelta(minutes=1)
VACUUM_EVERY = timedelta(days=1)
CATCH_UP = timedelta(minutes=10)   # a new rule also runs over articles this recent
GRACE = timedelta(seconds=20)
EXTRA_WORKERS = 4


class Daemon:
    def __init__(self, pipeline: Pipeline, *, grace: timedelta = GRACE,
                 web: bool = True, watch: bool = True) -> None:
        self.pipeline = pipeline
        self.grace = grace
        self.stopping = threading.Event()
        self.cold = threading.Event()
        self.reload_lock = threading.Lock()
        self.last_vacuum = pipeline.clock()
        # One thread per concurrent fetch, and a few for seeds, deliveries and housekeeping:
        # a slow source holds its own thread, never the others'.
        workers = pipeline.cfg.main.fetch.concurrency + EXTRA_WORKERS
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
            timezone="UTC",
        )
        self.scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        self.scheduler.add_listener(self._finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self._running = 0
        self._running_lock = threading.Lock()
        self.web: WebServer | None = None
        if web:
            try:
                self.web = WebServer(pipeline.cfg.main.http.listen, health=self.health,
                                     metrics=pipeline.metrics.exposition, store=pipeline.db)
            except OSError as exc:   # the port is taken: run on, without the endpoint
                log.error("http: cannot listen; /healthz and /metrics are off",
                          listen=pipeline.cfg.main.http.listen, error=str(exc))
        self.watcher = Watcher(self._watched, self._changed) if watch else None

    # -- jobs ---------------------------------------------------------------------------------

    def _schedule(self) -> None:
        now = self.pipeline.clock()
        self._schedule_sources(self.pipeline.cfg, None)
        for folder in self.pipeline.cfg.main.seeds:
            self._add_seed_job(folder)
        self.scheduler.add_job(self._deliver, "interval", id="delivery", next_run_time=now,
                               seconds=DELIVERY_INTERVAL.total_seconds())
        self.scheduler.add_job(self._housekeeping, "interval", id="housekeeping",
                               seconds=HOUSEKEEPING_INTERVAL.total_seconds())
        self.scheduler.add_job(self._held, "interval", id="held",
                               seconds=HELD_INTERVAL.total_seconds())
        self._schedule_digests()

    def _schedule_digests(self) -> None:
        """A job per channel with a digest, at its hour (or every hour), in its time zone."""
        for job in self.scheduler.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        for name, spec in self.pipeline.cfg.main.channels.items():
            if spec.digest is None:
                continue
            d = spec.digest
            trigger = CronTrigger(minute=0, timezone="UTC") if d.kind == "hourly" else \
                CronTrigger(hour=d.hour, minute=d.minute, timezone=d.tzinfo)
            # A digest missed while the daemon was busy or down still goes out, late.
            self.scheduler.add_job(self._digest, trigger, args=[name], id=f"digest:{name}",
                                   misfire_grace_time=None)

    def _digest(self, name: str) -> None:
        if self.stopping.is_set():
            return
        try:
            self.pipeline.deliverer.digest(name)
        except Exception:
            log.exception("job failed", job=f"digest {name}")

    def _add_seed_job(self, folder: str) -> None:
        self.scheduler.add_job(self._poll, "interval",
                               args=[f"seeds {folder}", self.pipeline.poll_seeds, folder],
                               id=f"seeds:{folder}", next_run_time=self.pipeline.clock(),
                               seconds=SEED_INTERVAL.total_seconds(), replace_existing=True)

    def _schedule_sources(self, cfg: config.Config, old: config.Config | None) -> None:
        """Jobs for the sources of *cfg*: new ones added, removed ones dropped, changed ones
        replaced; a source in backoff (or told to Retry-After) stays so, across restarts."""
        now = self.pipeline.clock()
        due = {s.name: s.next_poll for s in self.pipeline.db.sources.all()}
        before = {s.name: s for s in old.main.sources} if old else {}
        for src in cfg.main.sources:
            if before.get(src.name) == src:
                continue
            first = max(now, due.get(src.name) or now)
            self.scheduler.add_job(self._poll, "interval",
                                   args=[f"source {src.name}", self.pipeline.poll_source, src],
                                   id=f"source:{src.name}", next_run_time=first,
                                   seconds=src.interval.total_seconds(), replace_existing=True)
        for name in set(before) - {s.name for s in cfg.main.sources}:
            self.scheduler.remove_job(f"source:{name}")

    def _finished(self, _event: JobEvent) -> None:
        with self._running_lock:
            self._running -= 1

    @property
    def running_jobs(self) -> int:
        """Jobs running now."""
        with self._running_lock:
            return self._running

    def _submitted(self, event: JobSubmissionEvent) -> None:
        with self._running_lock:
            self._running += 1
        late = self.pipeline.clock() - max(event.scheduled_run_times)
        self.pipeline.metrics.lag.set(max(0.0, late.total_seconds()))

    def _poll(self, what: str, poll: Callable[[Any], Polled], target: Any) -> None:
        """One source's poll: the isolation boundary where an unexpected error is logged, never
        raised into the scheduler; the job runs again at its next time, which is the poll's
        own next_poll (interval with jitter, backoff, Retry-After). New alerts wake the
        delivery job instead of waiting for its next round."""
        if self.stopping.is_set():
            return
        try:
            polled = poll(target)
        except Exception:
            log.exception("job failed", job=what)
            return
        if self.stopping.is_set():
            return
        if polled.next_poll is not None and isinstance(target, config.Source):
            self._modify(f"source:{target.name}", polled.next_poll)
        if polled.result.alerts:
            self._modify("delivery", self.pipeline.clock())

    def _modify(self, job_id: str, when: Any) -> None:
        job = self.scheduler.get_job(job_id)
        if job is not None:   # a reload may have removed it meanwhile
            job.modify(next_run_time=when)

    def _deliver(self) -> None:
        if self.stopping.is_set():
            return
        try:
            self.pipeline.deliver()
        except Exception:
            log.exception("job failed", job="delivery")

    def _held(self) -> None:
        """Throttled rules whose window passed with alerts held back alert now."""
        if self.stopping.is_set():
            return
        try:
            if self.pipeline.flush_held():
                self._modify("delivery", self.pipeline.clock())
        except Exception:
            log.exception("job failed", job="held")

    def _housekeeping(self) -> None:
        if self.stopping.is_set():
            return
        now = self.pipeline.clock()
        try:
            retention = self.pipeline.cfg.main.retention
            if retention is not None:
                removed = self.pipeline.db.prune(now - retention)
                self.pipeline.metrics.pruned.inc(removed)
                if removed:
                    log.info("retention: old articles removed", articles=removed)
            if now - self.last_vacuum >= VACUUM_EVERY:
                self.pipeline.db.vacuum()
                self.last_vacuum = now
        except Exception:
            log.exception("job failed", job="housekeeping")

    # -- reloading ----------------------------------------------------------------------------

    def _watched(self) -> list[str]:
        cfg = self.pipeline.cfg
        return [cfg.path, *cfg.main.rules, *cfg.main.seeds]

    def _changed(self, paths: set[Path]) -> None:
        cfg = self.pipeline.cfg
        seeds = [f for f in cfg.main.seeds if any(_under(p, Path(f)) for p in paths)]
        others = [p for p in paths if not any(_under(p, Path(f)) for f in cfg.main.seeds)]
        if others:
            self.reload(f"changed: {', '.join(sorted(str(p) for p in others)[:5])}")
        for folder in seeds:   # a new or changed seed file is read at once
            self._modify(f"seeds:{folder}", self.pipeline.clock())

    def reload(self, reason: str) -> bool:
        """Load the configuration again and switch to it if it is valid."""
        with self.reload_lock:
            old = self.pipeline.cfg
            try:
                new = config.load_config(old.path)
            except ConfigError as exc:
                for problem in exc.problems:   # a user's mistake, not a crash: no traceback
                    log.error("configuration refused; the running one stays",
                              problem=str(problem), reason=reason)
                self.pipeline.metrics.reloads.labels("refused").inc()
                return False
            self.pipeline.apply(new)
            self._schedule_sources(new, old)
            self._schedule_digests()
            for folder in set(new.main.seeds) - set(old.main.seeds):
                self._add_seed_job(folder)
            for folder in set(old.main.seeds) - set(new.main.seeds):
                self.scheduler.remove_job(f"seeds:{folder}")
            changed = {rid for rid, cr in new.ruleset.by_id.items()
                       if rid not in old.ruleset.by_id or old.ruleset.by_id[rid].rule != cr.rule}
            caught = self.pipeline.catch_up(changed, self.pipeline.clock() - CATCH_UP)
            if caught:
                self._modify("delivery", self.pipeline.clock())
            self.pipeline.metrics.reloads.labels("ok").inc()
            log.info("configuration reloaded", reason=reason, rules=len(new.ruleset),
                     sources=len(new.main.sources), new_or_changed_rules=len(changed),
                     catch_up_alerts=caught)
            return True

    # -- health and lifecycle -----------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        if self.stopping.is_set():
            return False, "stopping"
        if not self.scheduler.running:
            return False, "scheduler not running"
        try:
            self.pipeline.db.ping()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, StorageError) else \
                f"database: {type(exc).__name__}: {exc}"
            return False, reason.splitlines()[0]
        return True, "running"

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            threading.Thread(target=self.reload, args=("SIGHUP",), daemon=True).start()
            return
        if self.stopping.is_set():
            log.warning("second signal: cold stop, exiting now", signal=name)
            self.cold.set()
            os._exit(1)
        log.info("stopping: no new work; running jobs may finish", signal=name,
                 grace_seconds=self.grace.total_seconds())
        self.stopping.set()

    def start(self) -> None:
        """Schedule every job and start the scheduler, the HTTP endpoint and the watcher;
        returns at once. Installs no signal handler."""
        self._schedule()
        self.scheduler.start()
        if self.web is not None:
            self.web.start()
        if self.watcher is not None:
            self.watcher.start()
        log.info("raqib running", sources=len(self.pipeline.cfg.main.sources),
                 seeds=self.pipeline.cfg.main.seeds, rules=len(self.pipeline.cfg.ruleset))

    def stop(self, *, cold: bool = False, grace: timedelta | None = None) -> bool:
        """Stop: warm (no new work; wait up to *grace*, by default the daemon's, for running
        jobs) or *cold* (wait for nothing). Returns True when no job was left running."""
        self.stopping.set()
        if cold:
            self.cold.set()
        if self.watcher is not None:
            self.watcher.stop()
        wait = 0.0 if cold else (grace or self.grace).total_seconds()
        stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": not cold},
                                   daemon=True)
        stopper.start()
        stopper.join(wait if not cold else 5.0)
        if self.web is not None:
            self.web.stop()
        finished = not stopper.is_alive() and self.running_jobs <= 0
        log.info("raqib stopped" if finished else "raqib stopped with jobs still running",
                 cold=cold)
        return finished

    def run(self) -> int:
        """The command's loop: signal handlers, start, wait for a signal, stop warm."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.start()
        while not self.stopping.wait(1.0):
            pass
        if not self.stop():
            log.warning("grace period over: exiting with jobs still running")
            os._exit(0)   # the pool's threads would hold the exit; their writes are transactions
        return 0


def _under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
