"""Silences: added, listed and expired from the command line; an alert raised while one
matches is stored with its id and never delivered, before and after a restart, on SQLite and
PostgreSQL; by rule, source, tag, term and combinations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_kinds import T0, Desk, words

from worker import cli, config
from worker.db import Database
from worker.domain import Article, Silence
from worker.web import _dashboard

from conftest import Clock

RULES_EXTRA = """\
  - id: erbil-watch
    match: "@erbil"
  - id: asad-watch
    match: "@ain-al-asad"
  - id: asad-window
    match: "@ain-al-asad"
    when: {count: 2, within: 6h}
"""


def desk_with(tmp: Path, url: str, clock: Clock) -> Desk:
    desk = Desk(tmp, url, clock)
    desk.start()   # writes the configuration, then the extra rules are added
    rules = tmp / "rules.yaml"
    rules.write_text(rules.read_text() + RULES_EXTRA)
    desk.restart()
    return desk


def story(desk: Desk, source: str, text: str, n: int) -> None:
    import random  # noqa: PLC0415

    rng = random.Random(1000 + n)
    desk.p.ingest(source, [Article(source=source, title=f"Story {n} {words(rng, 3)}",
                                   body=f"{words(rng, 40)} {text} {words(rng, 40)}",
                                   url=f"https://news.example/{source}/x{n}", guid=f"x{n}",
                                   tags=("arabic",) if source.startswith("s-ar") else ())])


def silence(desk: Desk, sid: str, *, hours: float = 2, **kw: Any) -> None:
    now = desk.clock.now
    desk.p.db.silences.add(Silence(sid, now, now + timedelta(hours=hours), created_by="t",
                                   comment="test", created_at=now, **kw))


def silenced_by(desk: Desk, rule: str) -> list[str | None]:
    return [a["silenced_by"] for a in desk.alerts(rule)]


def delivered(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "alerts.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_silenced_alert_is_stored_and_never_delivered_across_a_restart(
        tmp_path: Path, db_url: str) -> None:
    desk = desk_with(tmp_path, db_url, Clock(T0))
    silence(desk, "S1", rule_id="erbil-watch", hours=3)
    story(desk, "s-en", "in Erbil today", 1)
    desk.restart()                                   # a restart during the silence
    desk.clock.advance(hours=1)
    story(desk, "s-en", "Erbil again", 2)
    assert silenced_by(desk, "erbil-watch") == ["S1", "S1"]
    assert b'raqib_alerts_silenced_total{rule="erbil-watch"} 1.0' in desk.p.metrics.exposition()
    desk.p.deliver(until_done=True)
    desk.clock.advance(hours=3)                      # the silence is over: still not sent
    desk.restart()
    desk.p.deliver(until_done=True)
    assert [d for d in delivered(tmp_path) if d["rule"]["id"] == "erbil-watch"] == []
    # its story stays alerted: a copy of it from another source raises nothing new
    story_one = desk.alerts("erbil-watch")[0]
    desk.p.ingest("s-wire", [Article(source="s-wire", title="copy", body="x")])
    assert len(desk.alerts("erbil-watch")) == 2
    # after the silence, alerts go out again
    story(desk, "s-en", "Erbil later", 3)
    desk.p.deliver(until_done=True)
    sent = [d for d in delivered(tmp_path) if d["rule"]["id"] == "erbil-watch"]
    assert len(sent) == 1 and sent[0]["silenced_by"] is None
    assert story_one["id"] not in {d["id"] for d in sent}
    # the listing tells silenced alerts apart
    held = desk.p.db.listings.alert_payloads(silenced=True)
    assert {a["id"] for a in held} == {a["id"] for a in desk.alerts("erbil-watch")[:2]}


def test_silenced_hits_still_count_in_windows(tmp_path: Path, db_url: str) -> None:
    desk = desk_with(tmp_path, db_url, Clock(T0))
    silence(desk, "S1", rule_id="asad-window", hours=1)
    story(desk, "s-en", "Ain al-Asad one", 1)
    story(desk, "s-wire", "Ain al-Asad two", 2)      # the window fills: silenced
    desk.clock.advance(hours=2)
    story(desk, "s-en", "Ain al-Asad three", 3)      # one hit after the firing: not full
    assert silenced_by(desk, "asad-window") == ["S1"]
    story(desk, "s-wire", "Ain al-Asad four", 4)     # fills again, the silence is over
    assert silenced_by(desk, "asad-window") == ["S1", None]


@pytest.mark.parametrize(("matchers", "expected"), [
    ({"source": "s-en"}, {"erbil-watch": ["S"], "asad-watch": [None]}),
    ({"source": "tag:arabic"}, {"erbil-watch": [None], "asad-watch": ["S"]}),
    ({"term": "@erbil"}, {"erbil-watch": ["S"], "asad-watch": [None]}),
    ({"term": "عين الأسد"}, {"erbil-watch": [None], "asad-watch": ["S"]}),
    ({"rule_id": "asad-watch", "source": "s-en"}, {"erbil-watch": [None], "asad-watch": [None]}),
    ({"rule_id": "asad-watch", "term": "بالقاعدة"}, {"erbil-watch": [None], "asad-watch": ["S"]}),
])
def test_silences_by_source_tag_term_and_all_of_them(tmp_path: Path, matchers: dict[str, str],
                                                     expected: dict[str, list[str | None]]) -> None:
    desk = desk_with(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", Clock(T0))
    silence(desk, "S", **matchers)
    story(desk, "s-en", "a briefing in Erbil", 1)
    story(desk, "s-ar", "قصف قرب عين الأسد بالقاعدة", 2)
    assert {r: silenced_by(desk, r) for r in expected} == expected


def test_a_quiet_alert_is_silenced_by_its_source(tmp_path: Path, db_url: str) -> None:
    desk = Desk(tmp_path, db_url, Clock(T0)).start()
    silence(desk, "Q", source="s-ar", hours=48)
    for m in range(0, 9 * 60, 10):
        desk.clock.now = T0 + timedelta(minutes=m)
        desk.p.check_quiet()
    got = {a["source"]["name"]: a["silenced_by"] for a in desk.alerts("quiet-arabic")}
    assert got == {"s-ar": "Q", "s-ar2": None}
    page = _dashboard(desk.p.db).decode()   # the dashboard shows the quiet alerts, one silenced
    assert "s-ar: no new article since 2026-12-01T00:00:00Z" in page
    assert "<td>quiet</td>" in page and "<td>Q</td>" in page


def test_a_silence_added_by_another_process_holds_at_once(tmp_path: Path, db_url: str) -> None:
    desk = desk_with(tmp_path, db_url, Clock(T0))
    other = Database(db_url)   # another worker or the command line, on the same database
    other.silences.add(Silence("S2", T0 - timedelta(minutes=1), T0 + timedelta(hours=1),
                               rule_id="erbil-watch"))
    other.close()
    story(desk, "s-en", "Erbil", 1)
    assert silenced_by(desk, "erbil-watch") == ["S2"]


# -- the command line ------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(cfg), "--log-level", "error", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_silence_add_list_expire(tmp_path: Path, db_url: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    desk = desk_with(tmp_path, db_url, Clock(datetime.now(UTC)))
    desk.stop()
    cfg = tmp_path / "raqib.yaml"
    code, out, _ = run_cli(capsys, cfg, "silence", "add", "--rule", "erbil-watch", "--for",
                           "12h", "--comment", "known exercise", "--by", "desk", "--json")
    assert code == 0
    [added] = json.loads(out)
    assert (added["rule"], added["state"], added["created_by"], added["comment"]) == (
        "erbil-watch", "active", "desk", "known exercise")
    until = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%MZ")
    code, out, _ = run_cli(capsys, cfg, "silence", "add", "--source", "tag:arabic", "--match",
                           "@erbil", "--until", until)
    assert code == 0 and "silences source tag:arabic and articles holding '@erbil'" in out
    second = out.split()[0]
    code, out, _ = run_cli(capsys, cfg, "silence", "list", "--json")
    assert {s["id"] for s in json.loads(out)} == {added["id"], second}
    code, out, _ = run_cli(capsys, cfg, "silence", "list")
    assert "erbil-watch" in out and "known exercise" in out and "active" in out
    code, out, _ = run_cli(capsys, cfg, "silence", "expire", added["id"])
    assert code == 0 and "expired" in out
    code, out, _ = run_cli(capsys, cfg, "silence", "list", "--json")
    assert [s["id"] for s in json.loads(out)] == [second]
    code, out, _ = run_cli(capsys, cfg, "silence", "list", "--all", "--json")
    states = {s["id"]: s["state"] for s in json.loads(out)}
    assert states == {added["id"]: "expired", second: "active"}
    # an alert the remaining silence holds shows as silenced in `raqib alerts`
    desk.clock.now = datetime.now(UTC)
    desk.start()
    story(desk, "s-ar", "في أربيل", 1)
    desk.stop()
    code, out, _ = run_cli(capsys, cfg, "alerts")
    assert f"silenced by {second}" in out
    code, out, _ = run_cli(capsys, cfg, "alerts", "--json")
    assert {a["silenced_by"] for a in json.loads(out)
            if a["rule"]["id"] == "erbil-watch"} == {second}


@pytest.mark.parametrize(("args", "message"), [
    (["--for", "1h"], "needs --rule, --source and/or --match"),
    (["--rule", "erbil-wach", "--for", "1h"], "did you mean 'erbil-watch'"),
    (["--source", "s-enn", "--for", "1h"], "did you mean 's-en'"),
    (["--source", "tag:arabc", "--for", "1h"], "no source has the tag 'arabc'"),
    (["--match", "@nowhere", "--for", "1h"], "unknown entity '@nowhere'"),
    (["--match", "re:(", "--for", "1h"], "bad regular expression"),
    (["--rule", "erbil-watch"], "give one of --for DURATION and --until TIME"),
    (["--rule", "erbil-watch", "--for", "soon"], "not a duration"),
    (["--rule", "erbil-watch", "--until", "2020-01-01T00:00Z"], "already past"),
    (["--rule", "erbil-watch", "--until", "tomorrow"], "not an ISO time"),
    (["--rule", "erbil-watch", "--rule", "asad-watch", "--for", "1h"], "--rule given 2 times"),
    (["--rule", "erbil-watch", "--start", "2020-01-01T00:00Z", "--for", "1h"], "already past"),
    (["--rule", "erbil-watch", "--for", "0s"], "--for: must be longer than zero"),
    (["--rule", "quiet-arabic", "--match", "x", "--for", "1h"], "is a quiet rule"),
    (["--match", "", "--for", "1h"], "--match: "),
])
def test_silence_add_refuses_what_cannot_match(tmp_path: Path, args: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    desk = desk_with(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", Clock(T0))
    desk.stop()
    code, _, err = run_cli(capsys, tmp_path / "raqib.yaml", "silence", "add", *args)
    assert code == 2
    assert message in err
    code, out, _ = run_cli(capsys, tmp_path / "raqib.yaml", "silence", "list", "--json")
    assert json.loads(out) == []


def test_expiring_a_silence_that_has_not_started(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    desk = desk_with(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", Clock(T0))
    desk.stop()
    cfg = tmp_path / "raqib.yaml"
    start = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%MZ")
    code, out, _ = run_cli(capsys, cfg, "silence", "add", "--rule", "erbil-watch", "--start",
                           start, "--for", "1h", "--json")
    assert code == 0
    [pending] = json.loads(out)
    assert pending["state"] == "pending"
    run_cli(capsys, cfg, "silence", "expire", pending["id"])
    _, out, _ = run_cli(capsys, cfg, "silence", "list", "--all", "--json")
    [expired] = json.loads(out)
    assert expired["state"] == "expired"
    assert expired["ends_at"] <= (datetime.now(UTC) + timedelta(seconds=1)).isoformat()


def test_silence_expire_of_an_unknown_id(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    desk = desk_with(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", Clock(T0))
    desk.stop()
    code, _, err = run_cli(capsys, tmp_path / "raqib.yaml", "silence", "expire", "NOPE")
    assert code == 1 and "no silence NOPE" in err


def test_the_config_needs_no_channel_secret_for_silences(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    desk = desk_with(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", Clock(T0))
    desk.stop()
    cfg = tmp_path / "raqib.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["channels"]["hook"] = {"type": "webhook", "url": "http://127.0.0.1:9/",
                                "secret": "${UNSET_SECRET_FOR_TEST}"}
    cfg.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(capsys, cfg, "silence", "add", "--rule", "erbil-watch", "--for", "1h")
    assert code == 0, err


def test_a_rule_added_while_a_silence_holds_catches_up_silenced(tmp_path: Path,
                                                                db_url: str) -> None:
    desk = desk_with(tmp_path, db_url, Clock(T0))
    story(desk, "s-en", "talks on the Mosul dam", 1)          # no rule matches it yet
    desk.clock.advance(minutes=5)
    silence(desk, "S3", term="Mosul", hours=1)               # added after the article
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules.read_text() + "  - id: dams\n    match: dam\n")
    desk.p.apply(config.load_config(str(tmp_path / "raqib.yaml"), env={}))
    assert desk.p.catch_up({"dams"}, T0 - timedelta(minutes=10)) == 1
    assert silenced_by(desk, "dams") == ["S3"]   # raised while the silence holds


def test_a_resolved_notice_goes_where_its_quiet_alert_went(tmp_path: Path) -> None:
    desk = Desk(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", Clock(T0)).start()
    silence(desk, "Q2", source="s-ar2", hours=48)    # s-ar2's spell is silenced throughout
    for m in range(0, 9 * 60, 30):
        desk.clock.now = T0 + timedelta(minutes=m)
        desk.p.check_quiet()
    # s-ar's quiet alert was delivered; a silence on s-ar comes after it
    silence(desk, "Q1", source="s-ar", hours=48)
    desk.clock.advance(hours=1)
    desk.article("s-ar", "خبر", 900)
    desk.article("s-ar2", "خبر", 901)
    desk.p.check_quiet()
    got = [(a["source"]["name"], a["resolved"], a["silenced_by"])
           for a in desk.alerts("quiet-arabic")]
    assert sorted(got) == [("s-ar", False, None), ("s-ar", True, None),
                           ("s-ar2", False, "Q2"), ("s-ar2", True, "Q2")]


def test_a_silence_whose_term_no_longer_compiles_matches_nothing_and_breaks_nothing(
        tmp_path: Path, db_url: str) -> None:
    desk = desk_with(tmp_path, db_url, Clock(T0))
    # its entity was removed from the rules after the silence was added
    silence(desk, "GONE", term="@removed-entity")
    silence(desk, "OK", term="Erbil")
    story(desk, "s-en", "Erbil", 1)
    story(desk, "s-en", "Ain al-Asad", 2)
    assert silenced_by(desk, "erbil-watch") == ["OK"]
    assert silenced_by(desk, "asad-watch") == [None]
