"""feedparser's own test suite (its 2,200 feed documents, from its source distribution in
tests/data) served over HTTP on 127.0.0.1 with the headers each test names, run through the
whole ingest path, and compared with what feedparser itself reads from the same bytes and
headers: every stored title is the text of feedparser's (an HTML title as BeautifulSoup reads
it, scripts and styles left out, white space folded), nothing is lost but exact duplicates, and a source fails exactly when
feedparser finds no feed. The suite's documents that declare no encoding and that feedparser
reads only with chardet (``illformed/chardet``) must be sniffed as the suite expects: their
titles are compared with feedparser's reading in the encoding the suite names."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import feedparser
import pytest
import yaml
from bs4 import BeautifulSoup

from worker import config
from worker.db import Database
from worker.pipeline import Pipeline

from conftest import DATA, Clock, Response, Server, write

SUITE = DATA / "feedparser-6.0.14.tar.gz"
FOLDERS = ("wellformed", "illformed", "encoding", "entities")
HEADER = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)
BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
SNIFFED = re.compile(rb"SkipUnless:\s+__import__\('chardet'\).*?Expect:.*?encoding == '([^']+)'",
                     re.DOTALL)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes, dict[str, str]]]:
    root = tmp_path_factory.mktemp("feedparser")
    with tarfile.open(SUITE) as tar:
        tar.extractall(root, filter="data")
    tests = root / "feedparser-6.0.14/tests"
    out = []
    for folder in FOLDERS:
        for path in sorted((tests / folder).rglob("*.xml")):
            data = path.read_bytes()
            headers = {k.decode().strip(): v.decode().strip() for k, v in HEADER.findall(data)}
            if "Status" in headers:
                continue   # the suite's redirect tests point at its own server's port
            headers.setdefault("Content-type", "application/xml")
            out.append((path.relative_to(tests).as_posix(), data, headers))
    return out


HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}


def expected(data: bytes, headers: dict[str, str], **kw: bool) -> feedparser.FeedParserDict:
    return feedparser.parse(data, response_headers={k.lower(): v for k, v in headers.items()},
                            **kw)


def text_of(entry: feedparser.FeedParserDict) -> str:
    """The plain text of feedparser's title: an HTML title as BeautifulSoup reads it."""
    title = entry.get("title", "")
    if (entry.get("title_detail") or {}).get("type") in HTML_TYPES:
        soup = BeautifulSoup(title, "html.parser")
        for tag in soup(["script", "style", "noscript", "template"]):
            tag.decompose()
        title = soup.get_text(" ")
    return " ".join(re.sub(r"[\x00-\x08\x0b\x0e-\x1f\x7f]", "", title).split())


def test_the_suite_through_the_whole_ingest_path(
        suite: list[tuple[str, bytes, dict[str, str]]], http_server: Server, clock: Clock,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    names = {}
    for i, (rel, data, headers) in enumerate(suite):
        http_server.routes[f"/{rel}"] = Response(200, data, headers)
        names[f"t{i}"] = rel
    write(tmp_path / "raqib.yaml", yaml.safe_dump({
        "database": f"sqlite:///{tmp_path}/raqib.db",
        "fetch": {"per_host": 8},   # every source is on 127.0.0.1
        "sources": [{"name": n, "url": http_server.url(f"/{rel}")} for n, rel in names.items()],
    }))
    cfg = config.load_config(str(tmp_path / "raqib.yaml"), env={})
    db = Database(cfg.main.database)
    db.migrate()
    pipeline = Pipeline(cfg, db, clock=clock)
    pipeline.sync_sources()
    report = pipeline.run_once()

    stored: dict[str, list[str]] = {}
    for row in db.listings.articles():
        stored.setdefault(row["source"], []).append(row["title"])
    entries = 0
    should_fail = set()
    for (name, rel), (_, data, headers) in zip(names.items(), suite, strict=True):
        ref = expected(data, headers)
        sniffed = SNIFFED.search(data)
        told = {**headers, "Content-type": f"application/xml; charset={sniffed[1].decode()}"} \
            if sniffed else headers
        raw = expected(data, told, sanitize_html=False)
        entries += len(ref.entries)
        problem = ref.get("bozo_exception")
        if not ref.entries and (not ref.get("version") or
                                (ref.bozo and not isinstance(problem, BENIGN))):
            should_fail.add(name)
            continue
        # the text of the markup as written: feedparser's sanitizer leaves parts of scripts
        titles = [text_of(e) for e in raw.entries]
        for title in stored.get(name, []):
            assert title in titles, f"{rel}: {title!r} is not feedparser's ({titles!r})"
    errors = {s.name: s.last_error for s in db.sources.all()}
    unexpected = set(report.failed_sources) ^ should_fail
    assert not unexpected, {names[n]: errors.get(n) for n in sorted(unexpected)}
    assert report.new + report.duplicates == entries
    assert report.new > 400   # the suite repeats many entries word for word: duplicates
    pipeline.close()
