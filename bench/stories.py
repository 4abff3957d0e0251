"""Stories: the cost of placing a new article in its story with 10,000, 100,000 and 1,000,000
articles already stored (synthetic rows with real signatures' shape), and precision and recall
of the grouping on a labelled set of near-duplicate and distinct pairs (Arabic and English),
against a baseline in the same run: the same ingest with story grouping's look-up over an empty
index."""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import feedparser

from worker.db import Database
from worker.dedupe import prepare
from worker.domain import Article
from worker.ingestor import Ingestor, RuleHit
from worker.schema import Article as ArticleRow
from worker.schema import Story, StoryIndex
from worker.stories import BANDS, signature

ROOT = Path(__file__).resolve().parent.parent
SIZES = (0, 10_000, 100_000, 1_000_000)
PROBES = 300


def texts() -> list[str]:
    out = []
    for path in sorted((ROOT / "tests/data/feeds").glob("*.xml")):
        for e in feedparser.parse(path.read_bytes()).entries:
            text = f"{e.get('title', '')} {e.get('summary', '')}"
            if len(text.split()) > 40:
                out.append(text)
    seed = next((ROOT / "seeds").glob("*.txt")).read_text(encoding="utf-8")
    out += [p for p in seed.split("\n") if len(p.split()) > 25]
    return out


def edit(text: str, share: float, rng: random.Random) -> str:
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, int(len(words) * share))):
        words[i] = rng.choice(["said", "reportedly", "the", "قال", "في", "today"])
    return " ".join(words)


def quality(corpus: list[str]) -> tuple[float, float, int, int]:
    rng = random.Random(3)
    pairs = []
    for t in corpus:
        pairs.append((t, edit(t, rng.choice([0.01, 0.03, 0.05, 0.08]), rng), True))
        pairs.append((t, "UPDATE 1-" + t + " " + " ".join(t.split()[:12]), True))
    for _ in range(len(corpus) * 2):
        a, b = rng.sample(corpus, 2)
        pairs.append((a, b, False))
    tp = fp = fn = 0
    for a, b, same in pairs:
        got = signature(Article("x", "", body=a)).joins(signature(Article("y", "", body=b)))
        tp += got and same
        fp += got and not same
        fn += same and not got
    return tp / max(1, tp + fp), tp / max(1, tp + fn), sum(p[2] for p in pairs), \
        sum(not p[2] for p in pairs)


def fill(db: Database, n: int, rng: random.Random) -> int:
    """*n* stored articles, one story each, with random bands, in bulk; returns the source
    id."""
    sid = db.sources.sync([("bench", "file:///bench", "feed")], datetime.now(UTC))["bench"]
    now = datetime.now(UTC)
    batch = 20_000
    with db.units.unit("fill the bench database") as uow:
        conn = uow.conn
        for start in range(0, n, batch):
            count = min(batch, n - start)
            conn.execute(Story.__table__.insert(), [
                {"id": start + i + 1, "title": "t", "created_at": now} for i in range(count)])
            conn.execute(ArticleRow.__table__.insert(), [
                {"id": start + i + 1, "source_id": sid, "story_id": start + i + 1,
                 "content_hash": f"{start + i:032x}", "version": 1, "title": "t",
                 "summary": "", "body": "", "fetched_at": now, "signature": rng.randbytes(516)}
                for i in range(count)])
            conn.execute(StoryIndex.__table__.insert(), [
                {"band": rng.getrandbits(63), "story_id": start + i + 1,
                 "article_id": start + i + 1, "at": now}
                for i in range(count) for _ in range(BANDS)])
    return sid


def per_article(db: Database, sid: int, corpus: list[str]) -> float:
    rng = random.Random(9)
    batch = [prepare(Article("bench", f"probe {i}", body=edit(rng.choice(corpus), 0.3, rng),
                             url=f"https://probe.example/{i}-{rng.random()}"))
             for i in range(PROBES)]

    def no_alerts(articles: list[Article]) -> list[list[RuleHit]]:
        return [[] for _ in articles]

    ingestor = Ingestor(db)
    start = time.perf_counter()
    for i in range(0, len(batch), 30):   # feeds of 30 items
        ingestor.ingest(sid, batch[i:i + 30], no_alerts)
    return (time.perf_counter() - start) / len(batch) * 1e6


def main() -> None:
    corpus = texts()
    precision, recall, dup, distinct = quality(corpus)
    print(f"\nstories: grouping quality on {dup} near-duplicate and {distinct} distinct pairs "
          f"(Arabic and English): precision {precision:.3f}, recall {recall:.3f}")
    print(f"  {'stored articles':>16}  {'µs per new article (ingest)':>28}  {'vs empty':>8}")
    base = None
    for n in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{tmp}/bench.db")
            db.migrate()
            sid = fill(db, n, random.Random(n))
            us = per_article(db, sid, corpus)
            base = base or us
            print(f"  {n:>16,}  {us:>28.0f}  {us / base:>7.2f}x")
            db.close()
