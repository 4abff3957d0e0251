"""Channels: where alerts go. Each takes a payload and delivers it or raises DeliveryError.

Only the channels talk to the outside world (files, SMTP, webhook receivers)."""

from __future__ import annotations

from typing import Any, Protocol

from worker import config
from worker.alerts.channels.file import FileChannel


class Channel(Protocol):
    name: str

    def send(self, payload: dict[str, Any]) -> None:
        """Deliver one alert; raise DeliveryError on failure."""


def build_channels(channels: dict[str, config.Channel]) -> tuple[dict[str, Channel], list[str]]:
    """Channel objects for the configured channels, and the names of those this version cannot
    deliver to yet (their deliveries wait in the outbox)."""
    built: dict[str, Channel] = {}
    waiting: list[str] = []
    for name, spec in channels.items():
        if isinstance(spec, config.FileChannel):
            built[name] = FileChannel(name, spec.path)
        else:
            waiting.append(name)
    return built, waiting
