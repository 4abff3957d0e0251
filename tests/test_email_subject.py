"""Long non-ASCII subjects read back intact (cases/08): the email is sent to a real SMTP server
(aiosmtpd) and its raw bytes decoded as mail clients decode them — the email package with
``policy.default``, and the older ``decode_header`` + ``make_header`` path — on every Python
raqib supports. Python 3.11 and 3.12 fold such a subject with a space between two encoded
words, where RFC 2047 readers drop it; raqib folds the Subject itself."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email import policy
from email.header import decode_header, make_header
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker import config
from worker.alerts.channels.email import EW_MAX, EmailChannel, fold_subject
from worker.alerts.payload import sample

from conftest import free_port

TITLES = [
    # cases/08: the space between العسكري and في was lost.
    "عاجل: انسحاب آخر القوات الأجنبية من قاعدة عين الأسد الجوية وتسليمها إلى القوات العراقية "
    "بعد سنوات من الوجود العسكري في محافظة الأنبار غرب البلاد",
    "مقتل وإصابة عدد من عناصر تنظيم داعش في قصف جوي للتحالف الدولي على مواقع في جبال حمرين "
    "شمال شرق محافظة صلاح الدين، وفق ما أعلنت خلية الإعلام الأمني في بيان صدر صباح اليوم",
    # Persian, with zero-width non-joiners inside words.
    "نیروهای ائتلاف بین‌المللی به رهبری آمریکا پایگاه عین‌الاسد در استان الانبار عراق را پس از "
    "سال‌ها حضور نظامی به طور کامل ترک کردند و آن را به ارتش عراق تحویل دادند",
    # Kurdish (Sorani).
    "هێزەکانی هاوپەیمانی نێودەوڵەتی بنکەی حەریر لە پارێزگای هەولێر بەجێدەهێڵن و ڕادەستی "
    "هێزەکانی پێشمەرگەی دەکەن دوای چەندین ساڵ لە ئامادەبوونی سەربازی",
    # Mixed scripts: English words, Arabic words, digits, «quotes», an ASCII tail.
    "Coalition forces hand «عين الأسد» (Ain al-Asad) air base to Iraqi army after 20 years; "
    "البنتاغون يؤكد اكتمال الانسحاب من قاعدة حرير في أربيل — Pentagon confirms withdrawal",
    "ISIS claims attack near Erbil: هجوم بطائرة مسيرة على مطار أربيل الدولي يستهدف قاعدة "
    "للتحالف ولا إصابات بحسب جهاز مكافحة الإرهاب في إقليم كوردستان 2026",
    # Short words everywhere, so a fold lands next to a space wherever it falls.
    "و في من عن و في من عن و في من عن و في من عن و في من عن و في من عن و في من عن و في من عن "
    "و في من عن و في من عن و في من عن و في من عن",
    # Four-byte characters and a long ASCII token.
    "🚨 عاجل 🚨 انفجار قرب السفارة https://example.org/news/2026/11/28/a-very-long-article-slug "
    "🚨 تفاصيل لاحقة 🚨",
]


class RawMailbox:
    """A real SMTP server on 127.0.0.1 that keeps each message's bytes as received."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller  # noqa: PLC0415

        self.raw: list[bytes] = []
        self.port = free_port()
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                box.raw.append(envelope.original_content or envelope.content)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


@pytest.fixture
def raw_mailbox() -> Iterator[RawMailbox]:
    box = RawMailbox()
    box.controller.start()
    yield box
    box.controller.stop()


def channel(port: int) -> EmailChannel:
    spec = config.EmailChannel.model_validate({
        "type": "email", "host": "127.0.0.1", "port": port, "security": "none",
        "from": "raqib@desk.example", "to": ["analyst@desk.example"]})
    return EmailChannel("mail", spec)


def decoded_both_ways(raw: bytes) -> tuple[str, str]:
    """The Subject as a modern client reads it, and as the legacy email API reads it."""
    modern = email.message_from_bytes(raw, policy=policy.default)["subject"]
    legacy = str(make_header(decode_header(email.message_from_bytes(raw)["Subject"])))
    return str(modern), legacy


def subject_lines(raw: bytes) -> list[str]:
    """The Subject line of a message and the folded lines that continue it."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    start = next(i for i, line in enumerate(head) if line.startswith("Subject:"))
    end = next((i for i in range(start + 1, len(head)) if head[i][:1] not in (" ", "\t")),
               len(head))
    return head[start:end]


@pytest.mark.parametrize("title", TITLES, ids=["case-08", "arabic", "persian", "kurdish", "mixed",
                                           "mixed-2", "short-words", "emoji-and-url"])
def test_a_long_title_reads_back_intact_after_smtp(raw_mailbox: RawMailbox, title: str) -> None:
    alert = sample()
    alert["article"]["title"] = title
    alert["rule"].update(title="Named bases", severity="high")
    channel(raw_mailbox.port).send(alert)
    [raw] = raw_mailbox.raw
    want = f"[raqib] high Named bases: {title}"
    modern, legacy = decoded_both_ways(raw)
    assert modern == want
    assert legacy == want
    assert modern.split(" ") == want.split(" ")        # no word run into the next one
    lines = subject_lines(raw)
    assert len(lines) > 2                               # it did fold into several words
    assert all(len(line) <= 78 for line in lines)
    for word in re.findall(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=", "\r\n".join(lines)):
        assert len(word) <= EW_MAX


def test_the_subject_reads_back_from_the_built_message_too() -> None:
    alert = sample()
    alert["article"]["title"] = TITLES[0]
    msg = channel(25).build(alert)
    assert msg["Subject"] == f"[raqib] low raqib test alert: {TITLES[0]}"
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    assert decoded_both_ways(raw) == (msg["Subject"], msg["Subject"])


def test_an_ascii_subject_is_folded_as_before() -> None:
    alert = sample()
    alert["article"]["title"] = "Rockets hit Ain al-Asad air base " * 4
    msg = channel(25).build(alert)
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0]
    assert decoded_both_ways(raw)[0] == msg["Subject"]


WORDS = st.sampled_from(["العسكري", "في", "و", "عين", "الأسد", "بین\u200cالمللی", "نیروهای",
                         "هێزەکانی", "Erbil", "ISIS", "a", "20", "«", "»", "،", ":", "—", "🚨",
                         "=?utf-8?q?x?=", "?=", "x" * 45, "ب" * 30, "é", "Ωμέγα"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(WORDS, st.sampled_from([" ", " ", " ", "  ", ""])), min_size=1,
                max_size=40),
       st.sampled_from(["[raqib] high Named bases:", "[raqib] critical A very long rule title "
                        "that takes most of the first line:", ""]))
def test_any_subject_reads_back_intact(pieces: list[tuple[str, str]], prefix: str) -> None:
    value = (prefix + " " if prefix else "") + "".join(w + s for w, s in pieces).rstrip(" ")
    if value.isascii():
        return
    folded = fold_subject("Subject", value, linesep="\r\n")
    raw = folded.encode("ascii") + b"From: a@b.example\r\n\r\nbody\r\n"
    assert decoded_both_ways(raw) == (value, value)
    lines = folded.split("\r\n")[:-1]
    assert all(len(line) <= 78 for line in lines)


@pytest.mark.parametrize("value", ["عين  الأسد", "ب", "x" * 80 + " ب", "a " * 40 + "ب",
                                   "ب" + " " * 50 + "ج", "🚨" * 40])
def test_edges(value: str) -> None:
    raw = fold_subject("Subject", value, linesep="\r\n").encode("ascii") + b"\r\nbody\r\n"
    assert decoded_both_ways(raw) == (value, value)


@pytest.mark.parametrize("value", [" leading space عين", "trailing space عين "])
def test_edge_spaces_are_at_most_trimmed(value: str) -> None:
    raw = fold_subject("Subject", value, linesep="\r\n").encode("ascii") + b"\r\nbody\r\n"
    assert [v.strip() for v in decoded_both_ways(raw)] == [value.strip()] * 2
