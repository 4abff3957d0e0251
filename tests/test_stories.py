"""Stories: near-duplicate copies across outlets make one story and one alert per rule; stories
that only share a topic stay apart. A labelled set of pairs, Arabic among them, measures it."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from worker import config
from worker.db import Database
from worker.domain import Article
from worker.pipeline import Pipeline
from worker.stories import signature

from conftest import Clock, Response, Server, write

WIRE = ("Two rockets struck the Ain al-Asad air base in western Iraq late on Saturday, according "
        "to two security officials who spoke on condition of anonymity. The base hosts Iraqi "
        "forces and, until recently, advisers of the international coalition fighting the "
        "Islamic State group. No casualties were reported, the officials said, adding that an "
        "investigation had been opened into where the rockets were launched from.")
ARABIC = ("أعلنت اللجنة العسكرية العليا لإنهاء مهمة التحالف الدولي في العراق إكمال عملية إخلاء "
          "القواعد العسكرية والمقار القيادية كافة، بمغادرة الأعداد القليلة التي كانت متبقية في "
          "قاعدة عين الأسد الجوية ومقر قيادة العمليات المشتركة، لتصبح هذه المواقع تحت الإدارة "
          "الكاملة للقوات الأمنية العراقية.")
OTHER = ("A drone was shot down near Erbil airport on Sunday morning, the Kurdistan Region's "
         "counter-terrorism service said in a statement. It did not say who launched the drone, "
         "and flights continued as planned. Similar attacks have targeted the airport, which "
         "hosts coalition forces, several times this year.")
SAME_TOPIC = ("Iraq's parliament debated on Monday the future of the international coalition's "
              "presence at Ain al-Asad and other bases, with several blocs demanding a faster "
              "timetable for the departure of the remaining advisers and others warning of a "
              "security vacuum that the Islamic State group could exploit.")


def edit(text: str, share: float, rng: random.Random) -> str:
    """A light edit: *share* of the words replaced, as a re-posting outlet would."""
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, int(len(words) * share))):
        words[i] = rng.choice(["said", "on", "the", "reportedly", "قال", "في"])
    return " ".join(words)


def labelled_pairs() -> list[tuple[str, str, bool]]:
    rng = random.Random(5)
    texts = [WIRE, ARABIC, OTHER, SAME_TOPIC]
    dup = [(t, edit(t, 0.03, rng), True) for t in texts]
    dup += [(WIRE, "UPDATE 1-" + WIRE + " Officials later said the attack caused minor damage.",
             True),
            (ARABIC, ARABIC.replace("أعلنت", "أعلَنَت").replace("الدولي", "الدولــي"), True),
            (ARABIC, "عاجل: " + ARABIC, True),
            (OTHER, OTHER.upper(), True)]
    distinct = [(a, b, False) for i, a in enumerate(texts) for b in texts[i + 1:]]
    return dup + distinct


@pytest.mark.parametrize(("a", "b", "same"), labelled_pairs())
def test_labelled_pairs(a: str, b: str, same: bool) -> None:
    sa = signature(Article(source="x", title="", body=a))
    sb = signature(Article(source="y", title="", body=b))
    assert sa.joins(sb) is same


def project(tmp: Path, server: Server, feeds: dict[str, str]) -> Pipeline:
    write(tmp / "rules/r.yaml", "rules:\n  - id: asad\n    match: Ain al-Asad\n"
                                "  - id: coalition\n    match: international coalition\n")
    for name, body in feeds.items():
        server.routes[f"/{name}"] = Response(200, body.encode())
    write(tmp / "raqib.yaml", yaml.safe_dump({
        "database": f"sqlite:///{tmp}/raqib.db", "rules": [str(tmp / "rules")],
        "sources": [{"name": n, "url": server.url(f"/{n}")} for n in feeds],
        "channels": {"log": {"type": "file", "path": str(tmp / "alerts.jsonl")}},
        "defaults": {"notify": ["log"]}}))
    cfg = config.load_config(str(tmp / "raqib.yaml"), env={})
    db = Database(cfg.main.database)
    db.migrate()
    p = Pipeline(cfg, db, clock=Clock())
    p.sync_sources()
    return p


def rss(items: list[tuple[str, str, str]]) -> str:
    return ("<rss version='2.0'><channel><title>t</title>" + "".join(
        f"<item><title>{t}</title><link>{link}</link><description>{d}</description></item>"
        for t, link, d in items) + "</channel></rss>")


def test_one_alert_per_story_across_outlets(tmp_path: Path, http_server: Server) -> None:
    rng = random.Random(1)
    feeds = {
        "wire": rss([("Rockets hit Ain al-Asad", "https://wire.example/1", WIRE)]),
        "outlet1": rss([("Rockets hit Ain al-Asad base", "https://one.example/a?utm_source=x",
                         edit(WIRE, 0.02, rng))]),
        "outlet2": rss([("UPDATE 1-Rockets hit Ain al-Asad", "https://two.example/b",
                         "UPDATE 1-" + WIRE + " Officials later said the damage was minor.")]),
        "debate": rss([("Parliament debates the coalition", "https://three.example/c",
                        SAME_TOPIC)]),
    }
    p = project(tmp_path, http_server, feeds)
    report = p.run_once()
    assert report.new == 4
    payloads = p.db.listings.alert_payloads()
    by_rule: dict[str, list[dict[str, object]]] = {}
    for a in payloads:
        by_rule.setdefault(a["rule"]["id"], []).append(a)
    assert len(by_rule["asad"]) == 2            # the wire story, and the debate story
    [wire_alert] = [a for a in by_rule["asad"] if "Rockets" in str(a["article"]["title"])]
    assert wire_alert["story"]["sources"] == 3  # wire, outlet1, outlet2
    stories = p.db.listings.stories()
    assert sorted(len(s["articles"]) for s in stories) == [1, 3]
    # A second pass over the same sources raises nothing.
    assert p.run_once().alerts == 0
    p.close()


def test_stories_command(tmp_path: Path, http_server: Server,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(2)
    feeds = {"a": rss([("Rockets hit Ain al-Asad", "https://a.example/1", WIRE)]),
             "b": rss([("Rockets hit Ain al-Asad", "https://b.example/1", edit(WIRE, 0.02, rng))])}
    p = project(tmp_path, http_server, feeds)
    p.run_once()
    p.close()
    monkeypatch.chdir(tmp_path)
    out = subprocess.run([sys.executable, "-m", "worker", "stories", "--json", "--config",
                          "raqib.yaml"], capture_output=True, text=True, check=True).stdout
    [story] = json.loads(out)
    assert story["sources"] == ["a", "b"] and len(story["articles"]) == 2
    articles = subprocess.run([sys.executable, "-m", "worker", "articles", "--json", "--config",
                               "raqib.yaml"], capture_output=True, text=True, check=True).stdout
    assert {a["story"] for a in json.loads(articles)} == {story["id"]}
