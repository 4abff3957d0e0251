"""Channels: where alerts go. Each takes a payload and delivers it or raises DeliveryError.

Only the channels talk to the outside world (files, SMTP servers, webhook receivers)."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from worker import config
from worker.alerts.channels.email import EmailChannel, SmtpFactory, connect
from worker.alerts.channels.file import FileChannel
from worker.alerts.channels.webhook import WebhookChannel


class Channel(Protocol):
    name: str

    def send(self, payload: dict[str, Any]) -> None:
        """Deliver one alert; raise DeliveryError on failure."""

    def send_digest(self, digest: dict[str, Any]) -> None:
        """Deliver a digest of alerts (worker.alerts.digest); raise DeliveryError on failure."""


def build_channels(channels: dict[str, config.Channel], *, http: httpx.Client | None = None,
                   smtp_factory: SmtpFactory = connect) -> dict[str, Channel]:
    """A sender for each configured channel. Webhooks share one HTTP client."""
    client = http or httpx.Client(trust_env=True)
    built: dict[str, Channel] = {}
    for name, spec in channels.items():
        if isinstance(spec, config.FileChannel):
            built[name] = FileChannel(name, spec.path)
        elif isinstance(spec, config.EmailChannel):
            built[name] = EmailChannel(name, spec, smtp_factory)
        else:
            built[name] = WebhookChannel(name, spec, client)
    return built
