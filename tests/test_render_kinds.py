"""Every alert kind (spike, first_seen, quiet and its resolved notice) rendered for every
channel: email subject, text and HTML, the Slack, Discord, Teams and generic webhook bodies,
and digests (text, HTML, JSON). The facts a news desk acts on must be there; quiet alerts,
which have no article, story or matches, must render at all; hostile text stays escaped."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from worker.alerts.digest import build_digest
from worker.alerts.render import Renderer, chat_body, digest_email, duration

NOW = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> & «عين الأسد»"
HOSTILE_HTML = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; «عين الأسد»"
HOSTILE_SLACK = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; «عين الأسد»"


def common(alert_id: str, **rule: str) -> dict[str, Any]:
    return {"schema": "raqib.alert/1", "id": alert_id, "created_at": "2026-12-01T12:00:00Z",
            "rule": {"id": "asad", "title": "Ain al-Asad", "severity": "high", **rule},
            "silenced_by": None}


def on_article(alert_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {**common(alert_id), "kind": kind,
            "matches": [{"term": "@ain-al-asad", "field": "title", "text": "عين الأسد",
                         "snippet": "سقطت صواريخ على قاعدة عين الأسد الجوية"}],
            "article": {"id": 11, "url": "https://news.example/a/11", "title": "Rockets hit base",
                        "source": "rudaw-ar", "published": "2026-12-01T11:40:00Z",
                        "language": "ar"},
            "story": {"id": "42", "sources": 3, "articles": 4}, **extra}


def spike(**extra: Any) -> dict[str, Any]:
    return on_article("01JSPIKE", "spike", count=7, baseline=0.42,
                      spike={"count": 7, "baseline": 0.42, "threshold": 4.0, "factor": 3.0,
                             "min_count": 4, "within_seconds": 3600,
                             "baseline_seconds": 604800}, **extra)


def first_seen(by: str, new: list[dict[str, str]]) -> dict[str, Any]:
    return on_article(f"01JFIRST{by.upper()}", "first_seen",
                      first_seen={"by": by, "new": new, "within_seconds": 2592000})


def quiet(*, failing: bool = False, name: str = "rudaw-ar", error: str | None = None,
          resolved: bool = False, article: dict[str, Any] | None = None) -> dict[str, Any]:
    p = {**common("01JQUIET", id="arabic-quiet", title="An Arabic source has gone quiet"),
         "kind": "quiet", "matches": [],
         "source": {"name": name, "url": "https://rudaw.example/feed.xml", "tags": ["arabic"],
                    "last_article": "2026-12-01T06:00:00Z",
                    "last_success": None if failing else "2026-12-01T11:55:00Z",
                    "last_error": error},
         "quiet": {"since": "2026-12-01T06:00:00Z", "within_seconds": 21600,
                   "failing": failing},
         "resolved": False}
    if resolved:
        p |= {"id": "01JRESOLVED", "resolved": True, "resolves": "01JQUIET",
              "quiet": {**p["quiet"], "resolved_at": "2026-12-01T14:10:00Z",
                        "article": article}}
    assert "article" not in p and "story" not in p   # as quiet payloads come
    return p


BACK: dict[str, Any] = {"id": 99, "title": "Rudaw is back: Erbil briefing",
                        "url": "https://rudaw.example/99"}


# -- what each channel shows a reader ---------------------------------------------------------


def visible(fmt: str, body: dict[str, Any]) -> str:
    """The text a chat tool shows of *body*."""
    if fmt == "slack":
        return "\n".join([body["text"], body["blocks"][0]["text"]["text"],
                          *(e["text"] for e in body["blocks"][1]["elements"])])
    if fmt == "discord":
        [embed] = body["embeds"]
        return "\n".join([body["content"], embed["title"], embed["description"],
                          embed["footer"]["text"]])
    assert fmt == "teams"
    return "\n".join([body["summary"], body["title"], body["text"]])


def digest_item(payload: dict[str, Any]) -> dict[str, Any]:
    [rule] = build_digest("desk", [payload], NOW)["rules"]
    [item] = rule["items"]
    return item  # type: ignore[no-any-return]


CHANNELS: dict[str, Callable[[dict[str, Any]], str]] = {
    "email subject": lambda p: Renderer().email(p)[0],
    "email text": lambda p: Renderer().email(p)[1],
    "email html": lambda p: Renderer().email(p)[2],
    "slack": lambda p: visible("slack", chat_body(p, "slack")),
    "discord": lambda p: visible("discord", chat_body(p, "discord")),
    "teams": lambda p: visible("teams", chat_body(p, "teams")),
    "digest text": lambda p: digest_email(build_digest("desk", [p], NOW))[1],
    "digest html": lambda p: digest_email(build_digest("desk", [p], NOW))[2],
    "digest json": lambda p: json.dumps(digest_item(p), ensure_ascii=False),
}
BODIES = [c for c in CHANNELS if c != "email subject"]

# (payload, what every body must say, what the subject must say)
KINDS: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {
    "spike": (spike(), ["7 stories in 1 h", "a baseline of 0.4 per 1 h over 7 d",
                        "threshold 4"], ["Spike", "7 stories in 1 h", "Rockets hit base"]),
    "first_seen by entity": (
        first_seen("entity", [{"key": "erbil", "label": "Erbil"},
                              {"key": "duhok", "label": "Duhok"}]),
        ["Erbil, Duhok", "first time in 30 d"], ["Erbil, Duhok", "30 d"]),
    "first_seen by term": (
        first_seen("term", [{"key": "withdraw*", "label": "withdraw*"}]),
        ["withdraw*", "first time in 30 d"], ["withdraw*"]),
    "first_seen by rule": (first_seen("rule", []), ["first story in 30 d"],
                           ["first story in 30 d"]),
    "quiet": (quiet(), ["rudaw-ar has stored no new article since 2026-12-01T06:00:00Z "
                        "(6 h of raqib running)"],
              ["rudaw-ar", "no new article since 2026-12-01T06:00:00Z"]),
    "quiet, failing": (
        quiet(failing=True, error="HTTP 503 Service Unavailable"),
        ["since 2026-12-01T06:00:00Z", "Every poll since then failed",
         "HTTP 503 Service Unavailable"], ["rudaw-ar", "every poll failing"]),
    "quiet resolved": (
        quiet(resolved=True, article=BACK),
        ["rudaw-ar has news again", "2026-12-01T14:10:00Z", "Rudaw is back: Erbil briefing"],
        ["RESOLVED", "rudaw-ar has news again"]),
    "quiet resolved, first article unknown": (
        quiet(resolved=True), ["rudaw-ar has news again", "2026-12-01T14:10:00Z"],
        ["RESOLVED", "rudaw-ar has news again"]),
}


@pytest.mark.parametrize("channel", BODIES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_body_says_what_the_kind_is_about(kind: str, channel: str) -> None:
    payload, facts, _ = KINDS[kind]
    shown = CHANNELS[channel](payload)
    for fact in facts:
        assert fact in shown, f"{kind} in {channel}: {fact!r} missing from\n{shown}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_subject_says_it_in_one_line(kind: str) -> None:
    payload, _, facts = KINDS[kind]
    subject = CHANNELS["email subject"](payload)
    assert subject.startswith("[raqib] ") and "\n" not in subject
    for fact in facts:
        assert fact in subject


def test_a_resolved_notice_is_marked_resolved_in_every_channel() -> None:
    notice, firing = quiet(resolved=True, article=BACK), quiet()
    assert CHANNELS["email subject"](notice) == (
        "[raqib] RESOLVED high An Arabic source has gone quiet: rudaw-ar has news again")
    for channel in BODIES:
        if channel != "digest json":
            assert "RESOLVED" in CHANNELS[channel](notice), channel
        assert "RESOLVED" not in CHANNELS[channel](firing), channel
    item = digest_item(notice)
    assert (item["resolved"], item["resolves"]) == (True, "01JQUIET")
    assert digest_item(firing)["resolved"] is False


def test_a_resolved_notice_links_the_article_that_ended_the_spell() -> None:
    notice = quiet(resolved=True, article=BACK)
    _, text, html = Renderer().email(notice)
    assert BACK["url"] in text
    assert f'href="{BACK["url"]}"' in html
    assert chat_body(notice, "slack")["blocks"][0]["text"]["text"].startswith(
        f"*RESOLVED [high] An Arabic source has gone quiet*\n<{BACK['url']}|")
    assert chat_body(notice, "discord")["embeds"][0]["url"] == BACK["url"]
    teams = chat_body(notice, "teams")["potentialAction"][0]
    assert teams["targets"][0]["uri"] == BACK["url"] and "article" in teams["name"]
    assert digest_item(notice)["url"] == BACK["url"]
    # Without a first article, it points at the source instead, and offers no article link.
    bare = quiet(resolved=True)
    _, text, html = Renderer().email(bare)
    assert "first new article" not in html.lower()
    assert chat_body(bare, "discord")["embeds"][0]["url"] == "https://rudaw.example/feed.xml"


def test_a_quiet_alert_points_at_its_source() -> None:
    p = quiet()
    assert chat_body(p, "slack")["blocks"][0]["text"]["text"].startswith(
        "*[high] An Arabic source has gone quiet*\n<https://rudaw.example/feed.xml|rudaw-ar")
    assert chat_body(p, "teams")["potentialAction"][0]["name"] == "Open the source"
    item = digest_item(p)
    assert (item["source"], item["url"], item["story"]) == (
        "rudaw-ar", "https://rudaw.example/feed.xml", None)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_generic_webhook_is_the_payload_itself(kind: str) -> None:
    payload = KINDS[kind][0]
    assert chat_body(payload, "generic") == payload


# -- escaping and direction --------------------------------------------------------------------


HOSTILE_CASES = {
    "spike": spike(article={"id": 1, "url": "https://x.example/1", "title": HOSTILE,
                            "source": "rudaw-ar", "published": None, "language": "ar"}),
    "first_seen": first_seen("entity", [{"key": "e", "label": HOSTILE}]),
    "quiet, failing": quiet(failing=True, error=HOSTILE),
    "quiet, hostile source name": quiet(name=HOSTILE),
    "quiet resolved": quiet(resolved=True, article={**BACK, "title": HOSTILE}),
}


@pytest.mark.parametrize("kind", list(HOSTILE_CASES))
def test_hostile_text_is_escaped_in_html_and_slack(kind: str) -> None:
    payload = HOSTILE_CASES[kind]
    for channel in ("email html", "digest html"):
        html = CHANNELS[channel](payload)
        assert "<script>" not in html, channel
        assert HOSTILE_HTML in html, channel
    slack = visible("slack", chat_body(payload, "slack"))
    assert "<script>" not in slack and HOSTILE_SLACK in slack
    # Plain text shows it as it is: nothing there is markup.
    assert HOSTILE in Renderer().email(payload)[1]


class Directions(HTMLParser):
    """Each piece of text in a document's body with the ``dir`` it is set in (the
    innermost)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.tags: list[str] = []
        self.texts: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br", "meta"):
            self.stack.append(dict(attrs).get("dir"))
            self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "meta") and self.stack:
            self.stack.pop()
            self.tags.pop()

    def handle_data(self, data: str) -> None:
        if data.strip() and "head" not in self.tags:   # the head's title is not shown
            self.texts.append((data, next((d for d in reversed(self.stack) if d), None)))

    def dir_of(self, needle: str) -> set[str | None]:
        found = {d for text, d in self.texts if needle in text}
        assert found, f"{needle!r} not in the document"
        return found


def directions(html: str) -> Directions:
    parser = Directions()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("payload", [spike(), first_seen("term", [{"key": "x", "label": "x"}])],
                         ids=["spike", "first_seen"])
def test_arabic_snippets_are_set_right_to_left(payload: dict[str, Any]) -> None:
    html = Renderer().email(payload)[2]
    found = directions(html)
    assert found.dir_of("سقطت صواريخ على قاعدة") == {"rtl"}
    assert found.dir_of("عين الأسد") == {"rtl"}            # the highlighted words too


def test_arabic_labels_and_quiet_sources_are_set_in_their_own_direction() -> None:
    labels = first_seen("entity", [{"key": "erbil", "label": "أربيل"}])
    for channel in ("email html", "digest html"):
        assert directions(CHANNELS[channel](labels)).dir_of("أربيل") <= {"auto", "rtl"}
    name = "روداو"
    for p in (quiet(name=name), quiet(name=name, resolved=True, article={**BACK, "title": name})):
        for channel in ("email html", "digest html"):
            assert directions(CHANNELS[channel](p)).dir_of(name) == {"auto"}, channel


# -- digests -----------------------------------------------------------------------------------


def test_digest_items_carry_each_kind_s_details_and_silences() -> None:
    payloads = [spike(silenced_by="01JSILENCE0000000000000000"),
                first_seen("entity", [{"key": "erbil", "label": "Erbil"}]),
                quiet(failing=True, error="timeout"), quiet(resolved=True, article=BACK)]
    digest = build_digest("desk", payloads, NOW)
    items = {i["alert_id"]: i for r in digest["rules"] for i in r["items"]}
    assert items["01JSPIKE"]["kind"] == "spike"
    assert items["01JSPIKE"]["spike"]["baseline"] == 0.42
    assert items["01JSPIKE"]["silenced_by"] == "01JSILENCE0000000000000000"
    assert items["01JFIRSTENTITY"]["first_seen"]["new"] == [{"key": "erbil", "label": "Erbil"}]
    assert items["01JQUIET"]["quiet"]["failing"] is True
    assert items["01JRESOLVED"]["quiet"]["article"] == BACK
    assert json.loads(json.dumps(digest)) == digest    # what a webhook digest POSTs
    quiet_rule = next(r for r in digest["rules"] if r["id"] == "arabic-quiet")
    assert (quiet_rule["alerts"], quiet_rule["stories"]) == (2, 0)
    subject, text, _ = digest_email(digest)
    assert subject == "[raqib] digest: 4 alert(s) in 2 rule(s)"
    assert "An Arabic source has gone quiet (high): 2 alert(s)\n" in text   # no "0 stories"
    assert "silenced by 01JSILENCE0000000000000000" in text


# -- templates and durations -------------------------------------------------------------------


def test_a_channel_template_written_for_articles_survives_a_quiet_alert(tmp_path: Path) -> None:
    (tmp_path / "subject.txt.j2").write_text(
        "ALERT {{ alert.article.source }}|{{ alert.story.id }}|{{ title }}\n")
    subject, text, _ = Renderer(str(tmp_path)).email(quiet())
    assert subject == "ALERT ||rudaw-ar: no new article since 2026-12-01T06:00:00Z"
    assert "6 h of raqib running" in text             # the rest is raqib's own


@pytest.mark.parametrize(("seconds", "shown"), [
    (3600, "1 h"), (90, "1.5 min"), (604800, "7 d"), (2592000, "30 d"), (21600, "6 h"),
    (45, "45 s"), (100, "100 s"), (5400, "1.5 h"), (90000, "25 h"), (129600, "1.5 d"),
])
def test_durations_read_as_people_say_them(seconds: int, shown: str) -> None:
    assert duration(seconds) == shown
