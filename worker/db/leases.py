"""Leases and workers: how several raqib processes share one database without doing anything
twice.

A lease is a row's claim by one worker until a time: a source's poll (``sources.lease_*``), a
delivery's send (``deliveries.lease_*``), or a named lease in ``leases`` — a recurring task
(``digest:<channel>``, ``held``, ``retention``, ``vacuum``) with the time of its last round, or
one of a host's request slots (``host:<name>#<n>``). Claims are taken on PostgreSQL with
``SELECT … FOR UPDATE SKIP LOCKED`` (two workers claiming at once get different rows, neither
waits), on SQLite under ``BEGIN IMMEDIATE``. A live worker's heartbeat renews every lease it
holds; a dead worker's expire, and the next claim after that takes them. The pattern is the
one job queues on PostgreSQL use (Que, graphile-worker, Oban), with the lease time of Chubby
and Kubernetes' Lease objects in place of a session.

``workers`` is the fleet's register: one row per process, written when it starts, beaten every
heartbeat, marked on a clean stop. A row whose beat is older than the lease is a gone worker.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, or_, select, update

from worker.db.engine import insert
from worker.db.quiet import keep_spans
from worker.db.uow import Units
from worker.schema import Delivery, Lease, Source, Worker

TASK_PREFIXES = ("digest:", "held", "quiet", "retention", "vacuum")


class Claim(enum.Enum):
    """The outcome of trying to claim a named task."""

    WON = "won"
    LOST = "lost"          # another live worker holds it, or is claiming it right now
    NOT_DUE = "not_due"    # free, but its round is done


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker as its row and its leases show it."""

    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
    schema_version: str
    rules_digest: str
    config_digest: str
    sources: list[str] = field(default_factory=list)
    deliveries: int = 0
    tasks: list[str] = field(default_factory=list)

    def state(self, now: datetime, lease: timedelta) -> str:
        """``stopped`` (a clean stop), ``gone`` (no beat for a lease period) or ``running``."""
        if self.stopped_at is not None:
            return "stopped"
        return "gone" if now - self.beat_at > lease else "running"


@dataclass(frozen=True, slots=True)
class Held:
    """How many leases one worker holds, by kind."""

    sources: int = 0
    deliveries: int = 0
    named: int = 0


def _lease_free(now: datetime) -> ColumnElement[bool]:
    """A named lease no live worker holds."""
    return or_(Lease.holder.is_(None), Lease.expires_at < now)


class Leases:
    def __init__(self, units: Units) -> None:
        self.units = units

    # -- named leases: tasks ------------------------------------------------------------------

    def claim_task(self, name: str, holder: str, lease: timedelta,
                   due: Callable[[datetime | None, datetime], bool]) -> tuple[Claim, datetime]:
        """Claim task *name* for *holder* when no live worker holds it and ``due(last_done,
        now)`` says its round has come. Returns the outcome and the time of the claim. A task
        seen for the first time counts its last round as done now."""
        with self.units.claim_unit(f"claim task {name}") as uow:
            uow.conn.execute(insert(uow.dialect, Lease).values(
                name=name, holder=None, expires_at=None, last_done=uow.now)
                .on_conflict_do_nothing())
            row = uow.conn.execute(
                select(Lease.holder, Lease.expires_at, Lease.last_done)
                .where(Lease.name == name).with_for_update(skip_locked=True)).one_or_none()
            if row is None:
                return Claim.LOST, uow.now
            held_by, expires, last_done = row
            if held_by is not None and held_by != holder and expires is not None \
                    and expires >= uow.now:
                return Claim.LOST, uow.now
            if not due(last_done, uow.now):
                return Claim.NOT_DUE, uow.now
            uow.conn.execute(update(Lease).where(Lease.name == name).values(
                holder=holder, expires_at=uow.now + lease))
            return Claim.WON, uow.now

    def finish_task(self, name: str, holder: str, done_at: datetime | None) -> bool:
        """Release task *name*; with *done_at*, its round is recorded as done then. False when
        *holder* no longer held it (its lease expired and another worker took it)."""
        values: dict[str, object] = {"holder": None, "expires_at": None}
        if done_at is not None:
            values["last_done"] = done_at
        with self.units.unit(f"finish task {name}") as uow:
            result = uow.conn.execute(update(Lease).where(
                Lease.name == name, Lease.holder == holder).values(**values))
            return bool(result.rowcount)

    def last_done(self, name: str) -> datetime | None:
        with self.units.read(f"read task {name}") as conn:
            return conn.scalar(select(Lease.last_done).where(Lease.name == name))

    # -- named leases: a host's request slots -------------------------------------------------

    def claim_slot(self, host: str, slots: int, holder: str, lease: timedelta) -> str | None:
        """One of *host*'s *slots* request slots for *holder*, or None while all are taken."""
        names = [f"host:{host}#{i}" for i in range(slots)]
        with self.units.claim_unit(f"claim a request slot of {host}") as uow:
            uow.conn.execute(insert(uow.dialect, Lease).on_conflict_do_nothing(),
                             [{"name": n, "holder": None, "expires_at": None,
                               "last_done": None} for n in names])
            name = uow.conn.scalar(
                select(Lease.name)
                .where(Lease.name.in_(names), _lease_free(uow.now))
                .order_by(Lease.name).limit(1).with_for_update(skip_locked=True))
            if name is None:
                return None
            uow.conn.execute(update(Lease).where(Lease.name == name).values(
                holder=holder, expires_at=uow.now + lease))
            return str(name)

    def release(self, name: str, holder: str) -> None:
        with self.units.unit(f"release {name}") as uow:
            uow.conn.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                             .values(holder=None, expires_at=None))

    # -- every lease of a worker --------------------------------------------------------------

    def renew(self, holder: str, lease: timedelta) -> Held:
        """Extend every lease *holder* holds by *lease* from now; returns how many it holds."""
        with self.units.unit("renew leases") as uow:
            until = uow.now + lease
            n_sources = uow.conn.execute(update(Source).where(Source.lease_holder == holder)
                                         .values(lease_expires=until)).rowcount
            n_deliveries = uow.conn.execute(
                update(Delivery).where(Delivery.lease_holder == holder,
                                       Delivery.status == "pending")
                .values(lease_expires=until)).rowcount
            n_named = uow.conn.execute(update(Lease).where(Lease.holder == holder)
                                       .values(expires_at=until)).rowcount
            return Held(int(n_sources or 0), int(n_deliveries or 0), int(n_named or 0))

    def release_all(self, holder: str) -> None:
        """Give back every lease of *holder* (a clean stop): others take them at once."""
        with self.units.unit("release leases") as uow:
            uow.conn.execute(update(Source).where(Source.lease_holder == holder)
                             .values(lease_holder=None, lease_expires=None))
            uow.conn.execute(update(Delivery).where(Delivery.lease_holder == holder)
                             .values(lease_holder=None, lease_expires=None))
            uow.conn.execute(update(Lease).where(Lease.holder == holder)
                             .values(holder=None, expires_at=None))

    # -- the register of workers --------------------------------------------------------------

    def register(self, info: WorkerInfo) -> None:
        with self.units.unit("register worker") as uow:
            uow.conn.execute(insert(uow.dialect, Worker).values(
                id=info.id, host=info.host, pid=info.pid, version=info.version,
                started_at=info.started_at, beat_at=info.beat_at, stopped_at=None,
                schema_version=info.schema_version, rules_digest=info.rules_digest,
                config_digest=info.config_digest))

    def beat(self, worker_id: str, *, rules_digest: str, config_digest: str,
             lease: timedelta | None = None) -> datetime:
        """Record that *worker_id* is alive, with what it runs now; returns the time. A beat
        coming more than *lease* after the last one (the process was stopped or its machine
        suspended) starts a new running span: the gap was no running time."""
        with self.units.unit("heartbeat") as uow:
            values: dict[str, object] = {"beat_at": uow.now, "stopped_at": None,
                                         "rules_digest": rules_digest,
                                         "config_digest": config_digest}
            if lease is not None:
                row = uow.conn.execute(select(Worker.started_at, Worker.running_since,
                                              Worker.beat_at)
                                       .where(Worker.id == worker_id)).first()
                if row is not None and uow.now - row[2] > lease:
                    keep_spans(uow.conn, uow.dialect, [(row[1] or row[0], row[2])])
                    values["running_since"] = uow.now
            uow.conn.execute(update(Worker).where(Worker.id == worker_id).values(**values))
            return uow.now

    def stopped(self, worker_id: str) -> None:
        with self.units.unit("record worker stop") as uow:
            uow.conn.execute(update(Worker).where(Worker.id == worker_id)
                             .values(stopped_at=uow.now, beat_at=uow.now))

    def forget_workers(self, before: datetime) -> int:
        """Remove the rows of workers not heard from since *before*, keeping when they ran
        (``uptime``: quiet rules count running time)."""
        with self.units.unit("forget old workers") as uow:
            old = [(r or s, b) for s, r, b in uow.conn.execute(
                select(Worker.started_at, Worker.running_since, Worker.beat_at)
                .where(Worker.beat_at < before))]
            keep_spans(uow.conn, uow.dialect, old)
            return int(uow.conn.execute(delete(Worker).where(Worker.beat_at < before))
                       .rowcount or 0)

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker with the leases it holds, the newest first."""
        with self.units.read("list workers") as conn:
            sources: dict[str, list[str]] = defaultdict(list)
            for holder, name in conn.execute(select(Source.lease_holder, Source.name)
                                             .where(Source.lease_holder.is_not(None))
                                             .order_by(Source.name)):
                sources[str(holder)].append(name)
            deliveries = dict(conn.execute(
                select(Delivery.lease_holder, func.count())
                .where(Delivery.lease_holder.is_not(None), Delivery.status == "pending")
                .group_by(Delivery.lease_holder)).all())
            tasks: dict[str, list[str]] = defaultdict(list)
            for holder, name in conn.execute(select(Lease.holder, Lease.name)
                                             .where(Lease.holder.is_not(None))
                                             .order_by(Lease.name)):
                tasks[str(holder)].append(name)
            rows = conn.execute(select(Worker).order_by(Worker.started_at.desc(),
                                                        Worker.id.desc())).all()
            return [WorkerInfo(r.id, r.host, r.pid, r.version, r.started_at, r.beat_at,
                               r.stopped_at, r.schema_version, r.rules_digest,
                               r.config_digest, sources.get(r.id, []),
                               int(deliveries.get(r.id, 0)), tasks.get(r.id, []))
                    for r in rows]


def differences(me: WorkerInfo, running: Sequence[WorkerInfo], *,
                database_schema: str | None) -> list[str]:
    """What *me* runs that most of the *running* workers (itself included) do not: ``rules``,
    ``config``, ``schema`` (also when it is not the database's). Two workers that disagree
    both differ."""
    fleet = [w for w in running if w.id != me.id] + [me]
    out = []
    for what, key in (("rules", "rules_digest"), ("config", "config_digest"),
                      ("schema", "schema_version")):
        mine = getattr(me, key)
        same = sum(1 for w in fleet if getattr(w, key) == mine)
        against_others = len(fleet) > 1 and same * 2 <= len(fleet)
        against_db = what == "schema" and database_schema is not None \
            and mine != database_schema
        if against_others or against_db:
            out.append(what)
    return out
