"""Acceptance of several workers (issue 12): `raqib run` processes on one database, feeds whose
items arrive while they run, a signature-verifying webhook receiver that is down for a while,
and one worker killed with SIGKILL at chosen moments (while a feed response is in flight, just
after a response with new items arrived, while the receiver holds its webhook request) and
restarted each time. When the fleet has settled: every expected alert is in the database once
per (rule, story) and reached the file channel and the receiver, no delivery is left unsent, no
feed was fetched twice within its interval, no host saw more than ``fetch.per_host`` requests at
once, and `raqib workers` shows the killed instances gone and the live ones running.

Which worker made a request is read from /proc (the socket's owner), so the kills land where
they are meant to; the kill schedule comes from a seeded random.Random, and nothing asserts on
speed."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import create_engine, text
from standardwebhooks import Webhook

from conftest import ASAD_RULES, Response, Server, free_port, wait_for, write

RAQIB = [sys.executable, "-m", "worker"]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
INTERVAL = 2.0          # seconds between polls of every feed
LEASE = 3.0             # workers.lease
HEARTBEAT = 1.0         # workers.heartbeat
PER_HOST = 4            # fetch.per_host: every feed is on 127.0.0.1
TOLERANCE = 0.05        # clock granularity allowed on the interval between two fetches
SLOW_PAUSE = 1.2        # seconds a slow feed stops half-way through its body
KINDS = ["fetch", "ingest", "delivery"]   # the moments a worker is killed at
HOLD = 5.0              # at most this long the receiver holds a request from the victim

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(),
                                reason="finds the worker behind a request through /proc")

WORDS = """
army border bridge budget cabinet capital ceasefire city coalition column convoy council
court crossing delegation district drone election embassy envoy factory farmers field
governor harbour highway hospital inquiry journalists judge killed lawmakers leaders market
militia minister ministry mission navy negotiators officials oil parliament patrol police
port president protest province railway rebels refugees region reporters reserve rescue
river road school senate shelter soldiers spokesman strike summit talks tanks taxes
teachers treaty tribe troops truce union villagers voters water wheat workers yesterday
morning evening night week month early late quiet heavy sudden brief long fresh rare
announced arrested blocked called closed crossed delayed denied entered faced fired fled
halted hit joined left marched met moved named opened passed raised reached rejected
returned seized sent signed stopped struck visited warned won after before during near
north south east west inside outside against between across under over along
"""
VOCAB = WORDS.split()


# -- the feeds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    key: str
    title: str
    body: str
    watched: bool


@dataclass(frozen=True)
class Item:
    feed: int
    story: Story
    at: float           # seconds after the start when it appears in its feed

    @property
    def url(self) -> str:
        return f"https://outlet{self.feed:02d}.example/news/{self.story.key}"


def ident(url: str) -> tuple[str, str]:
    """(outlet, story key) of an item's link, however raqib normalized it."""
    parts = urlsplit(url)
    return (parts.hostname or "", parts.path.rstrip("/").rsplit("/", 1)[-1])


def make_story(rng: random.Random, key: str, watched: bool, arabic: bool) -> Story:
    def words(n: int) -> str:
        return " ".join(rng.choice(VOCAB) for _ in range(n))

    title = words(8).capitalize()
    body = [words(rng.randint(12, 18)).capitalize() + "." for _ in range(5)]
    if watched and arabic:
        body.insert(2, "سقطت صواريخ على قاعدة عين الأسد الجوية غرب العراق.")
    elif watched:
        title += " near Ain al-Asad"
        body.insert(1, "Rockets struck the Ain al-Asad air base.")
    return Story(key, title, " ".join(body), watched)


def plan(rng: random.Random, feeds: int, unique: int, wires: int, copies: int,
         span: tuple[float, float]) -> list[Item]:
    """Every item of every feed: *unique* stories of its own per feed, and *wires* stories
    carried by *copies* feeds each, within a second of one another (so several workers ingest
    copies of one story at once). Nearly half are watched."""
    items = []
    n = 0
    for k in range(feeds):
        for j in range(unique):
            watched = rng.random() < 0.45
            story = make_story(rng, f"u{k:02d}-{j}", watched, arabic=watched and n % 4 == 0)
            n += watched
            items.append(Item(k, story, rng.uniform(*span)))
    for w in range(wires):
        story = make_story(rng, f"wire{w:02d}", w % 2 == 0, arabic=w % 4 == 2)
        base = rng.uniform(*span)
        items += [Item(k, story, base + rng.uniform(0, 1.0))
                  for k in rng.sample(range(feeds), copies)]
    return items


def rss(k: int, items: list[Item], wall0: float) -> bytes:
    entries = "".join(
        f"<item><title>{escape(i.story.title)}</title><link>{i.url}</link>"
        f"<guid isPermaLink=\"true\">{i.url}</guid>"
        f"<pubDate>{formatdate(wall0 + i.at, usegmt=True)}</pubDate>"
        f"<description>{escape(i.story.body)}</description></item>"
        for i in sorted(items, key=lambda i: -i.at))
    return (f"<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel>"
            f"<title>Outlet {k:02d}</title><link>https://outlet{k:02d}.example/</link>"
            f"<description>news</description>{entries}</channel></rss>").encode()


# -- who is on the other end of a socket -----------------------------------------------------


def owned_by(client_port: int, server_port: int, pid: int) -> bool:
    """Whether process *pid* holds the client end of the TCP connection 127.0.0.1:client_port
    -> 127.0.0.1:server_port."""
    inode = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            if (int(parts[1].rsplit(":", 1)[1], 16) == client_port
                    and int(parts[2].rsplit(":", 1)[1], 16) == server_port):
                inode = parts[9]
                break
    if inode is None:
        return False
    target = f"socket:[{inode}]"
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
    return False


# -- the harness -----------------------------------------------------------------------------


@dataclass
class Armed:
    """A kill waiting for its moment: *fired* when the victim is there, *killed* after."""

    kind: str                   # fetch | ingest | delivery
    pid: int
    fired: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)


@dataclass
class Instance:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    worker: str | None = None   # its id, from /healthz


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


class Fleet:
    """The feeds and the webhook receiver (on one real HTTP server), the configuration, and
    the `raqib run` processes of one test."""

    def __init__(self, tmp: Path, db_url: str, server: Server, items: list[Item], feeds: int,
                 slow: set[int], down: tuple[float, float]) -> None:
        self.tmp = tmp
        self.db_url = db_url
        self.server = server
        self.server_port = int(server.base.rsplit(":", 1)[1])
        self.items = items
        self.feeds = feeds
        self.slow = slow
        self.down = down
        self.by_feed: dict[int, list[Item]] = defaultdict(list)
        for item in items:
            self.by_feed[item.feed].append(item)
        self.lock = threading.Lock()
        self.fetches: dict[str, list[float]] = defaultdict(list)   # path -> monotonic times
        self.most_served: dict[str, int] = defaultdict(int)
        self.hooks: list[tuple[str, dict[str, Any]]] = []          # (webhook-id, payload)
        self.bad_signatures = 0
        self.refused_down = 0
        self.held = 0
        self.armed: Armed | None = None
        self.instances: list[Instance] = []
        self.killed: list[Instance] = []
        self.spawned = 0
        self.t0 = time.monotonic()
        self.wall0 = time.time()   # for the items' pubDate
        self.config = self._write_config()
        for k in range(feeds):
            server.routes[self.path(k)] = self._feed(k)
        server.routes["/hook"] = self._hook

    @staticmethod
    def path(k: int) -> str:
        return f"/feed/{k:02d}.xml"

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _write_config(self) -> Path:
        write(self.tmp / "rules/asad.yaml", ASAD_RULES)
        sources = "".join(
            f"  - {{name: feed-{k:02d}, url: '{self.server.url(self.path(k))}', "
            f"interval: {INTERVAL:g}s, timeout: 10s}}\n" for k in range(self.feeds))
        return write(self.tmp / "raqib.yaml", (
            f"database: '{self.db_url}'\n"
            f"rules: ['{self.tmp}/rules']\n"
            f"sources:\n{sources}"
            f"channels:\n"
            f"  file: {{type: file, path: '{self.tmp}/alerts.jsonl'}}\n"
            f"  hook: {{type: webhook, url: '{self.server.url('/hook')}', secret: {SECRET}, "
            f"timeout: 10s}}\n"
            "defaults: {notify: [file, hook]}\n"
            f"fetch: {{concurrency: 8, per_host: {PER_HOST}}}\n"
            f"workers: {{lease: {LEASE:g}s, heartbeat: {HEARTBEAT:g}s}}\n"
            # Each worker listens on its own port: the same file, its own environment.
            "http: {listen: '${RAQIB_LISTEN}'}\n"))

    # -- the server's side ----------------------------------------------------------------

    def _victim(self, kind: str, handler: BaseHTTPRequestHandler) -> Armed | None:
        """The armed kill of *kind*, if the victim made this request."""
        armed = self.armed
        if armed is None or armed.kind != kind or armed.fired.is_set():
            return None
        if not owned_by(handler.client_address[1], self.server_port, armed.pid):
            return None
        return armed

    def _feed(self, k: int) -> Any:
        path = self.path(k)

        def route(handler: BaseHTTPRequestHandler) -> Response:
            at = self.now()
            with self.lock:
                self.fetches[path].append(at)
            shown = [i for i in self.by_feed[k] if i.at <= at]
            body = rss(k, shown, self.wall0)
            with self.lock:
                fresh = len(shown) > self.most_served[path]
                self.most_served[path] = max(self.most_served[path], len(shown))

            def stream() -> Iterator[bytes]:
                half = len(body) // 2
                yield body[:half]
                if k in self.slow:
                    armed = self._victim("fetch", handler)
                    if armed is not None:
                        armed.fired.set()   # killed while the rest of the body is awaited
                    time.sleep(SLOW_PAUSE)
                yield body[half:]
                if fresh:
                    armed = self._victim("ingest", handler)
                    if armed is not None:
                        armed.fired.set()   # the items are new to the fleet: it ingests now

            return Response(headers={"Content-Type": "application/rss+xml"}, stream=stream)

        return route

    def _hook(self, handler: BaseHTTPRequestHandler) -> Response:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body: bytes = handler.body  # type: ignore[attr-defined]
        try:
            Webhook(SECRET).verify(body, headers)
        except Exception:
            with self.lock:
                self.bad_signatures += 1
            return Response(401, b"bad signature")
        if self.down[0] <= self.now() < self.down[1]:
            with self.lock:
                self.refused_down += 1
            return Response(503, b"down for maintenance")
        armed = self._victim("delivery", handler)
        if armed is not None:
            armed.fired.set()
            if armed.killed.wait(HOLD):
                with self.lock:
                    self.held += 1
                return Response(503, b"the sender is gone")   # not received: must come again
        with self.lock:
            self.hooks.append((headers["webhook-id"], json.loads(body)))
        return Response(204)

    # -- the workers ----------------------------------------------------------------------

    def env(self, listen: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "RAQIB_CONFIG"}
        env["RAQIB_LISTEN"] = listen
        return env

    def spawn(self) -> Instance:
        """Start a worker (its /healthz comes up a few seconds later: ``ready``)."""
        port = free_port()
        self.spawned += 1
        log = self.tmp / f"logs/worker-{self.spawned}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("wb") as fh:
            proc = subprocess.Popen([*RAQIB, "--log-json", "run", "--config", str(self.config)],
                                    stdout=fh, stderr=subprocess.STDOUT, cwd=self.tmp,
                                    env=self.env(f"127.0.0.1:{port}"))
        inst = Instance(proc, port, log)
        self.instances.append(inst)
        return inst

    def ready(self, inst: Instance) -> Instance:
        """Wait until the worker's /healthz answers 200 and names it."""
        url = f"http://127.0.0.1:{inst.port}/healthz"

        def healthy() -> bool:
            status, answer = get(url)
            if status == 200:
                inst.worker = json.loads(answer).get("worker")
            return status == 200 or inst.proc.poll() is not None

        assert wait_for(healthy, timeout=40), self.tail(inst)
        assert inst.proc.poll() is None, self.tail(inst)
        assert inst.worker, f"/healthz names no worker: {get(url)}"
        return inst

    def kill(self, inst: Instance) -> None:
        inst.proc.send_signal(signal.SIGKILL)
        inst.proc.wait(timeout=10)
        self.instances.remove(inst)
        self.killed.append(inst)

    def kill_at(self, kind: str, victim: Instance, timeout: float,
                rng: random.Random) -> bool:
        """Kill *victim* at the next moment of *kind* (or after *timeout* if none came)."""
        armed = Armed(kind, victim.proc.pid)
        self.armed = armed
        fired = armed.fired.wait(timeout)
        if fired and kind == "ingest":
            time.sleep(rng.uniform(0.0, 0.08))   # parsing, matching, writing
        try:
            self.kill(victim)
        finally:
            armed.killed.set()
            self.armed = None
        return fired

    def stop_all(self) -> None:
        for inst in self.instances:
            if inst.proc.poll() is None:
                inst.proc.send_signal(signal.SIGTERM)
        for inst in self.instances:
            try:
                inst.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                inst.proc.kill()
                inst.proc.wait(timeout=10)
        for inst in self.killed:
            if inst.proc.poll() is None:
                inst.proc.kill()
                inst.proc.wait(timeout=10)

    @staticmethod
    def tail(inst: Instance, lines: int = 30) -> str:
        try:
            return "\n".join(inst.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cli(self, *args: str) -> Any:
        proc = subprocess.run([*RAQIB, *args, "--json", "--config", str(self.config)],
                              capture_output=True, text=True, cwd=self.tmp, timeout=60,
                              env=self.env("127.0.0.1:0"), check=False)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    # -- what was delivered ---------------------------------------------------------------

    def file_ids(self) -> list[str]:
        path = self.tmp / "alerts.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]

    def hook_ids(self) -> set[str]:
        with self.lock:
            return {i for i, _ in self.hooks}

    def settled(self, engine: Any) -> bool:
        """Every item stored, every watched story alerted, every delivery sent and received."""
        watched = {i.story.key for i in self.items if i.story.watched}
        try:
            with engine.connect() as conn:
                articles = conn.execute(text("SELECT count(*) FROM articles")).scalar_one()
                alerts = set(conn.execute(text("SELECT id FROM alerts")).scalars())
                unsent = conn.execute(text(
                    "SELECT count(*) FROM deliveries WHERE status <> 'sent'")).scalar_one()
        except Exception:   # the schema is not there yet, or SQLite is busy: not settled
            return False
        return (self.now() > max(i.at for i in self.items) and articles >= len(self.items)
                and len(alerts) >= len(watched) and unsent == 0
                and alerts <= set(self.file_ids()) and alerts <= self.hook_ids())

    def summary(self, kills: list[tuple[str, bool, float]]) -> str:
        return (f"kills (kind, at its moment, when): {kills}; items {len(self.items)}; "
                f"webhooks received {len(self.hooks)}, refused while down {self.refused_down}, "
                f"held for a kill {self.held}; requests {sum(map(len, self.fetches.values()))}; "
                f"most in flight {self.server.most_in_flight}")


# -- the checks ------------------------------------------------------------------------------


def check(fleet: Fleet, kills: list[tuple[str, bool, float]]) -> None:
    print(fleet.summary(kills))
    watched = {i.story.key for i in fleet.items if i.story.watched}

    # Every item served is stored, each story is one story across its outlets.
    articles = fleet.cli("articles")
    stored = Counter(ident(a["url"]) for a in articles)
    served = {(urlsplit(i.url).hostname or "", i.story.key) for i in fleet.items}
    assert set(stored) == served, (served - set(stored), set(stored) - served)
    assert all(n == 1 for n in stored.values()), [k for k, n in stored.items() if n > 1]
    story_of: dict[str, set[object]] = defaultdict(set)
    for a in articles:
        story_of[ident(a["url"])[1]].add(a["story"])
    assert all(len(s) == 1 for s in story_of.values()), \
        {k: s for k, s in story_of.items() if len(s) > 1}
    raqib_story = {k: next(iter(s)) for k, s in story_of.items()}
    assert len(set(raqib_story.values())) == len(raqib_story), "distinct stories were merged"

    # Every expected alert is in the database, once per (rule, story), and nothing else.
    alerts = fleet.cli("alerts")
    ids = [a["id"] for a in alerts]
    assert len(ids) == len(set(ids))
    pairs = Counter((a["rule"]["id"], a["story"]["id"]) for a in alerts)
    assert all(n == 1 for n in pairs.values()), [p for p, n in pairs.items() if n > 1]
    keys = Counter(ident(a["article"]["url"])[1] for a in alerts)
    assert {a["rule"]["id"] for a in alerts} == {"asad"}
    assert set(keys) == watched, (watched - set(keys), set(keys) - watched)
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    assert all(str(a["story"]["id"]) == str(raqib_story[ident(a["article"]["url"])[1]])
               for a in alerts)

    # Delivered to both channels (at least once, by alert id), and nothing left in the outbox.
    assert set(fleet.file_ids()) == set(ids)
    assert fleet.hook_ids() == set(ids)
    with fleet.lock:
        assert all(payload["id"] == hid for hid, payload in fleet.hooks)
    assert fleet.bad_signatures == 0
    engine = create_engine(fleet.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT channel, status, count(*) FROM deliveries GROUP BY channel, status"
            )).all()
    finally:
        engine.dispose()
    assert sorted(tuple(r) for r in rows) == [("file", "sent", len(ids)),
                                              ("hook", "sent", len(ids))]

    # No feed fetched twice within its interval, by one worker or two, killed or not.
    with fleet.lock:
        fetches = {p: sorted(t) for p, t in fleet.fetches.items()}
    assert set(fetches) == {fleet.path(k) for k in range(fleet.feeds)}
    gaps = {p: min(b - a for a, b in pairwise(ts)) for p, ts in fetches.items() if len(ts) > 1}
    early = {p: round(g, 3) for p, g in gaps.items() if g < INTERVAL - TOLERANCE}
    print(f"shortest gap between two fetches of a feed: {min(gaps.values()):.3f}s")
    assert not early, f"fetched sooner than {INTERVAL}s after the previous fetch: {early}"
    # No publisher saw more than per_host requests at once from the whole fleet.
    assert fleet.server.most_in_flight <= PER_HOST

    # The killed instances are gone (after a lease), the live ones running.
    live = {i.proc.pid: i.worker for i in fleet.instances}
    dead = {i.proc.pid for i in fleet.killed}
    seen: list[dict[str, Any]] = []

    def states() -> bool:
        seen[:] = fleet.cli("workers")
        by_pid = {w["pid"]: w for w in seen}
        return (all(by_pid.get(p, {}).get("state") == "gone" for p in dead)
                and all(by_pid.get(p, {}).get("state") == "running" for p in live))

    assert wait_for(states, timeout=LEASE * 3 + 10), seen
    by_pid = {w["pid"]: w for w in seen}
    for pid, worker in live.items():
        w = by_pid[pid]
        assert w["id"] == worker
        assert set(w) >= {"id", "host", "pid", "version", "started", "last_beat", "state",
                          "heartbeat_age", "holds", "differs"}
        assert set(w["holds"]) == {"sources", "deliveries", "tasks"}
        assert isinstance(w["heartbeat_age"], float | int)


def run_fleet(fleet: Fleet, workers: int, kinds: list[str], rng: random.Random,
              settle: float) -> list[tuple[str, bool, float]]:
    """Start *workers*, kill the first one at each moment of *kinds* and start another in its
    place, then wait for the fleet to settle."""
    kills: list[tuple[str, bool, float]] = []
    for inst in [fleet.spawn() for _ in range(workers)]:
        fleet.ready(inst)
    for kind in kinds:
        time.sleep(rng.uniform(0.1, 1.0))
        victim = fleet.instances[0]
        fired = fleet.kill_at(kind, victim, timeout=8.0, rng=rng)
        kills.append((kind, fired, round(fleet.now(), 1)))
        time.sleep(rng.uniform(0.0, 0.5))
        newest = fleet.ready(fleet.spawn())
        fleet.instances.remove(newest)
        fleet.instances.insert(0, newest)   # the next victim
    engine = create_engine(fleet.db_url)
    try:
        ok = wait_for(lambda: fleet.settled(engine), timeout=settle)
    finally:
        engine.dispose()
    assert ok, fleet.summary(kills) + "\n" + "\n---\n".join(
        fleet.tail(i, 15) for i in fleet.instances)
    return kills


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_three_workers_survive_kill_9(tmp_path: Path, pg_url: str,
                                      http_server: Server) -> None:
    rng = random.Random(12)
    feeds = 50
    items = plan(rng, feeds, unique=2, wires=10, copies=4, span=(0.5, 36.0))
    fleet = Fleet(tmp_path, pg_url, http_server, items, feeds,
                  slow={3, 13, 23, 33, 43}, down=(16.0, 20.5))
    kinds = [*rng.sample(KINDS, 3), *rng.sample(KINDS, 3)]
    if kinds[-1] == "ingest":   # the last round may come after the last item
        kinds[-2:] = kinds[-1], kinds[-2]
    try:
        kills = run_fleet(fleet, 3, kinds, rng, settle=60)
        check(fleet, kills)
    finally:
        fleet.stop_all()


@pytest.mark.timeout(180)
def test_one_worker_on_sqlite_killed_and_restarted(tmp_path: Path, http_server: Server) -> None:
    rng = random.Random(7)
    feeds = 10
    items = plan(rng, feeds, unique=3, wires=3, copies=3, span=(0.5, 16.0))
    fleet = Fleet(tmp_path, f"sqlite:///{tmp_path / 'raqib.db'}", http_server, items, feeds,
                  slow={2, 7}, down=(7.0, 11.5))
    kinds = rng.sample(KINDS, 3)
    try:
        kills = run_fleet(fleet, 1, kinds, rng, settle=60)
        check(fleet, kills)
    finally:
        fleet.stop_all()
