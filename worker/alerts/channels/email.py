"""The email channel: one multipart message (plain text and HTML) per alert, over SMTP with
STARTTLS, TLS from the first byte, or neither, and optional authentication.

The Message-ID is derived from the alert id, so a message sent again after a crash is the same
message to every mail client and archive."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

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
        msg = EmailMessage()
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
