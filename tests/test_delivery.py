"""Delivery with the guarantees of an outbox: a real SMTP server (aiosmtpd), a real webhook
receiver on 127.0.0.1 that verifies Standard Webhooks signatures, receivers down and then up,
receivers that fail after reading, rate limits and dead letters."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks import Webhook

from worker import config
from worker.db import Database
from worker.pipeline import Pipeline

from conftest import ASAD_RULES as RULES
from conftest import Clock, Mailbox, Response, Server, free_port, write

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HOSTILE = ("<script>alert(1)</script> قصف «عين الأسد» & more\n"
           "lede\n-\nسقطت صواريخ على قاعدة عين الأسد الجوية فجر اليوم.\n")


def setup(tmp: Path, channels: dict[str, Any], clock: Clock, seeds: int = 1) -> Pipeline:
    write(tmp / "rules/r.yaml", RULES)
    write(tmp / "seeds/hostile.txt", HOSTILE)
    for i in range(1, seeds):
        write(tmp / f"seeds/{i}.txt", f"Ain al-Asad report {i}\nlede\n-\nbody {i}\n")
    write(tmp / "raqib.yaml", yaml.safe_dump({
        "database": f"sqlite:///{tmp}/raqib.db", "seeds": [str(tmp / "seeds")],
        "rules": [str(tmp / "rules")], "channels": channels,
        "defaults": {"notify": list(channels)}}))
    cfg = config.load_config(str(tmp / "raqib.yaml"), env={})
    db = Database(cfg.main.database)
    db.migrate()
    p = Pipeline(cfg, db, clock=clock, rand=lambda: 0.5)
    p.deliverer.rand = lambda: 0.5
    p.sync_sources()
    return p


def email_channel(port: int, **kw: Any) -> dict[str, Any]:
    return {"type": "email", "host": "127.0.0.1", "port": port, "security": "none",
            "from": "raqib@desk.example", "to": ["analyst@desk.example"], **kw}


def webhook_channel(server: Server, **kw: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": server.url("/hook"), "secret": SECRET, "timeout": "2s",
            **kw}


def verifying(server: Server, fail_first: bool = False, status: int = 204) -> None:
    """A receiver that verifies each request's signature with the standardwebhooks library
    and, if asked, fails the first request of each alert after reading it."""
    seen: set[str] = set()

    def hook(handler: Any) -> Response:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        Webhook(SECRET).verify(handler.body, headers)   # raises on a bad signature
        msg_id = headers["webhook-id"]
        if fail_first and msg_id not in seen:
            seen.add(msg_id)
            return Response(500, b"try later")
        return Response(status)

    server.routes["/hook"] = hook


def test_email_is_multipart_escaped_right_to_left_and_stable(tmp_path: Path, clock: Clock,
                                                             mailbox: Mailbox) -> None:
    p = setup(tmp_path, {"mail": email_channel(mailbox.port)}, clock)
    report = p.run_once()
    assert (report.alerts, report.delivery.sent) == (1, 1)
    [msg] = mailbox.messages
    [alert] = p.db.listings.alert_payloads()
    assert msg["Subject"] == ("[raqib] high Ain al-Asad: <script>alert(1)</script> "
                              "قصف «عين الأسد» & more")
    assert msg["Message-ID"] == f"<{alert['id']}@desk.example>"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "<script>" in text                     # plain text shows the title as it is
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'dir="rtl"' in html
    assert "<mark" in html and "عين الأسد</mark>" in html
    assert f'href="{alert["article"]["url"]}"' in html
    # Sent again (as after a crash before it was recorded): the same message.
    again = p.deliverer.channels["mail"].build(alert)  # type: ignore[attr-defined]
    assert again["Message-ID"] == msg["Message-ID"]
    p.close()


def test_webhook_is_signed_and_retried_with_the_same_id(tmp_path: Path, clock: Clock,
                                                        http_server: Server) -> None:
    verifying(http_server, fail_first=True)
    p = setup(tmp_path, {"hook": webhook_channel(http_server)}, clock)
    report = p.run_once()
    assert report.delivery.failed == 1 and not report.ok
    clock.advance(seconds=11)
    assert p.deliver().sent == 1
    first, second = http_server.posts
    assert first[1]["webhook-id"] == second[1]["webhook-id"]
    [alert] = p.db.listings.alert_payloads()
    assert second[1]["webhook-id"] == alert["id"]
    assert json.loads(second[2]) == alert         # generic: the payload itself
    p.close()


def test_receivers_down_then_up(tmp_path: Path, clock: Clock, http_server: Server) -> None:
    port = free_port()
    verifying(http_server)
    hook = webhook_channel(http_server, url=f"http://127.0.0.1:{free_port()}/hook")
    p = setup(tmp_path, {"mail": email_channel(port), "hook": hook}, clock, seeds=3)
    report = p.run_once()
    assert (report.alerts, report.delivery.sent, report.delivery.failed) == (3, 0, 6)
    assert not report.ok
    box = Mailbox(port).start()
    try:
        p.deliverer.channels["hook"].spec = config.WebhookChannel.model_validate(  # type: ignore[attr-defined]
            webhook_channel(http_server))
        assert p.deliver().sent == 0             # nothing is due before its retry time
        clock.advance(seconds=11)
        assert p.deliver().sent == 6
        clock.advance(hours=2)
        assert p.deliver().sent == 0             # and nothing twice
    finally:
        box.stop()
    assert len(box.messages) == 3
    assert len({m["Message-ID"] for m in box.messages}) == 3
    assert len(http_server.posts) == 3
    p.close()


def test_a_4xx_answer_is_final_until_retried_by_hand(tmp_path: Path, clock: Clock,
                                                     http_server: Server) -> None:
    verifying(http_server, status=410)
    p = setup(tmp_path, {"hook": webhook_channel(http_server)}, clock)
    report = p.run_once()
    assert (report.delivery.failed, report.delivery.dead) == (1, 1)
    clock.advance(hours=2)
    assert p.deliver().failed == 0               # dead: not tried again by itself
    [alert] = p.db.listings.alert_payloads()
    [d] = p.db.outbox.of_alerts([alert["id"]])[alert["id"]]
    assert (d.status, d.attempts) == ("dead", 1)
    assert "HTTP 410" in (d.last_error or "")
    verifying(http_server)
    assert p.db.outbox.retry_alert(alert["id"], clock()) == 1
    assert p.deliver().sent == 1
    p.close()


def test_gives_up_after_a_day_or_max_attempts(tmp_path: Path, clock: Clock) -> None:
    hook = {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook", "timeout": "1s"}
    p = setup(tmp_path, {"hook": hook, "capped": {**hook, "max_attempts": 2}}, clock)
    p.run_once()
    states = []
    for _ in range(12):
        clock.advance(hours=3)
        p.deliver()
        [alert] = p.db.listings.alert_payloads()
        states.append({d.channel: (d.status, d.attempts)
                       for d in p.db.outbox.of_alerts([alert["id"]])[alert["id"]]})
    assert states[0]["capped"] == ("dead", 2)
    assert states[-1]["hook"][0] == "dead"
    assert states[6]["hook"][0] == "pending"     # 21 hours: still trying
    p.close()


@pytest.mark.parametrize(("fmt", "check"), [
    ("slack", lambda b: "Ain al-Asad" in b["text"] and b["blocks"]),
    ("discord", lambda b: b["embeds"][0]["title"].endswith("& more") and b["content"]),
    ("teams", lambda b: b["@type"] == "MessageCard" and "عين الأسد" in b["text"]),
])
def test_chat_formats(tmp_path: Path, clock: Clock, http_server: Server, fmt: str,
                      check: Any) -> None:
    verifying(http_server)
    p = setup(tmp_path, {"hook": webhook_channel(http_server, format=fmt)}, clock)
    assert p.run_once().delivery.sent == 1
    [(_, headers, body)] = http_server.posts
    assert check(json.loads(body))
    assert headers["webhook-signature"].startswith("v1,")
    p.close()


def test_rate_limit_holds_the_overflow(tmp_path: Path, clock: Clock, http_server: Server) -> None:
    verifying(http_server)
    p = setup(tmp_path, {"hook": webhook_channel(http_server, rate="2/min")}, clock, seeds=5)
    report = p.run_once()
    assert (report.alerts, report.delivery.sent, report.delivery.held) == (5, 2, 3)
    assert report.ok                               # held is not failed
    # A sliding window over the sent deliveries (contract change: no longer a token bucket
    # that refills one message every 30 s): nothing goes until the first two leave it.
    clock.advance(seconds=30)
    held = p.deliver()
    assert (held.sent, held.held) == (0, 3)
    clock.advance(seconds=30)
    assert p.deliver().sent == 2
    clock.advance(seconds=30)
    assert p.deliver().sent == 0                   # the two just sent fill the window
    clock.advance(seconds=30)
    assert p.deliver().sent == 1
    assert len(http_server.posts) == 5
    p.close()


def test_a_slow_channel_does_not_hold_up_the_others(tmp_path: Path, clock: Clock,
                                                    http_server: Server) -> None:
    def stalled(handler: Any) -> Response:
        time.sleep(1.5)   # longer than the channel's timeout: the receiver never answers in time
        return Response(204)

    http_server.routes["/hook"] = stalled
    channels = {"hook": webhook_channel(http_server, timeout="1s"),
                "log": {"type": "file", "path": str(tmp_path / "alerts.jsonl")}}
    p = setup(tmp_path, channels, clock)
    report = p.run_once()
    assert (report.delivery.sent, report.delivery.failed) == (1, 1)
    assert (tmp_path / "alerts.jsonl").read_text().count("\n") == 1
    p.close()


def test_email_template_override(tmp_path: Path, clock: Clock, mailbox: Mailbox) -> None:
    write(tmp_path / "tpl/subject.txt.j2", "ALERT {{ alert.rule.id }} / {{ title }}\n")
    p = setup(tmp_path, {"mail": email_channel(mailbox.port, templates=str(tmp_path / "tpl"))},
              clock)
    p.run_once()
    [msg] = mailbox.messages
    assert msg["Subject"].startswith("ALERT asad / ")
    assert "<mark" in msg.get_body(("html",)).get_content()   # the rest is raqib's own
    p.close()


def test_smtp_with_login(tmp_path: Path, clock: Clock) -> None:
    """AUTH over a plain connection, as aiosmtpd allows when asked to."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415
    from aiosmtpd.smtp import AuthResult  # noqa: PLC0415

    got: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope.content)
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        return AuthResult(success=(data.login, data.password) == (b"desk", b"s3cret"))

    port = free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                     auth_require_tls=False)
    ctl.start()
    try:
        p = setup(tmp_path, {"mail": email_channel(port, username="desk", password="s3cret")},
                  clock)
        assert p.run_once().delivery.sent == 1
        p.close()
    finally:
        ctl.stop()
    assert len(got) == 1


def test_digests_by_email_and_webhook(tmp_path: Path, clock: Clock, mailbox: Mailbox,
                                      http_server: Server) -> None:
    verifying(http_server)
    p = setup(tmp_path, {"mail": email_channel(mailbox.port, digest="hourly"),
                         "hook": webhook_channel(http_server, digest="daily 07:30 UTC")},
              clock, seeds=3)
    report = p.run_once()
    assert (report.alerts, report.delivery.sent) == (3, 0)
    assert mailbox.messages == [] and http_server.posts == []
    assert p.deliverer.digest("mail") == 3
    assert p.deliverer.digest("hook") == 3
    [msg] = mailbox.messages
    assert msg["Subject"] == "[raqib] digest: 3 alert(s) in 1 rule(s)"
    html = msg.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html
    [(_, headers, body)] = http_server.posts
    digest = json.loads(body)
    assert digest["schema"] == "raqib.digest/1" and headers["webhook-id"] == digest["id"]
    p.close()


@pytest.mark.parametrize("value", ["weekly", "daily 25:00", "daily 08:00 Mars/Olympus"])
def test_bad_digest_schedules_are_refused(tmp_path: Path, value: str) -> None:
    from worker.errors import ConfigError  # noqa: PLC0415

    write(tmp_path / "raqib.yaml", yaml.safe_dump({"channels": {
        "log": {"type": "file", "path": "x.jsonl", "digest": value}}}))
    with pytest.raises(ConfigError, match="digest"):
        config.load_config(str(tmp_path / "raqib.yaml"), env={})


def test_held_and_window_details_reach_the_reader(tmp_path: Path) -> None:
    from worker.alerts.digest import build_digest  # noqa: PLC0415
    from worker.alerts.payload import sample  # noqa: PLC0415
    from worker.alerts.render import Renderer, chat_body  # noqa: PLC0415

    alert = {**sample(), "held": {"count": 2, "titles": ["<b>One</b>", "Two"]},
             "window": {"count": 3, "within_seconds": 21600, "distinct_sources": True}}
    _, text, html = Renderer().email(alert)
    assert "held back" in text and "- Two" in text and "3 sources within 6.0 h" in text
    assert "&lt;b&gt;One&lt;/b&gt;" in html and 'dir="rtl"' in html
    digest = build_digest("d", [alert], datetime.now(UTC))
    assert digest["rules"][0]["items"][0]["held"]["count"] == 2
    slack = chat_body({**alert, "article": {**alert["article"], "title": "<!channel> hi & bye"}},
                      "slack")
    assert "<!channel>" not in json.dumps(slack) and "&lt;!channel&gt; hi &amp; bye" in \
        slack["blocks"][0]["text"]["text"]
