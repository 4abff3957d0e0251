"""Ingest throughput through raqib's command line alone (``raqib once``), so the same benchmark
drives any checkout whose CLI and configuration keep their contract.

A corpus of local RSS feeds (default 40 feeds × 50 items, half Arabic, half English, ~1-2 KB of
text an item) is served by a threaded HTTP server on 127.0.0.1. Every item is a distinct story,
except that a fifth of them carry a wire passage that 5 feeds of the same language share, so
story grouping has copies to join; about one item in ten names Ain al-Asad / عين الأسد or
Erbil / أربيل, which the benchmark's 10 rules look for.

Rows: one ``raqib once`` with ``fetch.concurrency`` N = 1, 2, 4 (the threads that poll and
ingest side by side in one process), on SQLite and on PostgreSQL, a fresh database for every
run (migrated beforehand with ``raqib db upgrade``, outside the timing); and 2 ``raqib once``
processes started together on one PostgreSQL database, each with half of the sources, timed
until both have finished. Each row reports articles/s, wall and CPU seconds (the children's
resource usage) and its throughput against the 1-thread row of the same backend, the median of
``--repeat`` runs (run round-robin across the rows). Every run's stored articles are counted
(``raqib articles --json``) and a warning printed when any is missing.

    python -m bench ingest [--repeat 3] [--raqib PATH] [--pg URL] [--no-postgres]

The table is printed as markdown and written with every run to var/bench-ingest.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var/bench-ingest.json"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_ingest"
SEED = 20261128
WIRE_SHARE = 0.2       # items carrying a shared wire passage
WIRE_COPIES = 5        # feeds that carry each wire story
MATCH_SHARE = 0.1      # items naming one of the watched places
RUN_TIMEOUT = 900      # seconds: a hung run fails the benchmark instead of hanging it

# Word pools: the words of a few plain news paragraphs, drawn with their frequencies, so text
# reads as each language to the detector while every sentence (and every 3-word shingle) is new.
# Embedded here, not read from tests/ or seeds/, so the corpus stays the same across checkouts.
ENGLISH = """
The ministry said in a statement on Sunday that the new budget would be presented to parliament
next week after months of negotiations between the main political blocs. Officials expect the
debate to focus on public sector salaries, electricity imports and the cost of repairing roads
and bridges in the northern provinces. Farmers in the south have complained for weeks about water
shortages, saying that the river level has fallen to its lowest point in decades and that many
fields were left unplanted this season. The governor told reporters that emergency pumps had been
sent to several villages and that a committee would study longer term solutions with engineers
from the water resources ministry. In the capital, traffic police announced that several main
streets would be closed on Thursday for the opening of a new bridge over the river. Shop owners
said the construction had hurt their business for almost two years and welcomed the end of the
work. The central bank kept its main interest rate unchanged and said inflation had eased
slightly in recent months as food prices stabilised. Analysts said the currency had been steady
on the parallel market since the start of the year, although importers still face delays at the
border crossings. A delegation of business leaders arrived on Monday for talks on trade, energy
and investment in housing projects, according to the chamber of commerce. The visitors are
expected to meet the prime minister and several ministers before travelling to the port city of
Basra, where a new container terminal is under construction. Health officials reported a rise in
cases of seasonal influenza and urged families to vaccinate children and older relatives.
Hospitals in several provinces said they had enough medicine for now but warned that supplies
could run short if the number of patients kept growing. Schools will reopen after the holiday on
the first of the month, the education ministry said, adding that thousands of new teachers had
been hired. Students in the final year will sit their exams in June, and the results will be
published online for the first time.
"""
ARABIC = """
قالت الوزارة في بيان يوم الأحد إن مشروع الموازنة الجديدة سيقدم إلى البرلمان الأسبوع المقبل بعد
أشهر من المفاوضات بين الكتل السياسية الرئيسية. ويتوقع المسؤولون أن يتركز النقاش على رواتب موظفي
القطاع العام واستيراد الكهرباء وكلفة إصلاح الطرق والجسور في المحافظات الشمالية. واشتكى المزارعون
في الجنوب منذ أسابيع من شح المياه، مؤكدين أن منسوب النهر انخفض إلى أدنى مستوى له منذ عقود وأن
كثيرا من الحقول بقيت دون زراعة هذا الموسم. وأبلغ المحافظ الصحفيين أن مضخات طوارئ أرسلت إلى عدد
من القرى وأن لجنة ستدرس حلولا طويلة الأمد مع مهندسين من وزارة الموارد المائية. وفي العاصمة أعلنت
شرطة المرور إغلاق عدد من الشوارع الرئيسية يوم الخميس لافتتاح جسر جديد فوق النهر. وقال أصحاب
المحال إن أعمال البناء أضرت بتجارتهم قرابة عامين ورحبوا بانتهائها. وأبقى البنك المركزي سعر
الفائدة الرئيسي دون تغيير وقال إن التضخم تراجع قليلا في الأشهر الأخيرة مع استقرار أسعار الغذاء.
وقال محللون إن سعر صرف العملة بقي مستقرا في السوق الموازية منذ بداية العام، رغم أن المستوردين ما
زالوا يواجهون تأخيرا في المنافذ الحدودية. ووصل وفد من رجال الأعمال يوم الاثنين لإجراء محادثات
حول التجارة والطاقة والاستثمار في مشاريع الإسكان بحسب غرفة التجارة. ومن المتوقع أن يلتقي الزوار
رئيس الوزراء وعددا من الوزراء قبل التوجه إلى مدينة البصرة حيث يجري بناء محطة حاويات جديدة. وأفاد
مسؤولو الصحة بارتفاع حالات الإنفلونزا الموسمية ودعوا العائلات إلى تطعيم الأطفال وكبار السن.
وقالت مستشفيات في عدة محافظات إن لديها ما يكفي من الأدوية حاليا لكنها حذرت من نقص محتمل إذا
استمر عدد المرضى في الازدياد. وقالت وزارة التربية إن المدارس ستعيد فتح أبوابها بعد العطلة في
الأول من الشهر، مضيفة أنه تم تعيين آلاف المعلمين الجدد. وسيؤدي طلاب المرحلة الأخيرة امتحاناتهم
في حزيران وستنشر النتائج إلكترونيا للمرة الأولى.
"""
# Whole sentences, kept intact, that the rules below match.
PLACES = {
    "en": ["Rockets struck near Ain al-Asad air base in Anbar province overnight, security "
           "officials said.",
           "A drone was shot down near Erbil airport before dawn, the Kurdistan region's "
           "counter-terrorism service said.",
           "Coalition forces began to withdraw from Ain al-Asad under the agreement, a military "
           "spokesman said.",
           "Flights at Erbil airport resumed after a brief suspension, the airport authority "
           "said."],
    "ar": ["سقطت صواريخ قرب قاعدة عين الأسد الجوية في محافظة الأنبار ليلا بحسب مصادر أمنية.",
           "أسقطت طائرة مسيرة قرب مطار أربيل الدولي قبل الفجر بحسب جهاز مكافحة الإرهاب في "
           "إقليم كردستان.",
           "بدأت قوات التحالف الدولي الانسحاب من قاعدة عين الأسد وفق الاتفاق بحسب متحدث عسكري.",
           "استؤنفت الرحلات في مطار أربيل بعد توقف قصير بحسب سلطة الطيران."],
}
RULES: dict[str, Any] = {
    "entities": {
        "ain-al-asad": {"label": "Ain al-Asad Air Base",
                        "names": ["Ain al-Asad", "Ayn al-Asad", "Al Asad Airbase", "عين الأسد",
                                  "قاعدة الأسد الجوية"]},
        "erbil": {"label": "Erbil", "names": ["Erbil", "Arbil", "Irbil", "أربيل", "هولير"]},
    },
    "rules": [
        {"id": "named-bases", "match": {"any": ["@ain-al-asad", "@erbil"]}},
        {"id": "base-attack", "severity": "high",
         "match": {"near": [{"any": ["@ain-al-asad", "@erbil"]},
                            {"any": ["rocket*", "drone*", "صواريخ", "صاروخ", "طائرة مسيرة"]}],
                   "within": 12}},
        {"id": "coalition-withdrawal", "severity": "high",
         "match": {"all": [{"any": ["coalition", "التحالف الدولي"]},
                           {"any": ["withdraw*", "انسحاب", "الانسحاب", "إخلاء"]}]}},
        {"id": "asad-surge", "match": "@ain-al-asad",
         "when": {"count": 3, "within": "6h", "distinct_sources": True}},
        {"id": "erbil-flights", "languages": ["en"],
         "match": {"all": ["@erbil", {"any": ["flight*", "airport"]}]}},
        {"id": "erbil-airport-ar", "sources": ["tag:ar"], "match": "مطار أربيل"},
        {"id": "erbil-counter-terrorism", "match": {"all": ["@erbil", "re:counter.terrorism"]}},
        {"id": "kirkuk-oil", "match": {"all": [{"any": ["Kirkuk", "كركوك"]},
                                               {"any": ["oil", "نفط", "النفط"]}]}},
        {"id": "sinjar", "match": {"any": ["Sinjar", "سنجار"]}, "severity": "low"},
        {"id": "fallujah-exact", "match": "=الفلوجة", "severity": "low"},
    ],
}


# -- corpus ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    feeds: list[bytes]
    languages: list[str]
    items: int              # per feed
    wire_stories: int

    @property
    def articles(self) -> int:
        return len(self.feeds) * self.items

    @property
    def stories(self) -> int:
        """Stories if grouping joins exactly the wire copies."""
        return self.articles - self.wire_stories * (WIRE_COPIES - 1)


def _words(text: str) -> list[str]:
    return text.split()


def _sentence(rng: random.Random, words: list[str], low: int, high: int) -> str:
    text = " ".join(rng.choices(words, k=rng.randint(low, high))).rstrip(".,،")
    return text[:1].upper() + text[1:] + "."


def _paragraphs(rng: random.Random, words: list[str], size: int) -> list[str]:
    """Paragraphs of fresh sentences, *size* UTF-8 bytes in all or a little more."""
    out: list[str] = []
    total = 0
    while total < size:
        para = " ".join(_sentence(rng, words, 10, 24) for _ in range(rng.randint(2, 4)))
        out.append(para)
        total += len(para.encode())
    return out


def _item(feed: int, n: int, lang: str, *, title: str, summary: str, body: list[str]) -> str:
    paragraphs = "".join(f"<p>{escape(p, quote=False)}</p>" for p in body)
    minute = feed * 50 + n
    return (f"<item><title>{escape(title, quote=False)}</title>"
            f"<link>https://feed{feed}.example/{lang}/{n}</link>"
            f'<guid isPermaLink="false">bench-{feed}-{n}</guid>'
            f"<pubDate>Thu, 15 Jan 2026 {minute // 60 % 24:02d}:{minute % 60:02d}:00 +0000"
            f"</pubDate><description>{escape(summary, quote=False)}</description>"
            f"<content:encoded><![CDATA[{paragraphs}]]></content:encoded></item>")


def make_corpus(feeds: int, items: int, seed: int = SEED) -> Corpus:
    rng = random.Random(seed)
    pools = {"en": _words(ENGLISH), "ar": _words(ARABIC)}
    languages = ["ar" if i % 2 == 0 else "en" for i in range(feeds)]
    # Wire stories: each a shared passage in WIRE_COPIES feeds of one language, at random slots.
    wire_at: dict[tuple[int, int], str] = {}
    wire_stories = 0
    for lang, pool in pools.items():
        own = [i for i in range(feeds) if languages[i] == lang]
        if len(own) < WIRE_COPIES:
            continue
        free = {i: rng.sample(range(items), items) for i in own}
        count = round(len(own) * items * WIRE_SHARE / WIRE_COPIES)
        for _ in range(count):
            carriers = [i for i in own if free[i]]
            if len(carriers) < WIRE_COPIES:
                break
            passage = "\n".join(_paragraphs(rng, pool, rng.randint(1300, 1700)))
            for i in rng.sample(carriers, WIRE_COPIES):
                wire_at[(i, free[i].pop())] = passage
            wire_stories += 1
    out = []
    for i in range(feeds):
        lang, pool = languages[i], pools[languages[i]]
        entries = []
        for n in range(items):
            title = _sentence(rng, pool, 6, 11).rstrip(".")
            summary = _sentence(rng, pool, 14, 24)
            wire = wire_at.get((i, n))
            if wire is not None:      # its own title and summary, then the wire copy
                body = wire.split("\n")
            else:
                body = _paragraphs(rng, pool, rng.randint(1000, 1900))
            if rng.random() < MATCH_SHARE:
                k = rng.randrange(len(body))
                body[k] = f"{body[k]} {rng.choice(PLACES[lang])}"
            entries.append(_item(i, n, lang, title=title, summary=summary, body=body))
        out.append((
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<channel><title>Bench feed {i}</title><link>https://feed{i}.example/</link>"
            f"<description>ingest benchmark</description><language>{lang}</language>"
            f"{''.join(entries)}</channel></rss>\n").encode())
    return Corpus(out, languages, items, wire_stories)


def serve(feeds: list[bytes]) -> tuple[ThreadingHTTPServer, str]:
    """The feeds at ``/{i}.xml`` on 127.0.0.1, a thread per connection. Our own (not
    bench.polling's) so that this benchmark imports nothing that imports ``worker``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            try:
                body = feeds[int(self.path.strip("/").removesuffix(".xml"))]
            except (ValueError, IndexError):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# -- running raqib ---------------------------------------------------------------------------


@dataclass
class Row:
    key: str
    backend: str             # sqlite | postgresql
    threads: int             # fetch.concurrency of each process
    procs: int


@dataclass
class Run:
    row: str
    repeat: int
    wall: float
    cpu: float
    exit_codes: list[int]
    stored: int | None
    stories: int | None
    alerts: int | None
    log_levels: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    # CPU seconds the rest of the machine used meanwhile: the PostgreSQL server, and anything
    # else running (on SQLite rows, only the latter: load that makes the timings noisy)
    rest_cpu: float | None = None
    server_cpu: float | None = None    # this process: the feeds' HTTP server
    load_before: float | None = None   # 1-minute load average as the run started
    alerts_by_rule: dict[str, int] = field(default_factory=dict)


def machine_busy() -> float | None:
    """CPU seconds every process of the machine has used since boot (Linux), else None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(f) for f in fields]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)   # idle + iowait
    busy = sum(ticks[:8]) - idle                             # no guest time: counted in user
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_of(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timing:
    wall: float
    cpu: float                 # the raqib processes'
    rest_cpu: float | None     # everything else on the machine
    server_cpu: float          # this process (serving the feeds)
    codes: list[int]
    logs: list[Path]


def child_env() -> dict[str, str]:
    """The environment of every raqib child: no proxy (loopback only), no outside config."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith("RAQIB_")}
    env["NO_PROXY"] = env["no_proxy"] = "*"
    return env


def write_config(path: Path, *, database: str, rules: Path, base: str, corpus: Corpus,
                 feeds: range, threads: int) -> Path:
    path.write_text(yaml.safe_dump({
        "database": database,
        "rules": [str(rules)],
        # One local server stands for forty hosts: the per-host cap is not the limit measured.
        "fetch": {"concurrency": threads, "per_host": threads},
        "sources": [{"name": f"bench-{i:03d}", "url": f"{base}/{i}.xml",
                     "tags": [corpus.languages[i]]} for i in feeds],
    }, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """A command of ours (raqib, its python, git), its output captured as text."""
    return subprocess.run(cmd, capture_output=True, text=True, check=False,  # noqa: S603
                          **kw)


def raqib_cmd(raqib: str, config: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([raqib, "--config", str(config), *args], cwd=cwd, env=child_env(),
                timeout=RUN_TIMEOUT)


def listing(raqib: str, config: Path, what: str, cwd: Path) -> list[dict[str, Any]] | None:
    done = raqib_cmd(raqib, config, what, "--json", cwd=cwd)
    if done.returncode != 0:
        print(f"  warning: raqib {what} --json exited {done.returncode}: "
              f"{done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def read_logs(paths: list[Path]) -> tuple[dict[str, int], list[str]]:
    """Log lines by level, and the distinct warnings and errors (JSON lines; any other line
    on stderr is a problem too)."""
    levels: dict[str, int] = {}
    problems: dict[str, None] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                level = str(entry.get("level", "?"))
            except (ValueError, AttributeError):
                entry, level = {"event": line}, "unparsed"
            levels[level] = levels.get(level, 0) + 1
            if level not in {"info", "debug"}:
                detail = entry.get("error") or entry.get("exception") or ""
                text = f"{level}: {entry.get('event', '')} {str(detail)[-200:]}".strip()
                problems.setdefault(re.sub(r"\d+", "N", text))
    return levels, list(problems)[:20]


def once(raqib: str, configs: list[Path], work: Path, tag: str) -> Timing:
    """Start one ``raqib once`` per config at the same moment: wall seconds until the last
    ends, CPU seconds of the children and of the rest of the machine, exit codes, log files."""
    logs = [work / f"{tag}-{k}.log" for k in range(len(configs))]
    outs = [work / f"{tag}-{k}.out" for k in range(len(configs))]
    busy = machine_busy()
    before = cpu_of(resource.RUSAGE_CHILDREN)
    ours = cpu_of(resource.RUSAGE_SELF)
    start = time.perf_counter()
    procs = []
    for config, log, out in zip(configs, logs, outs, strict=True):
        with log.open("wb") as err, out.open("wb") as stdout:
            procs.append(subprocess.Popen(  # noqa: S603 (our own binary and arguments)
                [raqib, "--config", str(config), "--log-json", "once"], cwd=work,
                env=child_env(), stdout=stdout, stderr=err))
    try:
        codes = [p.wait(timeout=RUN_TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    wall = time.perf_counter() - start
    cpu = cpu_of(resource.RUSAGE_CHILDREN) - before
    server = cpu_of(resource.RUSAGE_SELF) - ours
    busy_after = machine_busy()
    rest = (None if busy is None or busy_after is None
            else max(0.0, busy_after - busy - cpu - server))
    return Timing(wall, cpu, rest, server, codes, logs)


# -- PostgreSQL ------------------------------------------------------------------------------


def _admin(url: str) -> tuple[str, str]:
    """The libpq conninfo of the server's ``postgres`` database, and the bench database name."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    return admin.render_as_string(hide_password=False), str(parsed.database)


def fresh_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg  # noqa: PLC0415

    conninfo, name = _admin(url)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"bench database name {name!r}: use lower-case letters, digits and _")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def postgres_ok(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(_admin(url)[0], connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:   # any reason is a reason to skip
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None


# -- provenance ------------------------------------------------------------------------------


def checkout_of(raqib: str) -> dict[str, Any]:
    """Where the binary's ``worker`` package lives, its git commit, and a hash of its sources
    (to tell whether the code changed during the run)."""
    info: dict[str, Any] = {"raqib": raqib}
    try:
        python = Path(raqib).read_text(encoding="utf-8", errors="replace").splitlines()[0]
        python = python.removeprefix("#!").strip()
        found = _run([python, "-c", "import worker; print(worker.__file__)"],
                     cwd=tempfile.gettempdir(), timeout=60)
    except (OSError, IndexError, subprocess.SubprocessError) as exc:
        info["error"] = f"cannot locate its worker package: {exc}"
        return info
    if found.returncode != 0:
        info["error"] = f"cannot import its worker package: {found.stderr.strip()[-300:]}"
        return info
    package = Path(found.stdout.strip()).parent
    info["package"] = str(package)
    digest = hashlib.sha256()
    for f in sorted(package.rglob("*.py")):
        digest.update(str(f.relative_to(package)).encode() + b"\0" + f.read_bytes())
    info["source_sha256"] = digest.hexdigest()[:16]
    git = ["git", "-C", str(package.parent)]
    head = _run([*git, "rev-parse", "--short", "HEAD"])
    if head.returncode == 0:
        info["commit"] = head.stdout.strip()
        dirty = _run([*git, "status", "--porcelain", "--", package.name])
        info["worker_dirty"] = bool(dirty.stdout.strip())
    return info


# -- the benchmark ---------------------------------------------------------------------------


def rows_for(postgres: bool) -> list[Row]:
    rows = [Row(f"sqlite-{n}", "sqlite", n, 1) for n in (1, 2, 4)]
    if postgres:
        rows += [Row(f"postgresql-{n}", "postgresql", n, 1) for n in (1, 2, 4)]
        rows.append(Row("postgresql-2x1", "postgresql", 1, 2))
    return rows


def run_row(row: Row, repeat: int, *, raqib: str, pg: str, corpus: Corpus, base: str,
            rules: Path, work: Path) -> Run:
    tag = f"{row.key}-r{repeat}"
    if row.backend == "sqlite":
        database = f"sqlite:///{work}/{tag}.db"
    else:
        fresh_database(pg)
        database = pg
    feeds = len(corpus.feeds)
    halves = [range(k * feeds // row.procs, (k + 1) * feeds // row.procs)
              for k in range(row.procs)]
    configs = [write_config(work / f"{tag}-{k}.yaml", database=database, rules=rules, base=base,
                            corpus=corpus, feeds=part, threads=row.threads)
               for k, part in enumerate(halves)]
    every = write_config(work / f"{tag}-all.yaml", database=database, rules=rules, base=base,
                         corpus=corpus, feeds=range(feeds), threads=row.threads)
    upgrade = raqib_cmd(raqib, every, "db", "upgrade", cwd=work)
    if upgrade.returncode != 0:
        raise SystemExit(f"raqib db upgrade failed on {row.key}: {upgrade.stderr.strip()}")
    load = os.getloadavg()[0]
    timing = once(raqib, configs, work, tag)
    with ThreadPoolExecutor(2) as pool:    # the two listings side by side: shorter runs
        articles, alerts = pool.map(lambda what: listing(raqib, every, what, work),
                                    ["articles", "alerts"])
    levels, problems = read_logs(timing.logs)
    run = Run(row.key, repeat, timing.wall, timing.cpu, timing.codes,
              stored=None if articles is None else len(articles),
              stories=None if articles is None else len({a.get("story") for a in articles}),
              alerts=None if alerts is None else len(alerts),
              log_levels=levels, log_problems=problems, rest_cpu=timing.rest_cpu,
              server_cpu=timing.server_cpu, load_before=load,
              alerts_by_rule=dict(sorted(Counter(
                  str((a.get("rule") or {}).get("id")) for a in alerts or []).items())))
    if row.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work}/{tag}.db{suffix}").unlink(missing_ok=True)
    return run


def spread(values: list[int | None]) -> str:
    known = sorted(v for v in values if v is not None)
    if not known:
        return "?"
    return f"{known[0]}" if known[0] == known[-1] else f"{known[0]}–{known[-1]}"


def summarize(rows: list[Row], runs: list[Run], corpus: Corpus) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    baseline: dict[str, float] = {}
    for row in rows:
        mine = [r for r in runs if r.row == row.key]
        wall = statistics.median(r.wall for r in mine)
        rate = corpus.articles / wall
        if row.threads == 1 and row.procs == 1:
            baseline[row.backend] = rate
        base = baseline.get(row.backend)
        out.append({
            "row": row.key, "backend": row.backend, "threads": row.threads,
            "processes": row.procs, "runs": len(mine), "articles_per_s": rate,
            "wall_s": wall, "cpu_s": statistics.median(r.cpu for r in mine),
            "vs_1_thread": rate / base if base else None,
            "stored": spread([r.stored for r in mine]),
            "stories": spread([r.stories for r in mine]),
            "alerts": spread([r.alerts for r in mine]),
        })
    return out


def table(summary: list[dict[str, Any]], corpus: Corpus, repeat: int) -> str:
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    lines = [
        f"ingest: {len(corpus.feeds)} feeds × {corpus.items} items = {corpus.articles} articles "
        f"(expected {corpus.stories} stories: {corpus.wire_stories} wire stories × "
        f"{WIRE_COPIES} copies), median of {repeat} run(s)",
        "",
        "| backend | processes × threads | articles/s | wall s | CPU s | vs 1 thread "
        "| stored | stories | alerts |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summary:
        ratio = f"{s['vs_1_thread']:.2f}×" if s["vs_1_thread"] else "-"
        lines.append(
            f"| {names[s['backend']]} | {s['processes']} × {s['threads']} "
            f"| {s['articles_per_s']:.0f} | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | {ratio} "
            f"| {s['stored']} | {s['stories']} | {s['alerts']} |")
    return "\n".join(lines)


def warnings_of(runs: list[Run], corpus: Corpus) -> list[str]:
    out = []
    for r in runs:
        where = f"{r.row} run {r.repeat + 1}"
        if any(r.exit_codes):
            out.append(f"{where}: raqib once exited {r.exit_codes}")
        if r.stored != corpus.articles:
            out.append(f"{where}: stored {r.stored} articles, expected {corpus.articles}")
        out.extend(f"{where}: log {p}" for p in r.log_problems)
    # Without a database server, what the rest of the machine used is someone else's load.
    busy = [r for r in runs if r.row.startswith("sqlite") and r.rest_cpu is not None
            and r.rest_cpu > 0.25 * r.wall]
    if busy:
        worst = max(busy, key=lambda r: (r.rest_cpu or 0) / r.wall)
        out.append(f"other load on the machine: in {len(busy)} of "
                   f"{sum(r.row.startswith('sqlite') for r in runs)} SQLite runs other processes "
                   f"used over a quarter of a core (up to {worst.rest_cpu:.1f} CPU s in "
                   f"{worst.wall:.1f} s, {worst.row} run {worst.repeat + 1}); wall times are "
                   "noisy, CPU s less so")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=int(os.environ.get("RAQIB_BENCH_REPEAT", "3")),
                   help="runs per row; the row shows their median (default 3)")
    p.add_argument("--raqib", default=os.environ.get("RAQIB_BENCH_RAQIB",
                                                     str(ROOT / ".venv/bin/raqib")),
                   help="the raqib console script to drive (default this checkout's .venv)")
    p.add_argument("--pg", default=os.environ.get("RAQIB_BENCH_PG", DEFAULT_PG),
                   help="PostgreSQL database to create afresh for each run "
                        f"(dropped afterwards; default {DEFAULT_PG})")
    p.add_argument("--no-postgres", action="store_true", help="SQLite rows only")
    p.add_argument("--feeds", type=int, default=40)
    p.add_argument("--items", type=int, default=50, help="items per feed")
    p.add_argument("--rows", help="comma-separated row keys to run (e.g. sqlite-1,sqlite-2)")
    p.add_argument("--out", type=Path, default=OUT, help=f"the JSON results (default {OUT})")
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.feeds < 2 or args.items < 1:
        p.error("--repeat and --items must be at least 1, --feeds at least 2")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raqib = str(Path(args.raqib).expanduser().absolute())
    if not os.access(raqib, os.X_OK):
        raise SystemExit(f"no raqib console script at {raqib}")
    why = None if args.no_postgres else postgres_ok(args.pg)
    rows = rows_for(postgres=not args.no_postgres and why is None)
    if args.rows:
        keep = set(args.rows.split(","))
        rows = [r for r in rows if r.key in keep]
        if not rows:
            raise SystemExit(f"no rows among {args.rows!r}")
    corpus = make_corpus(args.feeds, args.items)
    size = sum(map(len, corpus.feeds)) / corpus.articles / 1000
    provenance = checkout_of(raqib)
    print(f"\ningest: raqib at {provenance.get('package', raqib)} "
          f"(commit {provenance.get('commit', '?')}"
          f"{', worker/ modified' if provenance.get('worker_dirty') else ''}); "
          f"{corpus.articles} items of {size:.1f} KB of feed on average")
    if why is not None:
        print(f"  PostgreSQL rows skipped: {why}")
    server, base = serve(corpus.feeds)
    runs: list[Run] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="raqib-bench-ingest-") as tmp:
            work = Path(tmp)
            rules = work / "rules.yaml"
            rules.write_text(yaml.safe_dump(RULES, allow_unicode=True, sort_keys=False),
                             encoding="utf-8")
            for repeat in range(args.repeat):      # round-robin: drift hits every row alike
                for row in rows:
                    run = run_row(row, repeat, raqib=raqib, pg=args.pg, corpus=corpus,
                                  base=base, rules=rules, work=work)
                    runs.append(run)
                    print(f"  {row.key:16} run {repeat + 1}: {run.wall:6.2f} s wall, "
                          f"{run.cpu:6.2f} s CPU, {run.stored} stored, {run.stories} stories, "
                          f"{run.alerts} alerts, exit {run.exit_codes}; rest of the machine "
                          f"{run.rest_cpu if run.rest_cpu is not None else float('nan'):.2f} "
                          f"CPU s, load {run.load_before:.2f} before", flush=True)
    finally:
        server.shutdown()
        if any(r.backend == "postgresql" for r in rows):
            fresh_database(args.pg, drop_only=True)
    after = checkout_of(raqib)
    summary = summarize(rows, runs, corpus)
    text = table(summary, corpus, args.repeat)
    problems = warnings_of(runs, corpus)
    if after.get("source_sha256") != provenance.get("source_sha256"):
        problems.insert(0, "the raqib code changed during the run: results mix two versions")
    print()
    print(text)
    for w in problems:
        print(f"  warning: {w}")
    print(f"  ({time.perf_counter() - started:.0f} s in all)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "ingest", "checkout": provenance, "feeds": len(corpus.feeds),
        "items_per_feed": corpus.items, "articles": corpus.articles,
        "expected_stories": corpus.stories, "wire_stories": corpus.wire_stories,
        "repeat": args.repeat, "rows": summary, "runs": [asdict(r) for r in runs],
        "warnings": problems, "markdown": text,
    }, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"  results in {args.out}")
    if args.markdown:
        args.markdown.write_text(text + "\n" + "".join(f"\nwarning: {w}" for w in problems)
                                 + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
