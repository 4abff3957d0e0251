"""The long-lived daemon: APScheduler drives the pipeline until SIGTERM or SIGINT.

Jobs: one per feed source (at its interval), one per seed folder (every minute), and delivery
(every few seconds). Each job is coalesced and runs one instance at a time. The first signal stops
new work and lets running jobs finish; a second one exits at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from worker import config
from worker.pipeline import Pipeline, Polled

log = structlog.get_logger("raqib.daemon")

SEED_INTERVAL = timedelta(minutes=1)
DELIVERY_INTERVAL = timedelta(seconds=5)
EXTRA_WORKERS = 4


class Daemon:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.stopping = threading.Event()
        # One thread per concurrent fetch, and a few for seeds and deliveries: a slow source
        # holds its own thread, never the others'.
        workers = pipeline.cfg.main.fetch.concurrency + EXTRA_WORKERS
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
            timezone="UTC",
        )

    def _schedule(self) -> None:
        now = self.pipeline.clock()
        cfg = self.pipeline.cfg.main
        due = {s.name: s.next_poll for s in self.pipeline.store.sources()}
        for src in cfg.sources:
            # A source in backoff (or told to Retry-After) stays so across restarts.
            first = max(now, due.get(src.name) or now)
            self.scheduler.add_job(self._poll, "interval",
                                   args=[f"source {src.name}", self.pipeline.poll_source, src],
                                   id=f"source:{src.name}", next_run_time=first,
                                   seconds=src.interval.total_seconds())
        for folder in cfg.seeds:
            self.scheduler.add_job(self._poll, "interval",
                                   args=[f"seeds {folder}", self.pipeline.poll_seeds, folder],
                                   id=f"seeds:{folder}", next_run_time=now,
                                   seconds=SEED_INTERVAL.total_seconds())
        self.scheduler.add_job(self._deliver, "interval", id="delivery", next_run_time=now,
                               seconds=DELIVERY_INTERVAL.total_seconds())

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
            self.scheduler.modify_job(f"source:{target.name}", next_run_time=polled.next_poll)
        if polled.result.alerts:
            self.scheduler.modify_job("delivery", next_run_time=self.pipeline.clock())

    def _deliver(self) -> None:
        if self.stopping.is_set():
            return
        try:
            self.pipeline.deliver()
        except Exception:
            log.exception("job failed", job="delivery")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping.is_set():
            log.warning("second signal: exiting now", signal=signal.Signals(signum).name)
            os._exit(1)
        log.info("stopping: finishing running jobs", signal=signal.Signals(signum).name)
        self.stopping.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._schedule()
        self.scheduler.start()
        log.info("raqib running", sources=len(self.pipeline.cfg.main.sources),
                 seeds=self.pipeline.cfg.main.seeds, rules=len(self.pipeline.cfg.ruleset))
        while not self.stopping.wait(1.0):
            pass
        self.scheduler.shutdown(wait=True)
        log.info("raqib stopped")
        return 0

