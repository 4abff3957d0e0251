"""Throughput of several ``raqib run`` workers on one PostgreSQL database, through raqib's
command line alone, on the corpus of ``bench.ingest`` (imported from there, served by its HTTP
server, whose handler is wrapped here to count the requests for each feed).

Rows: 1, 2 and 4 ``raqib run`` processes started together on one database (created afresh for
every run and migrated with ``raqib db upgrade`` outside the timing). Every worker reads the
SAME configuration: every source, ``http.listen: 127.0.0.1:0`` (each worker its own free port),
``workers: {lease: 60s, heartbeat: 10s}``; the workers divide the sources between them through
their leases in the database. Each source has a 1-hour interval, so it is due exactly once in a
run: a feed the server saw requested twice was polled by two workers (or twice by one), which a
warning reports. ``fetch.per_host`` is set high enough for every worker's threads at once, since
one local server stands for forty publishers and per_host holds across the fleet.

A run is timed from starting the workers until ``SELECT count(*) FROM articles`` (asked every
50 ms on a connection opened beforehand) reaches the corpus' article count; then every worker
gets SIGTERM and is waited for. Each row reports articles/s, wall seconds, the workers' CPU
seconds (the children's resource usage, start-up and stop included), what the rest of the
machine used meanwhile (mostly the PostgreSQL server), and its throughput against the 1-worker
row, the median of ``--repeat`` runs run round-robin. A baseline row parses the same corpus
bytes with a plain ``feedparser.parse`` loop in this process, so that ratios can be read
against what the machine (2 shared cores) gives at the time.

    python -m bench workers [--repeat 3] [--raqib PATH] [--pg URL] [--workers 1,2,4]

The table is printed as markdown and written with every run to var/bench-workers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from bench.ingest import (
    RULES,
    Corpus,
    checkout_of,
    child_env,
    cpu_of,
    fresh_database,
    machine_busy,
    make_corpus,
    postgres_ok,
    raqib_cmd,
    read_logs,
    serve,
    write_config,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var/bench-workers.json"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_workers"
INTERVAL = "1h"          # every source is due once in a run
LEASE = {"lease": "60s", "heartbeat": "10s"}
RUN_TIMEOUT = 900        # seconds until every article is stored, or the run fails
STOP_TIMEOUT = 60        # seconds a worker gets to stop after SIGTERM before SIGKILL
POLL_EVERY = 0.05        # seconds between two counts of the stored articles


# -- the corpus server, counting -------------------------------------------------------------


class CountingServer:
    """bench.ingest's feed server, its handler wrapped to count GET requests by path (and note
    when the first and last came, from ``reset()``)."""

    def __init__(self, feeds: list[bytes]) -> None:
        self.server: ThreadingHTTPServer
        self.server, self.base = serve(feeds)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        owner = self
        parent: Any = self.server.RequestHandlerClass

        class Counting(parent):  # type: ignore[misc,valid-type]
            def do_GET(self) -> None:
                owner.hit(self.path)
                super().do_GET()

        # Read for each new connection: no request has come yet, so none is missed.
        self.server.RequestHandlerClass = Counting

    def hit(self, path: str) -> None:
        now = time.perf_counter() - self.started
        with self.lock:
            self.counts[path] += 1
            if self.first is None:
                self.first = now
            self.last = now

    def reset(self) -> None:
        with self.lock:
            self.counts = Counter()
            self.started = time.perf_counter()
            self.first = self.last = None

    def snapshot(self) -> tuple[dict[str, int], float | None, float | None]:
        with self.lock:
            return dict(self.counts), self.first, self.last

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- PostgreSQL ------------------------------------------------------------------------------


def conninfo_of(url: str) -> str:
    """The libpq conninfo of the bench database itself."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def counts_of(conninfo: str) -> dict[str, int]:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM articles), "
            "(SELECT count(DISTINCT story_id) FROM articles), "
            "(SELECT count(*) FROM alerts), (SELECT count(*) FROM workers), "
            "(SELECT count(*) FROM sources WHERE lease_holder IS NOT NULL)").fetchone()
    assert row is not None
    return dict(zip(("stored", "stories", "alerts", "workers_registered", "leases_left"),
                    (int(v) for v in row), strict=True))


# -- a run -----------------------------------------------------------------------------------


@dataclass
class Run:
    row: str                   # "1", "2", "4" workers, or "feedparser"
    repeat: int
    wall: float
    cpu: float                 # the workers' (or, for feedparser, this thread's)
    articles: int              # stored when the clock stopped (or parsed)
    rest_cpu: float | None = None      # everything else on the machine: PostgreSQL mostly
    server_cpu: float | None = None    # this process: the feed server and the counting loop
    exit_codes: list[int] = field(default_factory=list)
    stored: int | None = None          # after the workers stopped
    stories: int | None = None
    alerts: int | None = None
    workers_registered: int | None = None
    leases_left: int | None = None     # source leases still held after a warm stop
    fetches: dict[str, int] = field(default_factory=dict)   # requests by feed path
    first_fetch: float | None = None   # seconds from the start to the first request
    last_fetch: float | None = None
    polls_by_worker: list[int] = field(default_factory=list)   # "ingested" log events
    skipped_by_worker: list[int] = field(default_factory=list)
    log_levels: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    timed_out: bool = False
    load_before: float | None = None


def write_fleet_config(path: Path, *, database: str, rules: Path, base: str, corpus: Corpus,
                       threads: int, per_host: int) -> Path:
    """bench.ingest's configuration for every source, with the workers' keys."""
    write_config(path, database=database, rules=rules, base=base, corpus=corpus,
                 feeds=range(len(corpus.feeds)), threads=threads)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["fetch"] = {"concurrency": threads, "per_host": per_host}
    doc["http"] = {"listen": "127.0.0.1:0"}
    doc["workers"] = dict(LEASE)
    for source in doc["sources"]:
        source["interval"] = INTERVAL
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def stop(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """SIGTERM to every worker at once (a warm stop), SIGKILL to any still running after
    STOP_TIMEOUT; their exit codes."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return [p.returncode for p in procs]


def log_events(path: Path, event: str) -> int:
    n = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            if json.loads(line).get("event") == event:
                n += 1
        except (ValueError, AttributeError):
            continue
    return n


def wait_for(conn: Any, query: str, target: int, procs: list[subprocess.Popen[bytes]],
             timeout: float) -> tuple[int, bool]:
    """Ask *query* (a count) every POLL_EVERY seconds until it reaches *target*: the last
    count, and whether it gave up (timed out, or every worker has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(query).fetchone()
        value = int(row[0]) if row else 0
        if value >= target:
            return value, False
        if time.monotonic() > deadline or all(p.poll() is not None for p in procs):
            return value, True
        time.sleep(POLL_EVERY)


def run_fleet(n: int, repeat: int, *, raqib: str, pg: str, corpus: Corpus,
              server: CountingServer, rules: Path, work: Path, threads: int,
              per_host: int) -> Run:
    import psycopg  # noqa: PLC0415

    tag = f"w{n}-r{repeat}"
    fresh_database(pg)
    config = write_fleet_config(work / f"{tag}.yaml", database=pg, rules=rules,
                                base=server.base, corpus=corpus, threads=threads,
                                per_host=per_host)
    upgrade = raqib_cmd(raqib, config, "db", "upgrade", cwd=work)
    if upgrade.returncode != 0:
        raise SystemExit(f"raqib db upgrade failed ({n} workers): {upgrade.stderr.strip()}")
    logs = [work / f"{tag}-{k}.log" for k in range(n)]
    conninfo = conninfo_of(pg)
    load = os.getloadavg()[0]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        server.reset()
        busy = machine_busy()
        before = cpu_of(resource.RUSAGE_CHILDREN)
        ours = cpu_of(resource.RUSAGE_SELF)
        start = time.perf_counter()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for log in logs:
                with log.open("wb") as err:
                    procs.append(subprocess.Popen(  # noqa: S603 (our own binary and arguments)
                        [raqib, "--config", str(config), "--log-json", "run"], cwd=work,
                        env=child_env(), stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=err))
            stored, timed_out = wait_for(conn, "SELECT count(*) FROM articles",
                                         corpus.articles, procs, RUN_TIMEOUT)
            wall = time.perf_counter() - start
            # Untimed: a worker still starting up (no handlers yet) would die of SIGTERM
            # before registering; give each one the time to come up, then stop them all.
            wait_for(conn, "SELECT count(*) FROM workers", n, procs, STOP_TIMEOUT)
        finally:
            codes = stop(procs)
        cpu = cpu_of(resource.RUSAGE_CHILDREN) - before
        mine = cpu_of(resource.RUSAGE_SELF) - ours
        busy_after = machine_busy()
    fetches, first, last = server.snapshot()
    rest = (None if busy is None or busy_after is None
            else max(0.0, busy_after - busy - cpu - mine))
    levels, problems = read_logs(logs)
    run = Run(str(n), repeat, wall, cpu, stored, rest_cpu=rest, server_cpu=mine,
              exit_codes=codes, fetches=dict(sorted(fetches.items())), first_fetch=first,
              last_fetch=last, polls_by_worker=[log_events(p, "ingested") for p in logs],
              skipped_by_worker=[log_events(p, "source skipped: another worker is polling it")
                                 for p in logs],
              log_levels=levels, log_problems=problems, timed_out=timed_out,
              load_before=load)
    try:
        for key, value in counts_of(conninfo).items():
            setattr(run, key, value)
    except Exception as exc:   # report, and let the warnings say what is missing
        print(f"  warning: cannot count what {n} worker(s) stored: {exc}", file=sys.stderr)
    return run


def run_feedparser(repeat: int, corpus: Corpus) -> Run:
    """The same bytes through a plain feedparser loop: what one core does at the time."""
    import feedparser  # noqa: PLC0415

    cpu = time.thread_time()
    start = time.perf_counter()
    entries = sum(len(feedparser.parse(body).entries) for body in corpus.feeds)
    wall = time.perf_counter() - start
    return Run("feedparser", repeat, wall, time.thread_time() - cpu, entries)


# -- the report ------------------------------------------------------------------------------


def spread(values: list[int | None]) -> str:
    known = sorted(v for v in values if v is not None)
    if not known:
        return "?"
    return f"{known[0]}" if known[0] == known[-1] else f"{known[0]}–{known[-1]}"


def summarize(keys: list[str], runs: list[Run]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rates: dict[str, float] = {}
    for key in keys:
        mine = [r for r in runs if r.row == key]
        rates[key] = statistics.median(r.articles / r.wall for r in mine)
    one = rates.get("1")
    parse = rates.get("feedparser")
    for key in keys:
        mine = [r for r in runs if r.row == key]
        rests = [r.rest_cpu for r in mine if r.rest_cpu is not None]
        most = [max(r.fetches.values(), default=0) for r in mine if r.row != "feedparser"]
        out.append({
            "row": key, "workers": None if key == "feedparser" else int(key),
            "runs": len(mine), "articles_per_s": rates[key],
            "wall_s": statistics.median(r.wall for r in mine),
            "cpu_s": statistics.median(r.cpu for r in mine),
            "rest_cpu_s": statistics.median(rests) if rests else None,
            "vs_1_worker": rates[key] / one if one else None,
            "vs_feedparser": rates[key] / parse if parse else None,
            "first_fetch_s": statistics.median(
                [r.first_fetch for r in mine if r.first_fetch is not None] or [0.0]),
            "max_fetches_per_feed": max(most) if most else None,
            "polls_by_worker": [r.polls_by_worker for r in mine],
            "stored": spread([r.stored if key != "feedparser" else r.articles for r in mine]),
        })
    return out


def table(summary: list[dict[str, Any]], corpus: Corpus, repeat: int, threads: int) -> str:
    lines = [
        f"workers: {len(corpus.feeds)} feeds × {corpus.items} items = {corpus.articles} "
        f"articles, `raqib run` workers on one PostgreSQL database, fetch.concurrency "
        f"{threads} each, median of {repeat} run(s)",
        "",
        "| workers | articles/s | wall s | CPU s | other CPU s | vs 1 worker | vs feedparser "
        "| first fetch s | fetches per feed | polls by worker | stored |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for s in summary:
        def ratio(key: str, s: dict[str, Any] = s) -> str:
            return f"{s[key]:.2f}×" if s[key] else "-"
        other = f"{s['rest_cpu_s']:.2f}" if s["rest_cpu_s"] is not None else "-"
        if s["row"] == "feedparser":
            lines.append(
                f"| feedparser loop (baseline) | {s['articles_per_s']:.0f} "
                f"| {s['wall_s']:.2f} | {s['cpu_s']:.2f} | - | {ratio('vs_1_worker')} "
                f"| 1.00× | - | - | - | {s['stored']} |")
            continue
        polls = "; ".join("/".join(map(str, p)) for p in s["polls_by_worker"])
        most = s["max_fetches_per_feed"]
        fetched = "1" if most == 1 else f"up to {most}"
        lines.append(
            f"| {s['workers']} | {s['articles_per_s']:.0f} | {s['wall_s']:.2f} "
            f"| {s['cpu_s']:.2f} | {other} | {ratio('vs_1_worker')} | {ratio('vs_feedparser')} "
            f"| {s['first_fetch_s']:.2f} | {fetched} | {polls} | {s['stored']} |")
    return "\n".join(lines)


def warnings_of(runs: list[Run], corpus: Corpus) -> list[str]:
    out = []
    feeds = {f"/{i}.xml" for i in range(len(corpus.feeds))}
    for r in runs:
        if r.row == "feedparser":
            if r.articles != corpus.articles:
                out.append(f"feedparser run {r.repeat + 1}: parsed {r.articles} entries, "
                           f"expected {corpus.articles}")
            continue
        where = f"{r.row} worker(s) run {r.repeat + 1}"
        if r.timed_out:
            out.append(f"{where}: only {r.articles} of {corpus.articles} articles stored when "
                       "the workers had exited or the run timed out")
        if any(r.exit_codes):
            out.append(f"{where}: raqib run exited {r.exit_codes} after SIGTERM"
                       + (" (-15: killed by it before installing its handlers)"
                          if -signal.SIGTERM in r.exit_codes else ""))
        if r.stored is not None and r.stored != corpus.articles:
            out.append(f"{where}: stored {r.stored} articles, expected {corpus.articles}")
        twice = {p: c for p, c in r.fetches.items() if c > 1}
        if twice:
            out.append(f"{where}: {len(twice)} of {len(feeds)} feeds fetched more than once "
                       f"(up to {max(twice.values())} times): the leases should prevent it")
        never = feeds - set(r.fetches)
        if never:
            out.append(f"{where}: {len(never)} feeds never fetched")
        if r.workers_registered is not None and r.workers_registered != int(r.row):
            out.append(f"{where}: {r.workers_registered} workers registered, expected {r.row}")
        if r.leases_left:
            out.append(f"{where}: {r.leases_left} source leases still held after SIGTERM")
        out.extend(f"{where}: log {p}" for p in r.log_problems)
    # The PostgreSQL server's CPU is in "other CPU s" too, so the load as each run starts
    # (this benchmark runs nothing between runs but the database's upgrade) tells other work.
    loaded = [r for r in runs if r.load_before is not None and r.load_before > 1.5]
    if loaded:
        worst = max(r.load_before or 0.0 for r in loaded)
        out.append(f"other load on the machine: the 1-minute load average was over 1.5 before "
                   f"{len(loaded)} of {sum(r.row != 'feedparser' for r in runs)} runs (up to "
                   f"{worst:.1f}); wall times are noisy, the feedparser row shows by how much")
    return out


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench workers",
                                description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=int(os.environ.get("RAQIB_BENCH_REPEAT", "3")),
                   help="runs per row; the row shows their median (default 3)")
    p.add_argument("--raqib", default=os.environ.get("RAQIB_BENCH_RAQIB",
                                                     str(ROOT / ".venv/bin/raqib")),
                   help="the raqib console script to drive (default this checkout's .venv)")
    p.add_argument("--pg", default=os.environ.get("RAQIB_BENCH_PG_WORKERS", DEFAULT_PG),
                   help="PostgreSQL database to create afresh for each run "
                        f"(dropped afterwards; default {DEFAULT_PG})")
    p.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    p.add_argument("--threads", type=int, default=1,
                   help="fetch.concurrency of each worker (default 1)")
    p.add_argument("--feeds", type=int, default=40)
    p.add_argument("--items", type=int, default=50, help="items per feed")
    p.add_argument("--out", type=Path, default=OUT, help=f"the JSON results (default {OUT})")
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = p.parse_args(argv)
    try:
        args.counts = sorted({int(n) for n in args.workers.split(",")})
    except ValueError:
        p.error("--workers: comma-separated numbers, e.g. 1,2,4")
    if args.repeat < 1 or args.feeds < 2 or args.items < 1 or args.threads < 1 \
            or min(args.counts) < 1:
        p.error("--repeat, --items, --threads and --workers must be at least 1, "
                "--feeds at least 2")
    if not re.fullmatch(r"postgresql(\+psycopg)?://.*", args.pg):
        p.error("--pg: a postgresql+psycopg:// URL")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raqib = str(Path(args.raqib).expanduser().absolute())
    if not os.access(raqib, os.X_OK):
        raise SystemExit(f"no raqib console script at {raqib}")
    why = postgres_ok(args.pg)
    if why is not None:
        print(f"\nworkers: skipped, PostgreSQL does not answer at {args.pg}: {why}")
        return
    corpus = make_corpus(args.feeds, args.items)
    # One local server stands for every publisher and per_host holds across the fleet: enough
    # slots for every thread of the largest fleet, the same in every row.
    per_host = min(64, max(args.counts) * args.threads)
    provenance = checkout_of(raqib)
    print(f"\nworkers: raqib at {provenance.get('package', raqib)} "
          f"(commit {provenance.get('commit', '?')}"
          f"{', worker/ modified' if provenance.get('worker_dirty') else ''}); "
          f"{corpus.articles} articles in {len(corpus.feeds)} feeds, "
          f"{', '.join(map(str, args.counts))} worker(s) × {args.threads} thread(s)")
    keys = ["feedparser", *map(str, args.counts)]
    server = CountingServer(corpus.feeds)
    runs: list[Run] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="raqib-bench-workers-") as tmp:
            work = Path(tmp)
            rules = work / "rules.yaml"
            rules.write_text(yaml.safe_dump(RULES, allow_unicode=True, sort_keys=False),
                             encoding="utf-8")
            for repeat in range(args.repeat):      # round-robin: drift hits every row alike
                run = run_feedparser(repeat, corpus)
                runs.append(run)
                print(f"  feedparser   run {repeat + 1}: {run.wall:6.2f} s, "
                      f"{run.articles / run.wall:.0f} articles/s", flush=True)
                for n in args.counts:
                    run = run_fleet(n, repeat, raqib=raqib, pg=args.pg, corpus=corpus,
                                    server=server, rules=rules, work=work,
                                    threads=args.threads, per_host=per_host)
                    runs.append(run)
                    most = max(run.fetches.values(), default=0)
                    print(f"  {n} worker(s)  run {repeat + 1}: {run.wall:6.2f} s wall, "
                          f"{run.cpu:6.2f} s CPU, {run.articles} stored, "
                          f"{len(run.fetches)} feeds fetched (most {most}×), polls by worker "
                          f"{run.polls_by_worker}, first fetch at {run.first_fetch or 0:.2f} s, "
                          f"exit {run.exit_codes}; rest of the machine "
                          f"{run.rest_cpu if run.rest_cpu is not None else float('nan'):.2f} "
                          f"CPU s, load {run.load_before:.2f} before", flush=True)
    finally:
        server.shutdown()
        fresh_database(args.pg, drop_only=True)
    after = checkout_of(raqib)
    summary = summarize(keys, runs)
    text = table(summary, corpus, args.repeat, args.threads)
    problems = warnings_of(runs, corpus)
    if after.get("source_sha256") != provenance.get("source_sha256"):
        problems.insert(0, "the raqib code changed during the run: results mix two versions")
    print()
    print(text)
    for w in problems:
        print(f"  warning: {w}")
    took = time.perf_counter() - started
    print(f"  ({took:.0f} s in all)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "workers", "checkout": provenance, "feeds": len(corpus.feeds),
        "items_per_feed": corpus.items, "articles": corpus.articles,
        "threads_per_worker": args.threads, "per_host": per_host, "interval": INTERVAL,
        "workers_config": LEASE, "repeat": args.repeat, "seconds": took, "rows": summary,
        "runs": [asdict(r) for r in runs], "warnings": problems, "markdown": text,
    }, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"  results in {args.out}")
    if args.markdown:
        args.markdown.write_text(text + "\n" + "".join(f"\nwarning: {w}" for w in problems)
                                 + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
