"""The email channel: one multipart message (plain text and HTML) per alert, over SMTP with
STARTTLS, TLS from the first byte, or neither, and optional authentication.

The Message-ID is derived from the alert id, so a message sent again after a crash is the same
message to every mail client and archive.

The Subject is folded here, not by the standard library: Python 3.11 and 3.12 fold a long
non-ASCII subject into encoded words with the space between two words outside them, where
RFC 2047 says a reader drops it (the desk read "العسكريفي" for "العسكري في"). Here every space
is inside an encoded word, so every mail client gives the title back as it was."""

from __future__ import annotations

import base64
import re
import smtplib
import ssl
from collections.abc import Callable
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry, UniqueUnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import formatdate, parseaddr
from typing import Any, cast

from worker import config
from worker.alerts.render import Renderer, digest_email
from worker.errors import DeliveryError

SmtpFactory = Callable[[config.EmailChannel], smtplib.SMTP]


def connect(spec: config.EmailChannel) -> smtplib.SMTP:
    timeout = spec.timeout.total_seconds()
    if spec.security == "ssl":
        return smtplib.SMTP_SSL(spec.host, spec.port, timeout=timeout,
                                context=ssl.create_default_context())
    smtp = smtplib.SMTP(spec.host, spec.port, timeout=timeout)
    if spec.security == "starttls":
        smtp.starttls(context=ssl.create_default_context())
    return smtp


EW_MAX = 75                  # RFC 2047: an encoded word is at most 75 characters
_EW_FRAME = len("=?utf-8?b??=")
_PLAIN_WORD = re.compile(r"[!-~]{1,40}")   # printable ASCII, no space, not too long


def _encoded(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def _chunks(text: str, first: int, rest: int) -> list[str]:
    """*text* cut into pieces of at most *first* (then *rest*) UTF-8 bytes, whole characters
    each, cut inside a word where one allows it so that no piece starts or ends with a space
    (some readers trim encoded words)."""
    pieces: list[str] = []
    start, budget = 0, first
    while start < len(text):
        end, size = start, 0
        while end < len(text) and size + len(text[end].encode("utf-8")) <= budget:
            size += len(text[end].encode("utf-8"))
            end += 1
        if end == start:          # not even one character fits: the caller's budget is small
            end = start + 1
        if end < len(text):       # move the cut back inside a word, if one is near
            for cut in range(end, max(start + 1, end - 12) - 1, -1):
                if text[cut - 1] != " " and text[cut] != " ":
                    end = cut
                    break
        pieces.append(text[start:end])
        start, budget = end, rest
    return pieces


def fold_subject(name: str, value: str, *, linesep: str = "\n", max_line: int = 78) -> str:
    """``name: value`` for the wire: the leading plain ASCII words as they are, the rest as
    base64 UTF-8 encoded words that hold every space, one encoded word to a folded line,
    each line at most *max_line* characters."""
    words = value.split(" ")
    plain: list[str] = []
    for word in words[:-1]:
        if not _PLAIN_WORD.fullmatch(word) or "=?" in word:
            break
        plain.append(word)
    rest = value[len(" ".join(plain)) + 1:] if plain else value
    lines = [f"{name}:"]
    for word in plain:
        if len(lines[-1]) + 1 + len(word) > max_line and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + word
    per_line = (min(EW_MAX, max_line - 1) - _EW_FRAME) // 4 * 3   # bytes in a full line's word
    room = (min(EW_MAX, max_line - len(lines[-1]) - 1) - _EW_FRAME) // 4 * 3
    first = room if room >= 12 else per_line
    if room < 12:
        lines.append("")
    for i, piece in enumerate(_chunks(rest, first, per_line)):
        if i:
            lines.append("")
        lines[-1] += " " + _encoded(piece)
    return linesep.join(lines) + linesep


class SubjectHeader(UniqueUnstructuredHeader):
    """The Subject, read and set as any unstructured header, folded by :func:`fold_subject`
    when it needs encoded words."""

    def fold(self, *, policy: Policy) -> str:
        header = cast(BaseHeader, self)   # the registry builds it on BaseHeader
        value = str(header)
        if value.isascii() or getattr(policy, "utf8", False):   # no encoded words: no fault
            return BaseHeader.fold(header, policy=policy)
        return fold_subject(header.name, value, linesep=policy.linesep,
                            max_line=policy.max_line_length or 78)


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("subject", cast("type[BaseHeader]", SubjectHeader))
POLICY = email_policy.default.clone(header_factory=_HEADERS)


def message_id(alert_id: str, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "raqib.invalid"
    return f"<{alert_id}@{domain}>"


class EmailChannel:
    def __init__(self, name: str, spec: config.EmailChannel,
                 smtp_factory: SmtpFactory = connect) -> None:
        self.name = name
        self.spec = spec
        self.smtp_factory = smtp_factory
        self.renderer = Renderer(spec.templates)

    def _message(self, msg_id: str, subject: str, text: str, html: str) -> EmailMessage:
        msg = EmailMessage(policy=POLICY)
        msg["Subject"] = subject
        msg["From"] = self.spec.from_
        msg["To"] = ", ".join(self.spec.to)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = message_id(msg_id, self.spec.from_)
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        return msg

    def build(self, payload: dict[str, Any]) -> EmailMessage:
        msg = self._message(payload["id"], *self.renderer.email(payload))
        msg["X-Raqib-Alert"] = payload["id"]
        return msg

    def send_digest(self, digest: dict[str, Any]) -> None:
        self._deliver(self._message(digest["id"], *digest_email(digest)))

    def send(self, payload: dict[str, Any]) -> None:
        self._deliver(self.build(payload))

    def _deliver(self, msg: EmailMessage) -> None:
        try:
            with self.smtp_factory(self.spec) as smtp:
                if self.spec.username:
                    smtp.login(self.spec.username, self.spec.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"deliver: {self.name}: SMTP login refused ({exc.smtp_code})",
                                permanent=False) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"deliver: {self.name}: recipients refused: "
                                f"{', '.join(exc.recipients)}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            detail = exc.smtp_error.decode(errors="replace") \
                if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"deliver: {self.name}: SMTP {exc.smtp_code} {detail}",
                                permanent=permanent) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"deliver: {self.name}: cannot reach {self.spec.host}:"
                                f"{self.spec.port}: {exc}") from exc
