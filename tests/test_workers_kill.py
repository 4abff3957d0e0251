"""A fleet under kill -9: several `raqib run` processes on one database, feeds whose items arrive
while they run, a webhook receiver that is down for a while, and workers killed at random
moments and restarted. When the fleet settles, every alert is there once and delivered, and no
feed was fetched twice within its interval."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from conftest import Response, Server, wait_for, write

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RAQIB = [sys.executable, "-m", "worker"]
INTERVAL = 3.0     # seconds between polls of a feed
STEP = 2.0         # a feed gains an item this often
ITEMS = 4          # items per feed (the first is a wire story every feed carries)
SLOW = 0.4         # seconds some feeds take to answer (so kills land mid-fetch)


def words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou")
                            for _ in range(3)) for _ in range(n))


class Fleet:
    """Feeds, a webhook receiver and the worker processes of one test."""

    def __init__(self, tmp: Path, server: Server, database: str, feeds: int) -> None:
        self.tmp, self.server, self.feeds = tmp, server, feeds
        self.started = time.monotonic()
        self.fetches: dict[str, list[float]] = defaultdict(list)
        self.hooked: Counter[str] = Counter()
        self.hook_up = threading.Event()
        self.lock = threading.Lock()
        rng = random.Random(12)
        wire = words(rng, 60)
        self.items = {k: [("Ain al-Asad wire report", wire)] +
                      [(f"Ain al-Asad report {k}-{j}", words(rng, 60)) for j in range(1, ITEMS)]
                      for k in range(feeds)}
        for k in range(feeds):
            server.routes[f"/f{k}.xml"] = self._feed(k)
        server.routes["/hook"] = self._hook
        write(tmp / "rules/r.yaml", "rules:\n  - id: asad\n    match: Ain al-Asad\n")
        sources = "".join(f"  - {{name: f{k}, url: '{server.url(f'/f{k}.xml')}', "
                          f"interval: {INTERVAL}s}}\n" for k in range(feeds))
        self.config = write(tmp / "raqib.yaml", (
            f"database: '{database}'\nrules: [{tmp}/rules]\nsources:\n{sources}"
            "fetch: {concurrency: 8, per_host: 8}\n"
            "workers: {lease: 3s, heartbeat: 1s}\n"
            "http: {listen: '127.0.0.1:0'}\n"
            f"channels:\n  log: {{type: file, path: '{tmp}/alerts.jsonl'}}\n"
            f"  hook: {{type: webhook, url: '{server.url('/hook')}', secret: '{SECRET}', "
            "timeout: 2s}\n"
            "defaults: {notify: [log, hook]}\n"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def _feed(self, k: int) -> Any:
        def answer(_handler: Any) -> Response:
            now = time.monotonic()
            with self.lock:
                self.fetches[f"f{k}"].append(now)
            if k % 10 == 0:
                time.sleep(SLOW)
            shown = min(ITEMS, 1 + int((now - self.started) / STEP))
            items = "".join(
                f"<item><title>{t}</title><link>https://news.example/{k}/{j}</link>"
                f"<guid>{k}-{j}</guid><description>{body}</description></item>"
                for j, (t, body) in enumerate(self.items[k][:shown]))
            return Response(200, f"<rss version='2.0'><channel><title>f{k}</title>{items}"
                                 "</channel></rss>".encode())
        return answer

    def _hook(self, handler: Any) -> Response:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            Webhook(SECRET).verify(handler.body, headers)
        except Exception:
            return Response(400, b"bad signature")
        if not self.hook_up.is_set():
            return Response(503, b"down")
        time.sleep(0.05)   # a receiver that takes a moment: kills land mid-delivery too
        with self.lock:
            self.hooked[json.loads(handler.body)["id"]] += 1
        return Response(204)

    def start(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "RAQIB_CONFIG"}
        with (self.tmp / f"w{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen([*RAQIB, "--config", str(self.config), "--log-level",
                                     "warning", "run"], stdout=subprocess.DEVNULL, stderr=log,
                                    env=env)
        self.procs.append(proc)
        return proc

    def raqib(self, *args: str) -> Any:
        out = subprocess.run([*RAQIB, "--config", str(self.config), *args], check=True,
                             capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    def expected_alerts(self) -> int:
        return 1 + self.feeds * (ITEMS - 1)   # the wire story once, every other item once

    def settle_and_check(self, *, killed: int) -> None:
        assert wait_for(lambda: time.monotonic() - self.started > ITEMS * STEP + INTERVAL,
                        timeout=60)
        self.hook_up.set()

        def settled() -> bool:
            alerts = self.raqib("alerts", "--json")
            sent = all(d["status"] == "sent" for a in alerts for d in a.get("deliveries", []))
            return len(alerts) >= self.expected_alerts() and sent and \
                set(self.hooked) >= {a["id"] for a in alerts}

        assert wait_for(settled, timeout=120), self.logs()
        alerts = self.raqib("alerts", "--json")
        ids = {a["id"] for a in alerts}
        # One alert per (rule, story): the wire story from every feed alerted once.
        per_story = Counter((a["rule"]["id"], a["story"]["id"]) for a in alerts)
        assert set(per_story.values()) == {1}
        assert len(alerts) == self.expected_alerts()
        # Delivered to both channels, nothing lost; the file has each alert at least once.
        lines = [json.loads(x) for x in (self.tmp / "alerts.jsonl").read_text().splitlines()]
        assert {x["id"] for x in lines} == ids
        assert set(self.hooked) == ids
        # No feed fetched twice within its interval, whichever worker fetched it.
        for name, times in self.fetches.items():
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert all(g >= INTERVAL - 0.05 for g in gaps), (name, gaps)
        # The register: the killed workers are gone (those killed before they registered are
        # not in it), the live ones running.
        workers = self.raqib("workers", "--json")
        states = Counter(w["state"] for w in workers)
        assert 1 <= states["gone"] <= killed, workers
        live = sum(1 for p in self.procs if p.poll() is None)
        assert states["running"] == live, workers

    def logs(self) -> str:
        return "\n".join((self.tmp / f"w{i}.log").read_text(errors="replace")[-3000:]
                         for i in range(len(self.procs)))


def kill_and_restart(fleet: Fleet, rng: random.Random, rounds: int, workers: int) -> None:
    for _ in range(rounds):
        time.sleep(rng.uniform(0.3, 1.5))   # a random moment: fetching, ingesting, sending
        live = [p for p in fleet.procs if p.poll() is None]
        victim = rng.choice(live)
        if rng.random() < 0.5:   # some after they are well under way
            time.sleep(2.0)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        fleet.start()
    assert sum(1 for p in fleet.procs if p.poll() is None) == workers


@pytest.mark.postgres
def test_three_workers_survive_kill_9(tmp_path: Path, http_server: Server,
                                      pg_url: str) -> None:
    fleet = Fleet(tmp_path, http_server, pg_url, feeds=50)
    subprocess.run([*RAQIB, "--config", str(fleet.config), "db", "upgrade"], check=True,
                   capture_output=True)
    try:
        for _ in range(3):
            fleet.start()
        kill_and_restart(fleet, random.Random(7), rounds=4, workers=3)
        time.sleep(4)   # the killed workers' heartbeats are older than a lease
        fleet.settle_and_check(killed=4)
    finally:
        fleet.stop_all()
    # A clean stop gives every lease back.
    assert all(not w["holds"]["sources"] and not w["holds"]["tasks"]
               for w in fleet.raqib("workers", "--json"))


def test_one_worker_on_sqlite_killed_and_restarted(tmp_path: Path,
                                                   http_server: Server) -> None:
    fleet = Fleet(tmp_path, http_server, f"sqlite:///{tmp_path}/raqib.db", feeds=10)
    try:
        fleet.start()
        kill_and_restart(fleet, random.Random(3), rounds=2, workers=1)
        time.sleep(4)
        fleet.settle_and_check(killed=2)
    finally:
        fleet.stop_all()
