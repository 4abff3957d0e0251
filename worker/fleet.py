"""This worker's part in a fleet of workers sharing one database.

A worker has an id (a ULID), registers itself when it starts, beats every ``workers.heartbeat``
(renewing every lease it holds by ``workers.lease``), and on a clean stop gives its leases back.
It claims what it does: due sources (``claim_polls``), recurring tasks (``run_task``: digests,
throttle flushes, retention, vacuum), and on PostgreSQL one of each host's ``fetch.per_host``
request slots for every request (``host_slot``), so the limit holds for the fleet. Deliveries are
claimed by the deliverer (``Outbox.claim``). A worker killed at any moment holds its leases until
they expire, one lease period at most; then the others take its work.

The register also says when workers disagree: each records the digest of its rule files, of its
configuration (apart from ``http``, which differs from worker to worker) and the schema version
its code expects; a worker that differs from the others says so in its log, and ``raqib
workers`` shows it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from worker import __version__, config
from worker.db import Database, code_schema_version
from worker.db.leases import Claim, WorkerInfo, differences
from worker.errors import FetchError
from worker.metrics import Metrics

log = structlog.get_logger("raqib.fleet")

SLOT_RETRY = (0.05, 0.5)   # seconds between tries for a host slot: first, at most


def rules_digest(cfg: config.Config) -> str:
    """A digest of the rule files' contents (where they sit does not matter)."""
    h = hashlib.sha256()
    for digest in sorted(_file_digest(p) for p in cfg.rule_files):
        h.update(digest.encode())
    return h.hexdigest()


def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing:" + path


def config_digest(cfg: config.Config) -> str:
    """A digest of the main configuration apart from ``http`` (each worker listens on its own
    address) and the paths of rule files and seed folders (their contents are compared)."""
    data = cfg.main.model_dump(mode="json", exclude={"http", "rules", "seeds"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class Fleet:
    """Identity, heartbeat and claims of one worker (see the module's docstring)."""

    def __init__(self, db: Database, worker_id: str, cfg: config.Config,
                 metrics: Metrics) -> None:
        self.db = db
        self.id = worker_id
        self.metrics = metrics
        self.cfg = cfg
        self.digests = (rules_digest(cfg), config_digest(cfg))
        self.lease = cfg.main.workers.lease
        self.heartbeat = cfg.main.workers.heartbeat
        self.schema_version = code_schema_version()
        self.registered = False
        self._beat_at: float | None = None   # monotonic time of the last recorded beat
        self._differs: list[str] = []
        self.stopping = threading.Event()
        metrics.heartbeat_age.set_function(lambda: self.heartbeat_age or 0.0)

    def apply(self, cfg: config.Config) -> None:
        """A reloaded configuration: the next beat records what it runs now."""
        self.cfg = cfg
        self.digests = (rules_digest(cfg), config_digest(cfg))

    @property
    def heartbeat_age(self) -> float | None:
        """Seconds since the last recorded heartbeat (None before the first)."""
        return None if self._beat_at is None else time.monotonic() - self._beat_at

    # -- the register -------------------------------------------------------------------------

    def register(self) -> None:
        """Record this worker in the register and say how it differs from the others."""
        now = self.db.units.clock()
        self.db.leases.register(WorkerInfo(
            self.id, socket.gethostname(), os.getpid(), __version__, now, now, None,
            self.schema_version, *self.digests))
        self.registered = True
        self._beat_at = time.monotonic()
        log.info("worker registered", worker=self.id, host=socket.gethostname(),
                 pid=os.getpid(), lease_seconds=self.lease.total_seconds())
        self._check_differences()

    def beat(self) -> None:
        """Renew every lease this worker holds and record the beat."""
        if not self.registered:
            self.register()
        held = self.db.leases.renew(self.id, self.lease)
        self.db.leases.beat(self.id, rules_digest=self.digests[0],
                            config_digest=self.digests[1], lease=self.lease)
        self._beat_at = time.monotonic()
        self.metrics.leases_held.labels("sources").set(held.sources)
        self.metrics.leases_held.labels("deliveries").set(held.deliveries)
        self.metrics.leases_held.labels("named").set(held.named)
        self._check_differences()

    def _check_differences(self) -> None:
        now = self.db.units.clock()
        infos = self.db.leases.workers()
        me = next((w for w in infos if w.id == self.id), None)
        if me is None:
            return
        running = [w for w in infos if w.state(now, self.lease) == "running"]
        differs = differences(me, running, database_schema=self.db.schema_version())
        if differs != self._differs:
            self._differs = differs
            if differs:
                log.warning("this worker differs from the other workers; every worker should "
                            "run the same configuration, rules and version",
                            worker=self.id, differs=differs)
            else:
                log.info("this worker agrees with the other workers", worker=self.id)

    @property
    def differs(self) -> list[str]:
        return list(self._differs)

    def stop(self, *, release: bool = True) -> None:
        """A clean stop: give the leases back (unless work may still be running under them)
        and mark this worker stopped."""
        self.stopping.set()
        if not self.registered:
            return
        try:
            if release:
                self.db.leases.release_all(self.id)
            self.db.leases.stopped(self.id)
        except Exception:
            log.exception("cannot record the stop; the leases expire by themselves")

    # -- claims -------------------------------------------------------------------------------

    def claim_polls(self, intervals: Mapping[str, timedelta], limit: int, *,
                    force: bool = False) -> list[str]:
        """Claim due sources (all of *intervals* with *force*), at most *limit*."""
        names = self.db.sources.claim_due(self.id, self.lease, intervals, limit=limit,
                                          force=force)
        if names:
            self.metrics.claims.labels("poll", "won").inc(len(names))
        return names

    def run_task(self, name: str, due: Callable[[datetime | None, datetime], bool],
                 work: Callable[[], object]) -> bool:
        """Run *work* as task *name* when its round is due and no other worker runs it; the
        round is recorded as done (at the time of the claim) only when *work* returns. True
        when it ran."""
        outcome, claimed_at = self.db.leases.claim_task(name, self.id, self.lease, due)
        if outcome is Claim.NOT_DUE:
            return False
        self.metrics.claims.labels("task", outcome.value).inc()
        if outcome is Claim.LOST:
            return False
        done = False
        try:
            work()
            done = True
        finally:
            if not self.db.leases.finish_task(name, self.id, claimed_at if done else None):
                self.metrics.claims.labels("task", "lost").inc()
                log.warning("task lease lost while it ran (a heartbeat was late)", task=name,
                            worker=self.id)
        return True

    @contextmanager
    def host_slot(self, host: str, timeout: float) -> Iterator[None]:
        """One of *host*'s ``fetch.per_host`` request slots, for the whole fleet; waits up to
        *timeout* seconds for one. Raises FetchError when none came free in time."""
        slots = self.cfg.main.fetch.per_host
        deadline = time.monotonic() + timeout
        pause = SLOT_RETRY[0]
        while True:
            name = self.db.leases.claim_slot(host, slots, self.id, self.lease)
            if name is not None:
                break
            self.metrics.claims.labels("host_slot", "lost").inc()
            if time.monotonic() + pause > deadline or self.stopping.is_set():
                raise FetchError(f"fetch: {host}: all {slots} request slots of the host are "
                                 "taken by other workers (fetch.per_host)")
            time.sleep(pause)   # another worker's request to this host ends soon
            pause = min(pause * 2, SLOT_RETRY[1])
        self.metrics.claims.labels("host_slot", "won").inc()
        try:
            yield
        finally:
            try:
                self.db.leases.release(name, self.id)
            except Exception:
                log.exception("cannot release a host slot; it expires by itself", host=host)
