"""Polling 1,000 local feeds: a first pass (everything new) and a second pass where every feed
answers 304 Not Modified. Feeds/s, articles/s and peak memory for raqib's whole pipeline
(fetch, parse, dedupe, match, store), beside a plain loop of httpx.get + feedparser.parse over
the same server in the same run. Each scenario runs in its own process, so peak memory is its
own."""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import resource
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
FEEDS = int(os.environ.get("RAQIB_BENCH_FEEDS", "1000"))


def make_feeds() -> list[bytes]:
    """1,000 feeds made from the real feeds of tests/data, each item made unique."""
    sources = [p.read_bytes().decode("utf-8", "replace")
               for p in sorted((ROOT / "tests/data/feeds").glob("*.xml"))
               if p.stat().st_size > 5000]
    out = []
    for i in range(FEEDS):
        text = sources[i % len(sources)]
        rng = random.Random(i)

        def shuffled(m: re.Match[str], rng: random.Random = rng) -> str:
            words = m.group(2).split()
            rng.shuffle(words)
            return f"{m.group(1)}{' '.join(words)}{m.group(3)}"

        # Every item a new article, and a different story: words shuffled per feed (copies of
        # one story across a thousand feeds would be a flood, not a polling benchmark).
        # every text of 20 characters or more, between tags or inside CDATA
        text = re.sub(r"(>|<!\[CDATA\[)([^<\]]{20,})(<|\]\]>)", shuffled, text)
        text = text.replace("<title>", f"<title>[{i}] ")
        text = re.sub(r"<guid([^>]*)>", rf"<guid\1>{i}-", text)
        text = text.replace("<link>", f"<link>https://feed{i}.example/")
        out.append(text.encode("utf-8"))
    return out


def serve(feeds: list[bytes]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            i = int(self.path.strip("/").split(".")[0])
            etag = f'"{i}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = feeds[i]
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def plain(base: str, out: Any) -> None:
    """The baseline: one client, feeds one after another, conditional on the second pass."""
    etags: dict[int, str] = {}
    results = []
    with httpx.Client() as client:
        for _ in range(2):
            start, items = time.perf_counter(), 0
            for i in range(FEEDS):
                headers = {"If-None-Match": etags[i]} if i in etags else {}
                r = client.get(f"{base}/{i}.xml", headers=headers)
                etags[i] = r.headers.get("etag", "")
                if r.status_code == 200:
                    items += len(feedparser.parse(r.content).entries)
            results.append((time.perf_counter() - start, items))
    out.put((results, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def pipeline(base: str, out: Any) -> None:
    from worker import config, logs  # noqa: PLC0415 (imported in the child process)
    from worker.db import Database  # noqa: PLC0415
    from worker.pipeline import Pipeline  # noqa: PLC0415

    logs.configure(json=True, level="warning")   # as a daemon logs: no line per article
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raqib.yaml"
        path.write_text(yaml.safe_dump({
            "database": f"sqlite:///{tmp}/raqib.db",
            "rules": [str(ROOT / "config/entities"), str(ROOT / "config/rules")],
            "fetch": {"per_host": 16},   # one local server stands for a thousand hosts
            "sources": [{"name": f"f{i}", "url": f"{base}/{i}.xml"} for i in range(FEEDS)],
        }))
        cfg = config.load_config(str(path), env={})
        db = Database(cfg.main.database)
        db.migrate()
        p = Pipeline(cfg, db)
        p.sync_sources()
        results = []
        for _ in range(2):
            start = time.perf_counter()
            report = p.run_once()
            results.append((time.perf_counter() - start, report.new))
        p.close()
    out.put((results, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def run(target: Any, base: str) -> tuple[list[tuple[float, int]], int]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(base, queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join()
    return result  # type: ignore[no-any-return]


def main() -> None:
    feeds = make_feeds()
    server, base = serve(feeds)
    size = sum(map(len, feeds)) / len(feeds) / 1000
    print(f"\npolling: {FEEDS} local feeds of {size:.0f} KB on average")
    try:
        rows = [("plain httpx + feedparser loop", run(plain, base)),
                ("raqib once (whole pipeline)", run(pipeline, base))]
    finally:
        server.shutdown()
    print(f"  {'':32} {'pass':>6} {'seconds':>8} {'feeds/s':>8} {'articles/s':>10} "
          f"{'peak MB':>8}")
    base_first = None
    for label, (results, peak_kb) in rows:
        for n, (seconds, items) in enumerate(results):
            name = "first" if n == 0 else "304"
            print(f"  {label:32} {name:>6} {seconds:>8.2f} {FEEDS / seconds:>8.0f} "
                  f"{items / seconds:>10.0f} {peak_kb / 1024:>8.0f}")
        base_first = base_first or results[0][0]
    ours = rows[1][1][0]
    plain_res = rows[0][1][0]
    print(f"  raqib / plain time: first pass {ours[0][0] / plain_res[0][0]:.2f}x, "
          f"304 pass {ours[1][0] / plain_res[1][0]:.2f}x")
