"""Matching throughput on 2 KB bilingual articles with 10 to 100,000 rules.

The rules are the shipped Iraq rules and entity packs plus generated rules of every construct
(phrases, prefixes, entities, any/all/none, near, at_least, field) over a large vocabulary of
names, as a big watch list looks: most rules concern names an article rarely holds. A second
series draws 1% of the generated terms from the articles' own words, so hits grow with the rule
count. The figure that matters is the ratio of the per-article cost with 100,000 rules to the
cost with 10, measured in the same run.
"""

from __future__ import annotations

import gc
import random
import statistics
import tempfile
import time
from pathlib import Path

from worker.config import load_rules, paused_gc
from worker.items import Article
from worker.rules import RuleSet, compile_rules

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10, 1_000, 10_000, 100_000)
ARTICLES = 200
ROUNDS = 5
# Syllables that make names no real text holds, in Latin and Arabic script (no Arabic name
# starts with a letter that could be a proclitic, or it would also match shorter words).
LATIN = ["zor", "vak", "quel", "thry", "xan", "dral", "myx", "kelv", "yss", "brun", "gorth",
         "phel", "ozz", "trax", "welk", "jund"]
ARABIC = ["ظر", "ضغ", "ثذ", "غظ", "ذض", "صث", "طغ", "خظ", "ظث", "ضذ"]


def corpus(rng: random.Random) -> tuple[list[Article], list[str]]:
    """About 2 KB articles mixing sentences of the Arabic seed and of English feed items."""
    seed = next((ROOT / "seeds").glob("*.txt")).read_text(encoding="utf-8")
    arabic = [s.strip() for s in seed.replace("\n", ".").split(".") if len(s.strip()) > 30]
    english = []
    import feedparser  # noqa: PLC0415 (only the benchmark reads feeds this way)

    for path in sorted((ROOT / "tests/data/feeds").glob("*.xml")):
        for e in feedparser.parse(path.read_bytes()).entries:
            english += [t for t in (e.get("title", ""), e.get("summary", "")) if len(t) > 30]
    articles = []
    for _ in range(ARTICLES):
        parts: list[str] = []
        while sum(len(p) for p in parts) < 2000:
            parts.append(rng.choice(arabic if rng.random() < 0.5 else english))
        articles.append(Article(source="bench", title=parts[0][:120], summary=parts[1][:300],
                                body=" ".join(parts[2:]), language="ar"))
    words = sorted({w for a in articles for w in a.body.split() if len(w) > 3 and w.isalpha()})
    return articles, words


def name(rng: random.Random) -> str:
    syllables = ARABIC if rng.random() < 0.4 else LATIN
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))


def rule_yaml(i: int, rng: random.Random, words: list[str], hit_share: float) -> str:
    def term() -> str:
        if rng.random() < hit_share:
            return rng.choice(words).replace('"', "")
        return name(rng) if rng.random() < 0.6 else f"{name(rng)} {name(rng)}"

    kind = i % 7
    if kind == 0:
        match = f'"{term()}"'
    elif kind == 1:
        match = f'{{any: ["{term()}", "{name(rng)}*", "@e{i % 500}"]}}'
    elif kind == 2:
        match = f'{{all: ["{term()}", {{any: ["{term()}", "{term()}"]}}], none: ["{term()}"]}}'
    elif kind == 3:
        match = f'{{near: ["{term()}", "{term()}"], within: 5}}'
    elif kind == 4:
        match = f'{{at_least: 2, of: ["{term()}", "{term()}", "{term()}"]}}'
    elif kind == 5:
        match = f'{{field: title, match: "{term()}"}}'
    else:
        match = f'{{all: ["{term()}", {{not: "{term()}"}}]}}'
    return f"  - id: gen-{i}\n    match: {match}\n"


def build(n: int, words: list[str], hit_share: float, folder: Path) -> tuple[RuleSet, float]:
    """The shipped rules plus generated ones up to *n* rules; returns the set and the seconds
    spent loading and compiling it."""
    rng = random.Random(n)
    shipped = [str(ROOT / "config/entities"), str(ROOT / "config/rules")]
    path = folder / f"gen-{n}-{hit_share}.yaml"
    entities = "".join(f"  e{k}:\n    names: [\"{name(rng)} {name(rng)}\", \"{name(rng)}\"]\n"
                       for k in range(500))
    loaded, _ = load_rules(shipped)
    generated = max(0, n - len(loaded.rules))
    path.write_text("entities:\n" + entities + "rules:\n" + "".join(
        rule_yaml(i, rng, words, hit_share) for i in range(generated)), encoding="utf-8")
    start = time.perf_counter()
    with paused_gc():   # as load_config does
        loaded, problems = load_rules([*shipped, str(path)])
        ruleset, found = compile_rules(loaded)
    elapsed = time.perf_counter() - start
    assert not problems and not found, (problems + found)[:3]
    return ruleset, elapsed


def per_article(ruleset: RuleSet, articles: list[Article]) -> float:
    """Median over rounds of the mean matching time per article, in microseconds."""
    for a in articles[:20]:
        ruleset.match(a)   # warm the token cache, as a running daemon has it
    times = []
    for _ in range(ROUNDS):
        gc.collect()
        start = time.perf_counter()
        for a in articles:
            ruleset.match(a)
        times.append((time.perf_counter() - start) / len(articles) * 1e6)
    return statistics.median(times)


def main() -> None:
    rng = random.Random(7)
    articles, words = corpus(rng)
    size = statistics.mean(len(a.title) + len(a.summary) + len(a.body) for a in articles)
    print(f"matching: {len(articles)} articles of {size / 1000:.1f} KB (Arabic and English)")
    with tempfile.TemporaryDirectory() as tmp:
        for label, share in (("names a watch list holds", 0.0),
                             ("1% of terms from the articles' own words", 0.01)):
            print(f"\n  rules: shipped + generated, {label}")
            print(f"  {'rules':>8}  {'load+compile':>12}  {'µs/article':>10}  "
                  f"{'articles/s':>10}  {'vs 10 rules':>11}")
            base = None
            for n in SIZES:
                ruleset, load_s = build(n, words, share, Path(tmp))
                us = per_article(ruleset, articles)
                base = base or us
                print(f"  {len(ruleset):>8}  {load_s:>11.2f}s  {us:>10.0f}  {1e6 / us:>10.0f}  "
                      f"{us / base:>10.2f}x")
                del ruleset
                gc.collect()
