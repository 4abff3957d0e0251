"""feedparser's own test suite (its 2,200 feed documents, from its source distribution in
tests/data) served over HTTP on 127.0.0.1 with the headers each test names, run through the
whole ingest path, and compared with what feedparser itself reads from the same bytes and
headers: every stored title is feedparser's, nothing is lost but exact duplicates, and a
source fails exactly when feedparser finds no feed."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import feedparser
import pytest
import yaml

from worker import config
from worker.db import Database
from worker.pipeline import Pipeline

from conftest import DATA, Clock, Response, Server, write

SUITE = DATA / "feedparser-6.0.14.tar.gz"
FOLDERS = ("wellformed", "illformed", "encoding", "entities")
HEADER = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)
BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


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


def expected(data: bytes, headers: dict[str, str]) -> feedparser.FeedParserDict:
    return feedparser.parse(data, response_headers={k.lower(): v for k, v in headers.items()})


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
        entries += len(ref.entries)
        problem = ref.get("bozo_exception")
        if not ref.entries and (not ref.get("version") or
                                (ref.bozo and not isinstance(problem, BENIGN))):
            should_fail.add(name)
            continue
        titles = [e.get("title", "") for e in ref.entries]
        for title in stored.get(name, []):
            assert title in titles, f"{rel}: {title!r} is not feedparser's ({titles!r})"
    assert set(report.failed_sources) == should_fail
    assert report.new + report.duplicates == entries
    assert report.new > 400   # the suite repeats many entries word for word: duplicates
    pipeline.close()
