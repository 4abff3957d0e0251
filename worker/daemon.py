"""The long-lived daemon: APScheduler drives the pipeline until SIGTERM or SIGINT.

Each ``raqib run`` is one worker of a fleet that may share its database (``worker.fleet``).
Jobs: *dispatch* (every second, and at once when a seed file changes or a poll ends) claims the
sources whose poll is due, as many as there are free fetch threads, and polls each on its own
thread, so a slow source never holds up the others; *delivery* (every few seconds, and at once
when alerts are raised) claims due deliveries and sends them; *tasks* (every few seconds) runs
each recurring task whose round has come and that no other worker runs — every digest at its
hour, throttled alerts held past their window (every minute), quiet sources (every minute, or
a tenth of the shortest quiet window), retention and the register's
clean-up (hourly) and SQLite's vacuum (daily); *heartbeat* renews every lease this worker holds.
Each job is coalesced and runs one instance at a time. What is due lives in the database
(``next_poll``, the tasks' last rounds), so a restart, a reload or another worker carries on
where this one stopped.

The configuration, rule files and entity packs are watched and reloaded on change and on
SIGHUP; an invalid change is refused (each problem logged as FILE:LINE) and the running
configuration stays.

Stopping, as rq and arq do: a warm stop (the first SIGTERM or SIGINT, or ``stop()``) takes no
new work and gives running jobs a grace period to finish, then gives the worker's leases back;
a cold stop (a second signal, or ``stop(cold=True)``) waits for nothing and leaves them to
expire. Database writes are transactions, so neither leaves half-written state. ``start()`` and
``stop()`` run the daemon in-process without touching signal handlers (tests, embedding);
``run()`` is the command's loop, which installs them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from datetime import datetime, timedelta
from functools import partial
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
from worker.pipeline import Pipeline
from worker.watch import Watcher
from worker.web import WebServer

log = structlog.get_logger("raqib.daemon")

DISPATCH_INTERVAL = timedelta(seconds=1)
DELIVERY_INTERVAL = timedelta(seconds=5)
TASKS_INTERVAL = timedelta(seconds=5)
HOUSEKEEPING_EVERY = timedelta(hours=1)
HELD_EVERY = timedelta(minutes=1)
QUIET_EVERY = timedelta(minutes=1)   # at most; shorter for quiet windows under 10 minutes
VACUUM_EVERY = timedelta(days=1)
FORGET_WORKERS_AFTER = timedelta(days=7)
CATCH_UP = timedelta(minutes=10)   # a new rule also runs over articles this recent
GRACE = timedelta(seconds=20)
EXTRA_WORKERS = 4


def every(period: timedelta) -> Callable[[datetime | None, datetime], bool]:
    """A task's round is due once *period* has passed since the last one."""
    return lambda last, now: last is None or now - last >= period


def at(trigger: CronTrigger) -> Callable[[datetime | None, datetime], bool]:
    """A task's round is due once *trigger* has fired since the last one (a round missed while
    every worker was down still runs, late, once)."""
    def due(last: datetime | None, now: datetime) -> bool:
        if last is None:
            return False
        fire = trigger.get_next_fire_time(None, last + timedelta(microseconds=1))
        return fire is not None and fire <= now
    return due


class Daemon:
    def __init__(self, pipeline: Pipeline, *, grace: timedelta = GRACE,
                 web: bool = True, watch: bool = True) -> None:
        self.pipeline = pipeline
        self.fleet = pipeline.fleet
        self.grace = grace
        self.stopping = threading.Event()
        self.cold = threading.Event()
        self.reload_lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(EXTRA_WORKERS)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
            timezone="UTC",
        )
        # One thread per concurrent fetch: a slow source holds its own thread, never others'.
        self.polls = futures.ThreadPoolExecutor(pipeline.cfg.main.fetch.concurrency,
                                                thread_name_prefix="poll")
        self.polling: set[str] = set()   # sources this worker is polling now
        self.digest_triggers: dict[str, CronTrigger] = {}
        self.scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        self.scheduler.add_listener(self._finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self._running = 0
        self._running_lock = threading.Lock()
        self.web: WebServer | None = None
        if web:
            try:
                self.web = WebServer(pipeline.cfg.main.http.listen, health=self.health,
                                     metrics=pipeline.metrics.exposition, store=pipeline.db,
                                     details=self.health_details,
                                     token=pipeline.cfg.main.http.token)
            except OSError as exc:   # the port is taken: run on, without the endpoint
                log.error("http: cannot listen; /healthz and /metrics are off",
                          listen=pipeline.cfg.main.http.listen, error=str(exc))
        self.watcher = Watcher(self._watched, self._changed) if watch else None

    # -- jobs ---------------------------------------------------------------------------------

    def _schedule(self) -> None:
        now = self.pipeline.clock()
        self._schedule_digests()
        self.scheduler.add_job(self._beat, "interval", id="heartbeat", next_run_time=now,
                               seconds=self.fleet.heartbeat.total_seconds())
        self.scheduler.add_job(self._dispatch, "interval", id="dispatch", next_run_time=now,
                               seconds=DISPATCH_INTERVAL.total_seconds())
        self.scheduler.add_job(self._deliver, "interval", id="delivery", next_run_time=now,
                               seconds=DELIVERY_INTERVAL.total_seconds())
        self.scheduler.add_job(self._tasks, "interval", id="tasks", next_run_time=now,
                               seconds=TASKS_INTERVAL.total_seconds())

    def _schedule_digests(self) -> None:
        """The trigger of each channel's digest: at its hour (or every hour), in its zone."""
        triggers = {}
        for name, spec in self.pipeline.cfg.main.channels.items():
            if spec.digest is None:
                continue
            d = spec.digest
            triggers[name] = CronTrigger(minute=0, timezone="UTC") if d.kind == "hourly" else \
                CronTrigger(hour=d.hour, minute=d.minute, timezone=d.tzinfo)
        self.digest_triggers = triggers

    def _finished(self, _event: JobEvent) -> None:
        with self._running_lock:
            self._running -= 1

    @property
    def running_jobs(self) -> int:
        """Jobs and polls running now."""
        with self._running_lock:
            return self._running

    def _submitted(self, event: JobSubmissionEvent) -> None:
        with self._running_lock:
            self._running += 1
        late = self.pipeline.clock() - max(event.scheduled_run_times)
        self.pipeline.metrics.lag.set(max(0.0, late.total_seconds()))

    def _beat(self) -> None:
        if self.stopping.is_set():
            return
        try:
            self.fleet.beat()
        except Exception:
            log.exception("heartbeat failed; this worker's leases lapse unless the next one "
                          "succeeds", worker=self.fleet.id)

    def _dispatch(self) -> None:
        """Claim the due sources this worker has threads for, and poll each on its own."""
        if self.stopping.is_set():
            return
        try:
            free = self.pipeline.cfg.main.fetch.concurrency - len(self.polling)
            intervals = self.pipeline.poll_intervals()
            names = [n for n in intervals if n not in self.polling]
            due = self.pipeline.db.sources.next_due(names) if free > 0 and names else None
            if due is None or due > self.pipeline.clock():
                return
            claimed = self.fleet.claim_polls({n: intervals[n] for n in names}, free)
        except Exception:
            log.exception("job failed", job="dispatch")
            return
        for name in claimed:
            with self._running_lock:
                self._running += 1
                self.polling.add(name)
            try:
                self.polls.submit(self._poll, name)
            except RuntimeError:   # stopping: the pool takes no more work
                self._polled(name)

    def _polled(self, name: str) -> None:
        with self._running_lock:
            self._running -= 1
            self.polling.discard(name)

    def _poll(self, name: str) -> None:
        """One source's poll: the isolation boundary where an unexpected error is logged, never
        raised. New alerts wake the delivery job instead of waiting for its next round; a free
        thread wakes the dispatcher."""
        try:
            if self.stopping.is_set():
                return
            try:
                polled = self.pipeline.poll_by_name(name)
            except KeyError:   # removed by a reload since it was claimed
                self.pipeline.db.sources.record_poll(
                    self.pipeline.source_ids.get(name, -1), now=self.pipeline.clock(),
                    error=None, next_poll=None, holder=self.fleet.id)
                return
            except Exception:
                log.exception("job failed", job=f"poll {name}")
                return
            if polled.result.alerts and not self.stopping.is_set():
                self._modify("delivery", self.pipeline.clock())
        finally:
            self._polled(name)
            if not self.stopping.is_set():
                self._modify("dispatch", self.pipeline.clock())

    def _modify(self, job_id: str, when: Any) -> None:
        job = self.scheduler.get_job(job_id)
        if job is not None:   # a reload may have removed it meanwhile
            with contextlib.suppress(Exception):   # the scheduler is shutting down
                job.modify(next_run_time=when)

    def _deliver(self) -> None:
        if self.stopping.is_set():
            return
        try:
            self.pipeline.deliver()
        except Exception:
            log.exception("job failed", job="delivery")

    def tasks(self) -> list[tuple[str, Callable[[datetime | None, datetime], bool],
                                  Callable[[], object]]]:
        """The recurring tasks of the running configuration: (name, when due, work)."""
        out: list[tuple[str, Callable[[datetime | None, datetime], bool],
                        Callable[[], object]]] = [
            ("held", every(HELD_EVERY), self._flush_held),
            ("housekeeping", every(HOUSEKEEPING_EVERY), self._housekeeping),
        ]
        quiet = [r.quiet.within for r in self.pipeline.cfg.ruleset.quiet if r.quiet is not None]
        if quiet:   # often enough to alert within a tenth of the shortest quiet window
            out.append(("quiet", every(max(TASKS_INTERVAL, min(QUIET_EVERY, min(quiet) / 10))),
                        self._check_quiet))
        if self.pipeline.db.dialect == "sqlite":
            out.append(("vacuum", every(VACUUM_EVERY), self.pipeline.db.vacuum))
        for name, trigger in self.digest_triggers.items():
            out.append((f"digest:{name}", at(trigger), partial(self._digest, name)))
        return out

    def _tasks(self) -> None:
        """Each recurring task whose round has come, unless another worker runs it."""
        for name, due, work in self.tasks():
            if self.stopping.is_set():
                return
            try:
                self.fleet.run_task(name, due, work)
            except Exception:
                log.exception("job failed", job=name)

    def _digest(self, name: str) -> None:
        self.pipeline.deliverer.digest(name)

    def _flush_held(self) -> None:
        """Throttled rules whose window passed with alerts held back alert now."""
        if self.pipeline.flush_held():
            self._modify("delivery", self.pipeline.clock())

    def _check_quiet(self) -> None:
        """Quiet rules: sources quiet for their window, and those with news again."""
        if self.pipeline.check_quiet():
            self._modify("delivery", self.pipeline.clock())

    def _housekeeping(self) -> None:
        now = self.pipeline.clock()
        retention = self.pipeline.cfg.main.retention
        if retention is not None:
            removed = self.pipeline.db.prune(now - retention)
            self.pipeline.metrics.pruned.inc(removed)
            if removed:
                log.info("retention: old articles removed", articles=removed)
        self.pipeline.db.leases.forget_workers(now - FORGET_WORKERS_AFTER)

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
        for folder in seeds:   # a new or changed seed file is read at once (by some worker)
            try:
                self.pipeline.db.sources.poll_now(config.seed_source_name(folder))
            except StorageError as exc:
                log.warning("cannot mark a seed folder due", folder=folder, error=str(exc))
        if seeds:
            self._modify("dispatch", self.pipeline.clock())

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
            self._schedule_digests()
            self._modify("dispatch", self.pipeline.clock())
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
        age = self.fleet.heartbeat_age
        if age is not None and age > self.fleet.lease.total_seconds():
            return False, f"heartbeat {age:.0f} s old: this worker's leases have lapsed"
        return True, "running"

    def health_details(self) -> dict[str, Any]:
        """What /healthz adds for one worker of a fleet."""
        age = self.fleet.heartbeat_age
        return {"worker": self.fleet.id, "heartbeat_age": None if age is None else round(age, 3),
                "polling": sorted(self.polling), "differs": self.fleet.differs}

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
        try:
            self.fleet.register()
            # Seed folders may have changed while this worker was down: read them at once.
            for folder in self.pipeline.cfg.main.seeds:
                self.pipeline.db.sources.poll_now(config.seed_source_name(folder))
        except StorageError as exc:   # the heartbeat job registers it once the database answers
            log.error("cannot register this worker yet", error=str(exc))
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
        self.fleet.stopping.set()

        def shutdown() -> None:
            self.scheduler.shutdown(wait=not cold)
            self.polls.shutdown(wait=not cold, cancel_futures=True)

        stopper = threading.Thread(target=shutdown, daemon=True)
        stopper.start()
        stopper.join(wait if not cold else 5.0)
        if self.web is not None:
            self.web.stop()
        finished = not stopper.is_alive() and self.running_jobs <= 0
        # Leases go back only when nothing runs under them any more; otherwise they expire.
        self.fleet.stop(release=finished)
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
