"""The daemon's HTTP endpoint (``http.listen``): ``/healthz``, ``/metrics`` (Prometheus) and a
small read-only dashboard at ``/`` (recent alerts and the sources' health)."""

from __future__ import annotations

import base64
import hmac
import json
import threading
from collections.abc import Callable
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from worker.alerts.payload import iso
from worker.alerts.render import headline, link, source_name
from worker.db import Database

log = structlog.get_logger("raqib.web")

Health = Callable[[], tuple[bool, str]]


def _alert_row(a: dict[str, Any]) -> str:
    """One alert as a table row, every piece of text escaped: its headline (the article's
    title, led by what a spike or a first sighting found; what became of a quiet source)."""
    url = link(a)
    text = escape(headline(a))
    shown = f"<a href='{escape(url)}'>{text}</a>" if url else text
    return (f"<tr><td>{escape(a['created_at'] or '')}</td><td>{escape(a['rule']['severity'])}"
            f"</td><td>{escape(a['rule']['title'])}</td><td>{escape(a['kind'])}</td>"
            f"<td dir='auto'>{shown}</td><td dir='auto'>{escape(source_name(a))}</td>"
            f"<td>{escape(a['silenced_by'] or '')}</td></tr>")


def _dashboard(store: Database) -> bytes:
    alerts = store.listings.alert_payloads(limit=50)
    sources = store.sources.all()
    rows = "".join(_alert_row(a) for a in alerts)
    health = "".join(
        f"<tr><td>{escape(s.name)}</td><td>{escape(iso(s.last_poll) or '-')}</td>"
        f"<td>{escape(iso(s.last_success) or '-')}</td><td>{s.failures}</td>"
        f"<td>{escape(iso(s.next_poll) or '-')}</td><td>{escape(s.last_error or '')}</td></tr>"
        for s in sources)
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>raqib</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 8px;text-align:start;
border-bottom:1px solid #ddd;font-size:14px}}</style></head><body>
<h1>raqib</h1><h2>Recent alerts</h2><table><tr><th>raised</th><th>severity</th><th>rule</th>
<th>kind</th><th>alert</th><th>source</th><th>silenced</th></tr>{rows}</table>
<h2>Sources</h2><table><tr><th>name</th><th>last poll</th><th>last success</th>
<th>failures</th><th>next poll</th><th>last error</th></tr>{health}</table></body></html>"""
    return page.encode()


class WebServer:
    def __init__(self, listen: str, *, health: Health, metrics: Callable[[], bytes],
                 store: Database, details: Callable[[], dict[str, Any]] | None = None,
                 token: str | None = None) -> None:
        host, _, port = listen.rpartition(":")
        self.address = (host.strip("[]") or "127.0.0.1", int(port))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path != "/healthz" and not server.authorized(
                        self.headers.get("Authorization")):
                    self._send(401, "text/plain", b"http.token is required\n",
                               {"WWW-Authenticate": 'Basic realm="raqib", charset="UTF-8"'})
                    return
                try:
                    if path == "/healthz":
                        ok, reason = server.health()
                        extra = server.details() if server.details is not None else {}
                        body = json.dumps({"status": "ok" if ok else "unavailable",
                                           "reason": reason, **extra}).encode()
                        self._send(200 if ok else 503, "application/json", body)
                    elif path == "/metrics":
                        self._send(200, "text/plain; version=0.0.4; charset=utf-8",
                                   server.metrics())
                    elif path == "/":
                        self._send(200, "text/html; charset=utf-8", _dashboard(server.store))
                    else:
                        self._send(404, "text/plain", b"not found\n")
                except Exception as exc:   # one bad request must not stop the endpoint
                    log.exception("http request failed", path=path)
                    self._send(500, "text/plain", f"error: {type(exc).__name__}\n".encode())

            def _send(self, status: int, kind: str, body: bytes,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.token = token
        self.health = health
        self.details = details
        self.metrics = metrics
        self.store = store
        self.httpd = ThreadingHTTPServer(self.address, Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http",
                                       daemon=True)

    def authorized(self, header: str | None) -> bool:
        """Whether a request may see more than /healthz: always without ``http.token``;
        else with ``Authorization: Bearer TOKEN`` or basic authentication whose password is
        the token (any user name), compared in constant time."""
        if self.token is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        given = value.strip()
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(given, validate=True).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())

    def start(self) -> None:
        self.thread.start()
        log.info("http listening", listen=f"{self.address[0]}:{self.httpd.server_address[1]}")

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
