"""The webhook channel: POST the alert to a URL, signed per Standard Webhooks.

Headers ``webhook-id`` (the alert id, the same on every redelivery), ``webhook-timestamp``
(Unix seconds) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``
with the secret, whose ``whsec_`` prefix is dropped and the rest base64-decoded), so any
Standard Webhooks library verifies them. 2xx is delivered; 408, 429, 5xx, timeouts and network
errors are retried; any other answer is final. ``format`` shapes the body for Slack, Discord
or Teams (``generic`` sends the alert payload itself)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from worker import config
from worker.alerts.render import chat_body
from worker.errors import DeliveryError
from worker.fetch import USER_AGENT, parse_retry_after

RETRIED_STATUS = {408, 429}


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class WebhookChannel:
    def __init__(self, name: str, spec: config.WebhookChannel, client: httpx.Client,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.name = name
        self.spec = spec
        self.client = client
        self.clock = clock

    def send_digest(self, digest: dict[str, Any]) -> None:
        """A digest goes as it is (schema raqib.digest/1), signed like an alert."""
        self._post(digest["id"], digest)

    def request(self, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        return self._request(payload["id"], chat_body(payload, self.spec.format))

    def _request(self, msg_id: str, document: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(self.clock().timestamp())
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   **self.spec.headers,
                   "webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
        if self.spec.secret:
            headers["webhook-signature"] = sign(self.spec.secret, msg_id, timestamp, body)
        return body, headers

    def send(self, payload: dict[str, Any]) -> None:
        self._post(payload["id"], chat_body(payload, self.spec.format))

    def _post(self, msg_id: str, document: dict[str, Any]) -> None:
        body, headers = self._request(msg_id, document)
        try:
            resp = self.client.post(self.spec.url, content=body, headers=headers,
                                    timeout=self.spec.timeout.total_seconds(),
                                    follow_redirects=False)
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"deliver: {self.name}: timed out after "
                                f"{self.spec.timeout.total_seconds():g}s") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"deliver: {self.name}: {type(exc).__name__}: {exc}") from exc
        if resp.is_success:
            return
        status = f"deliver: {self.name}: HTTP {resp.status_code} {resp.reason_phrase}"
        if resp.status_code in RETRIED_STATUS or resp.status_code >= 500:
            retry = parse_retry_after(resp.headers.get("retry-after"), self.clock())
            raise DeliveryError(status, retry_after=retry)
        raise DeliveryError(status + " (not retried)", permanent=True)
